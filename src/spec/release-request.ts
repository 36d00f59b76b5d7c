// What a caller may send to start a release, and how far it may bend the service's registered spec.
// What a release touches (deploy command and environment, router socket, Prometheus URL, hook and
// notification hosts) is server-side configuration that went through review: the registered spec.
// A request names the service and brings its version, where it came from, and the few knobs that
// are safe to vary, within the limits the registered spec sets. Only a simulated target, which
// touches nothing, may still come inline, for demos.
import { z } from 'zod';
import { formatPromDuration } from '../engine/duration';
import { InvalidSpecError, validateReleaseSpec, type SpecProblem } from './parse';
import {
  rolloutPlan,
  alertPolicySchema,
  analysisSchema,
  durationSchema,
  nameSchema,
  releaseSpecSchema,
  simulatedTargetSchema,
  strategySchema,
  versionSchema,
  type ReleaseSpec,
} from './release-spec';

const SERVER_SIDE_TARGET =
  'a local target (deploy command and environment, router socket, Prometheus URL) lives on the server: ' +
  'register the service in RAMPART_SPECS_DIR and send only its version and overrides';

/** Any target but `simulated` is refused, with the reason, whatever else it holds. */
const refusedLocalTargetSchema = z
  .object({ type: z.literal('local') })
  .loose()
  .superRefine((_target, ctx) => ctx.addIssue({ code: 'custom', path: ['type'], message: SERVER_SIDE_TARGET }))
  .describe('Refused: a local target is registered on the server (RAMPART_SPECS_DIR), never sent.');

/** The release-spec fields a caller may send only for a service that has no registered spec. */
export const INLINE_SPEC_FIELDS = ['target', 'strategy', 'analysis', 'alerts', 'notifications', 'regions', 'waves', 'rollout'] as const;

export const inlineSpecShape = {
  target: z
    .discriminatedUnion('type', [simulatedTargetSchema, refusedLocalTargetSchema])
    .optional()
    .describe('Only for a service without a registered spec, and only simulated (the default).'),
  strategy: strategySchema.optional().describe('Only for a service without a registered spec; default the four phases.'),
  analysis: analysisSchema.optional().describe('Only for a service without a registered spec; default the error-rate check.'),
  alerts: alertPolicySchema.optional().describe('Only for a service without a registered spec; default pause on firing alerts.'),
  notifications: releaseSpecSchema.shape.notifications.describe(
    'Only for a service without a registered spec; the host must be in RAMPART_OUTBOUND_HOSTS.',
  ),
  regions: releaseSpecSchema.shape.regions.describe('Only for a service without a registered spec: regions on the simulated target (each its own fleet).'),
  waves: releaseSpecSchema.shape.waves.describe('Only for a service without a registered spec: the order of its regions.'),
  rollout: releaseSpecSchema.shape.rollout.describe('Only for a service without a registered spec: later-wave strategy, soak and failure policy.'),
};

/** A release spec sent inline (the CI webhook's and a drill's `spec`): simulated target only, no service or version. */
export const inlineSpecSchema = z
  .object(inlineSpecShape)
  .strict()
  .describe('A spec for a service without a registered one (simulated target only); a registered service takes none.');

export type InlineSpec = z.infer<typeof inlineSpecSchema>;

/** Upper limits: a smaller value is stricter. Lower limits: a larger one is. */
const UPPER_MARGINS = ['max', 'maxIncreaseOverStable', 'maxRatioOverStable'] as const;
const LOWER_MARGINS = ['min'] as const;

const marginsSchema = z
  .object({
    maxIncreaseOverStable: z.number().min(0).optional().describe("Margin over stable's share (ratio checks)."),
    maxRatioOverStable: z.number().min(1).optional().describe("Multiple of stable's quantile (latency checks)."),
    max: z.number().optional().describe('Absolute upper limit.'),
    min: z.number().optional().describe('Absolute lower limit (ratio checks).'),
  })
  .strict();

export const releaseOverridesSchema = z
  .object({
    bakes: z.record(nameSchema, durationSchema).optional().describe('Bake per step name, within limits.minBake (default: the registered bake) and limits.maxBake.'),
    weights: z
      .record(nameSchema, z.number().int().min(0).max(100))
      .optional()
      .describe('Weight per step name, at most limits.maxWeight (default: the registered weight); synthetic and full steps keep theirs.'),
    approvals: z
      .record(nameSchema, z.boolean())
      .optional()
      .describe('Manual gate per step name: adding one is always allowed, lifting a registered one only with limits.liftApprovals.'),
    analysis: z
      .object({
        interval: durationSchema.optional().describe('How often the checks run, within limits.minInterval and limits.maxInterval.'),
        margins: z
          .record(nameSchema, marginsSchema)
          .optional()
          .describe('Margins and limits per check name: tighter is always allowed, looser only with limits.loosenMargins.'),
      })
      .strict()
      .optional(),
  })
  .strict()
  .describe("The knobs a request may turn on the service's spec, within its limits.");

export type ReleaseOverrides = z.infer<typeof releaseOverridesSchema>;

/** How far a request may bend a registered spec; the `limits` block of a registered spec file. The defaults only tighten. */
export const releaseLimitsSchema = z
  .object({
    minBake: durationSchema.optional().describe('Shortest bake a request may set; unset: the registered bake of each step (bakes may only grow).'),
    maxBake: durationSchema.default(86_400_000).describe('Longest bake a request may set (default 24h).'),
    maxWeight: z
      .number()
      .int()
      .min(0)
      .max(100)
      .optional()
      .describe('Highest weight a request may give a step; unset: the registered weight of each step (weights may only shrink).'),
    liftApprovals: z.boolean().default(false).describe('Whether a request may lift a registered manual approval gate.'),
    minInterval: durationSchema.default(1_000).describe('Shortest analysis interval a request may set (default 1s).'),
    maxInterval: durationSchema.default(600_000).describe('Longest analysis interval a request may set (default 10m).'),
    loosenMargins: z.boolean().default(false).describe("Whether a request may loosen a check's margins and limits (by default only tighten them)."),
  })
  .strict()
  .describe('How far a request may vary this spec; the defaults allow only stricter releases.');

export type ReleaseLimits = z.infer<typeof releaseLimitsSchema>;
export const DEFAULT_LIMITS: ReleaseLimits = releaseLimitsSchema.parse({});

/** `POST /v1/releases`: a registered service with its version and overrides, or an inline spec on the simulated target. */
export const releaseRequestSchema = z
  .object({
    service: nameSchema.describe('The service being released.'),
    environment: nameSchema
      .optional()
      .describe("The environment; default the service's only registered one, else production. One release in flight per service and environment."),
    version: versionSchema,
    commit: releaseSpecSchema.shape.commit,
    pipelineUrl: releaseSpecSchema.shape.pipelineUrl,
    drill: z.boolean().optional().describe('Mark the release as a drill: it never supersedes a release, and is left out of the DORA figures.'),
    ...inlineSpecShape,
    overrides: releaseOverridesSchema.optional(),
  })
  .strict()
  .describe("A release: a registered service's version (and overrides), or a whole spec on the simulated target.");

export type ReleaseRequest = z.infer<typeof releaseRequestSchema>;

/** The registered spec a request is resolved against. */
export interface RegisteredBase {
  service: string;
  environment: string;
  file: string;
  /** The spec as written, without version. */
  template: Record<string, unknown>;
  limits: ReleaseLimits;
}

export interface ResolveContext {
  /** The service's registered spec, or null: then only an inline simulated spec is accepted. */
  registered: RegisteredBase | null;
  /** Why a hook or notification URL may not be called, or null when it may. */
  outboundRefusal(url: string): string | null;
  requestedBy: string;
}

/**
 * The release spec a request asks for, or InvalidSpecError with every problem, each named by its
 * path in the request (target.type, overrides.bakes.canary-5, strategy.steps.0.before.0.url, …).
 */
export function releaseSpecFromRequest(request: ReleaseRequest, context: ResolveContext): ReleaseSpec {
  const { registered } = context;
  const problems: SpecProblem[] = [];
  let base: Record<string, unknown>;
  let limits: ReleaseLimits;
  if (registered) {
    for (const field of INLINE_SPEC_FIELDS) {
      if (request[field] !== undefined) {
        problems.push({
          field,
          message: `${registered.service} in ${registered.environment} is registered (${registered.file}): its ${field} comes from there; a request brings the version and overrides`,
        });
      }
    }
    if (problems.length) throw new InvalidSpecError(problems);
    base = registered.template;
    limits = registered.limits;
  } else {
    base = Object.fromEntries(INLINE_SPEC_FIELDS.filter((f) => request[f] !== undefined).map((f) => [f, request[f]]));
    limits = DEFAULT_LIMITS;
  }

  const spec = validateReleaseSpec({
    ...base,
    service: request.service,
    ...(registered ? { environment: registered.environment } : request.environment ? { environment: request.environment } : {}),
    version: request.version,
    ...(request.commit ? { commit: request.commit } : {}),
    ...(request.pipelineUrl ? { pipelineUrl: request.pipelineUrl } : {}),
    ...(request.drill !== undefined ? { drill: request.drill } : {}),
    requestedBy: context.requestedBy,
  });
  const overridden = request.overrides ? applyOverrides(spec, request.overrides, limits, problems) : spec;
  if (problems.length) throw new InvalidSpecError(problems);
  const checked = validateOverridden(overridden, request.overrides);
  problems.push(...outboundProblems(checked, context.outboundRefusal));
  problems.push(...rolloutProblems(checked, registered !== null, context.outboundRefusal));
  if (problems.length) throw new InvalidSpecError(problems);
  return checked;
}

/**
 * A region's release may bring a target, hooks and notifications of its own: an inline spec's regions
 * stay on the simulated target, and every region's hooks go only where the allowlist lets them.
 */
export function rolloutProblems(spec: ReleaseSpec, registered: boolean, refusal: (url: string) => string | null): SpecProblem[] {
  const plan = rolloutPlan(spec);
  if (!plan) return [];
  return Object.entries(plan.specs).flatMap(([region, regional]) => [
    ...(!registered && regional.target.type !== 'simulated' ? [{ field: `regions.${region}.target.type`, message: SERVER_SIDE_TARGET }] : []),
    ...outboundProblems(regional, refusal)
      .filter((p) => !outboundProblems(spec, refusal).some((q) => q.field === p.field && q.message === p.message))
      .map((p) => ({ field: `regions.${region}.${p.field}`, message: p.message })),
  ]);
}

/** Every URL a spec makes the worker call, with its path in the spec. */
export function outboundUrls(spec: Pick<ReleaseSpec, 'strategy' | 'notifications'>): { field: string; url: string }[] {
  const urls: { field: string; url: string }[] = [];
  spec.strategy.steps.forEach((step, index) => {
    for (const when of ['before', 'after'] as const) {
      step[when].forEach((hook, h) => urls.push({ field: `strategy.steps.${index}.${when}.${h}.url`, url: hook.url }));
    }
  });
  if (spec.notifications) urls.push({ field: 'notifications.webhookUrl', url: spec.notifications.webhookUrl });
  return urls;
}

/** The spec's hook and notification URLs the allowlist refuses, as problems. */
export function outboundProblems(spec: Pick<ReleaseSpec, 'strategy' | 'notifications'>, refusal: (url: string) => string | null): SpecProblem[] {
  return outboundUrls(spec).flatMap(({ field, url }) => {
    const reason = refusal(url);
    return reason ? [{ field, message: `the URL ${reason}` }] : [];
  });
}

const ms = (value: number) => formatPromDuration(value);

function applyOverrides(spec: ReleaseSpec, overrides: ReleaseOverrides, limits: ReleaseLimits, problems: SpecProblem[]): ReleaseSpec {
  const steps = spec.strategy.steps.map((step) => ({ ...step }));
  const stepNamed = (knob: string, name: string) => {
    const index = steps.findIndex((step) => step.name === name);
    if (index < 0) problems.push({ field: `overrides.${knob}.${name}`, message: `no step "${name}" in the spec; its steps are ${steps.map((s) => s.name).join(', ')}` });
    return index < 0 ? null : steps[index]!;
  };

  for (const [name, bake] of Object.entries(overrides.bakes ?? {})) {
    const step = stepNamed('bakes', name);
    if (!step) continue;
    const floor = limits.minBake ?? step.bake;
    if (bake < floor) {
      const why = limits.minBake === undefined ? 'the registered bake; limits.minBake allows shorter' : 'limits.minBake';
      problems.push({ field: `overrides.bakes.${name}`, message: `at least ${ms(floor)} (${why})` });
    } else if (bake > limits.maxBake) {
      problems.push({ field: `overrides.bakes.${name}`, message: `at most ${ms(limits.maxBake)} (limits.maxBake)` });
    } else step.bake = bake;
  }

  for (const [name, weight] of Object.entries(overrides.weights ?? {})) {
    const step = stepNamed('weights', name);
    if (!step) continue;
    const ceiling = limits.maxWeight ?? step.weight;
    if (step.phase === 'synthetic' || step.phase === 'full') {
      problems.push({ field: `overrides.weights.${name}`, message: `the weight of a ${step.phase} step is fixed at ${step.weight}` });
    } else if (weight > ceiling) {
      const why = limits.maxWeight === undefined ? 'the registered weight; limits.maxWeight allows more' : 'limits.maxWeight';
      problems.push({ field: `overrides.weights.${name}`, message: `at most ${ceiling} (${why})` });
    } else step.weight = weight;
  }

  for (const [name, approval] of Object.entries(overrides.approvals ?? {})) {
    const step = stepNamed('approvals', name);
    if (!step) continue;
    if (!approval && step.approval && !limits.liftApprovals) {
      problems.push({ field: `overrides.approvals.${name}`, message: 'the spec gates this step for a person; limits.liftApprovals allows lifting it' });
    } else step.approval = approval;
  }

  const analysis = { ...spec.analysis, checks: spec.analysis.checks.map((check) => ({ ...check })) };
  const interval = overrides.analysis?.interval;
  if (interval !== undefined) {
    if (interval < limits.minInterval || interval > limits.maxInterval) {
      problems.push({
        field: 'overrides.analysis.interval',
        message: `between ${ms(limits.minInterval)} and ${ms(limits.maxInterval)} (limits.minInterval, limits.maxInterval)`,
      });
    } else analysis.interval = interval;
  }
  for (const [name, margins] of Object.entries(overrides.analysis?.margins ?? {})) {
    const check = analysis.checks.find((c) => c.name === name) as Record<string, unknown> | undefined;
    if (!check) {
      const names = analysis.checks.map((c) => c.name).join(', ') || 'none';
      problems.push({ field: `overrides.analysis.margins.${name}`, message: `no check "${name}" in the spec; its checks are ${names}` });
      continue;
    }
    for (const [field, value] of Object.entries(margins) as [string, number | undefined][]) {
      if (value === undefined) continue;
      const current = check[field] as number | undefined;
      const looser =
        current !== undefined &&
        (((UPPER_MARGINS as readonly string[]).includes(field) && value > current) || ((LOWER_MARGINS as readonly string[]).includes(field) && value < current));
      if (looser && !limits.loosenMargins) {
        problems.push({ field: `overrides.analysis.margins.${name}.${field}`, message: `may only be tightened (the spec says ${current}); limits.loosenMargins allows looser` });
      } else check[field] = value;
    }
  }
  return { ...spec, strategy: { ...spec.strategy, steps }, analysis: analysis as ReleaseSpec['analysis'] };
}

/**
 * The overridden spec must still be a valid spec (weights never go down, a check takes only its own
 * kind's fields, …); a problem an override caused is named by the override.
 */
function validateOverridden(spec: ReleaseSpec, overrides: ReleaseOverrides | undefined): ReleaseSpec {
  try {
    return validateReleaseSpec(spec);
  } catch (error) {
    if (!(error instanceof InvalidSpecError) || !overrides) throw error;
    throw new InvalidSpecError(
      error.problems.map((problem) => {
        const [section, list, index, field] = problem.field.split('.');
        if (section === 'strategy' && list === 'steps' && index !== undefined) {
          const name = spec.strategy.steps[Number(index)]?.name;
          const knob = field === 'weight' ? 'weights' : field === 'bake' ? 'bakes' : field === 'approval' ? 'approvals' : null;
          if (name && knob && overrides[knob]?.[name] !== undefined) return { ...problem, field: `overrides.${knob}.${name}` };
          if (name && overrides.weights && field === 'weight') return { ...problem, field: 'overrides.weights' };
        }
        if (section === 'analysis' && list === 'checks' && index !== undefined) {
          const name = spec.analysis.checks[Number(index)]?.name;
          if (name && overrides.analysis?.margins?.[name]) return { ...problem, field: `overrides.analysis.margins.${name}${field ? `.${field}` : ''}` };
        }
        return { field: 'overrides', message: `${problem.field}: ${problem.message}` };
      }),
    );
  }
}
