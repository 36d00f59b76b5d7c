import { z } from 'zod';
import { parseDuration } from '../engine/duration';

/**
 * The release spec: what a release of one service moves, how it moves it, and how it judges health.
 * The schema is the documentation: every field has a description and a default, and the README's
 * reference and the API's OpenAPI document are generated from it.
 */

/** A duration such as "30s", "5m", "250ms", or a number of milliseconds; parsed to milliseconds. */
export const durationSchema = z
  .union([z.string(), z.number()])
  .transform((value, ctx) => {
    const ms = parseDuration(value);
    if (ms === null) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration: use a number and a unit, like 250ms, 30s, 5m or 1h` });
      return z.NEVER;
    }
    return ms;
  });

const IMAGE_DIGEST = /^(?:[a-z0-9][a-z0-9._/-]*(?::\d+)?[a-z0-9._/-]*@)?sha256:[a-f0-9]{64}$/;
const GIT_SHA = /^[a-f0-9]{7,40}$/;

/**
 * A version is an immutable artifact reference. A mutable tag (latest, v1.2, main) can point at a
 * different build tomorrow, so a release of it could not be reproduced or rolled back to.
 */
export const versionSchema = z
  .string()
  .min(1, 'version is required')
  .max(300)
  .superRefine((value, ctx) => {
    if (IMAGE_DIGEST.test(value) || GIT_SHA.test(value)) return;
    ctx.addIssue({
      code: 'custom',
      message:
        `"${value}" is not an immutable version: use an image digest (sha256:<64 hex>, optionally repo@sha256:…) ` +
        'or a git commit SHA (7 to 40 hex characters). Tags such as "latest" or "v1.2" are mutable: they can point ' +
        'at another build later, so the release could not be reproduced or rolled back to.',
    });
  })
  .describe('Immutable artifact reference: an image digest (sha256:…, optionally repo@sha256:…) or a git commit SHA.');

export const nameSchema = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'use 1 to 63 lower-case letters, digits and dashes, starting and ending with a letter or digit');

const actorSchema = z.string().min(1).max(200);

export const headerMatchSchema = z
  .object({
    header: z.string().regex(/^[A-Za-z0-9-]{1,100}$/).default('x-rampart-audience').describe('Request header that marks internal users.'),
    value: z.string().min(1).max(200).regex(/^[A-Za-z0-9._-]+$/).default('internal').describe('Header value that marks internal users.'),
  })
  .strict()
  .describe('Requests carrying this header value are sent to the canary whatever the weight.');

export const loadTestSchema = z
  .object({
    rate: z.number().int().positive().max(100_000).default(50).describe('Requests per second sent to the new version.'),
    connections: z.number().int().positive().max(1_000).default(10).describe('Concurrent connections.'),
    duration: durationSchema.default(10_000).describe('How long the load runs.'),
    paths: z.array(z.string().startsWith('/')).min(1).max(50).default(['/']).describe('Paths requested in turn.'),
    maxErrorRate: z.number().min(0).max(1).default(0.01).describe('Highest acceptable share of non-2xx/3xx answers and errors (0..1).'),
    maxP95LatencyMs: z.number().positive().optional().describe('Highest acceptable p95 latency in ms; unset means not checked.'),
    maxP99LatencyMs: z.number().positive().default(500).describe('Highest acceptable p99 latency in ms.'),
  })
  .strict()
  .describe('Synthetic load driven at the new version before any user traffic reaches it.');

export const hookSchema = z
  .object({
    name: nameSchema.describe('Name shown in the status and history.'),
    url: z.url().describe('URL that receives a POST with the release context; a 2xx answer is success.'),
    timeout: durationSchema.default(30_000).describe('How long the hook may take.'),
  })
  .strict();

export const phaseSchema = z.enum(['synthetic', 'canary', 'ramp', 'full']);
export type Phase = z.infer<typeof phaseSchema>;

export const stepSchema = z
  .object({
    name: nameSchema.describe('Step name, unique within the strategy.'),
    phase: phaseSchema.describe('Which phase of the release this step belongs to.'),
    weight: z.number().int().min(0).max(100).describe('Share of user traffic (percent) sent to the new version.'),
    internalAudience: headerMatchSchema.optional().describe('When set, internal users reach the new version before anyone else.'),
    bake: durationSchema.default(0).describe('How long to hold this step while analysis runs.'),
    analysis: z.boolean().default(true).describe('Whether the analysis runs during this step.'),
    approval: z.boolean().default(false).describe('Manual gate: wait for an operator to approve before the traffic moves.'),
    load: loadTestSchema.optional().describe('Synthetic load test (synthetic phase only).'),
    before: z.array(hookSchema).max(10).default([]).describe('Hooks run before the traffic moves (migrations).'),
    after: z.array(hookSchema).max(10).default([]).describe('Hooks run after the traffic moved (smoke tests).'),
  })
  .strict()
  .superRefine((step, ctx) => {
    if (step.phase === 'synthetic' && step.weight !== 0) {
      ctx.addIssue({ code: 'custom', path: ['weight'], message: 'a synthetic step takes no user traffic: weight must be 0' });
    }
    if (step.load && step.phase !== 'synthetic') {
      ctx.addIssue({ code: 'custom', path: ['load'], message: 'a load test belongs to the synthetic phase' });
    }
    if (step.phase === 'full' && step.weight !== 100) {
      ctx.addIssue({ code: 'custom', path: ['weight'], message: 'the full phase sends 100% of traffic: weight must be 100' });
    }
  });

export type StepSpec = z.infer<typeof stepSchema>;

export const checkSchema = z
  .object({
    name: nameSchema.describe('Check name, unique within the analysis.'),
    query: z
      .string()
      .min(1)
      .max(4_000)
      .describe('PromQL instant query. {{service}}, {{version}}, {{track}} (stable or canary) and {{window}} are filled in.'),
    max: z.number().optional().describe('Fail when the canary value is above this.'),
    min: z.number().optional().describe('Fail when the canary value is below this.'),
    maxIncreaseOverStable: z
      .number()
      .min(0)
      .optional()
      .describe('Fail when the canary value exceeds the stable value by more than this (0.02 = 2 points of error rate).'),
  })
  .strict();

export type CheckSpec = z.infer<typeof checkSchema>;

/** The brief's rule, on HAProxy's own exporter: the canary's 5xx share may not exceed stable's by 2 points. */
export const DEFAULT_ERROR_RATE_QUERY =
  'sum(rate(haproxy_server_http_responses_total{proxy="{{service}}",server="{{track}}",code="5xx"}[{{window}}]))' +
  ' / sum(rate(haproxy_server_http_responses_total{proxy="{{service}}",server="{{track}}"}[{{window}}]))';

export const analysisSchema = z
  .object({
    interval: durationSchema.default(10_000).describe('How often the checks run during a bake.'),
    window: durationSchema.default(30_000).describe('The range each query looks back over ({{window}}).'),
    failureLimit: z.number().int().min(0).default(0).describe('Failed measurements tolerated before the release rolls back.'),
    inconclusiveLimit: z
      .number()
      .int()
      .min(0)
      .default(2)
      .describe('Inconclusive measurements (no data) tolerated before the release pauses for a person.'),
    consecutiveSuccesses: z
      .number()
      .int()
      .min(1)
      .default(1)
      .describe('Successful measurements in a row a step needs before it may advance.'),
    checks: z
      .array(checkSchema)
      .max(20)
      .default([{ name: 'error-rate', query: DEFAULT_ERROR_RATE_QUERY, max: 0.05, maxIncreaseOverStable: 0.02 }])
      .describe('The metric checks. Default: canary 5xx share at most 5% and at most 2 points above stable.'),
  })
  .strict();

export type AnalysisSpec = z.infer<typeof analysisSchema>;

export const simulatedVersionHealthSchema = z
  .object({
    errorRate: z.number().min(0).max(1).default(0).describe('Share of requests that fail.'),
    latencyMs: z.number().min(0).default(20).describe('Latency of every request in ms.'),
    noData: z.boolean().default(false).describe('Report no metrics at all (inconclusive analysis).'),
    deployFailures: z.number().int().min(0).default(0).describe('Deploy attempts that fail before one succeeds.'),
    trafficFailures: z.number().int().min(0).default(0).describe('Weight changes that fail before one succeeds.'),
  })
  .strict();

export const simulatedTargetSchema = z
  .object({
    type: z.literal('simulated'),
    stableVersion: versionSchema.optional().describe('Version the simulated fleet runs before the release; default a fixed git SHA.'),
    health: z
      .record(z.string(), simulatedVersionHealthSchema)
      .default({})
      .describe('Health per version; versions not listed are healthy.'),
    latencyMs: z.number().min(0).max(10_000).default(0).describe('Delay added to every provider call, to model a remote system.'),
  })
  .strict()
  .describe('In-process fleet with configurable health, for demos and benchmarks.');

export const localTargetSchema = z
  .object({
    type: z.literal('local'),
    command: z.array(z.string().min(1)).min(1).describe('Command that starts one instance; RAMPART_VERSION and PORT are set.'),
    healthPath: z.string().startsWith('/').default('/healthz').describe('Path that answers 2xx when an instance is ready.'),
    stablePort: z.number().int().min(1).max(65_535).describe('Port of the stable slot.'),
    canaryPort: z.number().int().min(1).max(65_535).describe('Port of the canary slot.'),
    haproxySocket: z.string().min(1).describe('HAProxy runtime API socket (a unix socket path or host:port).'),
    prometheusUrl: z.url().describe('Prometheus base URL for the analysis queries.'),
    env: z.record(z.string(), z.string()).default({}).describe('Extra environment for the instances (per-version behaviour of the demo).'),
  })
  .strict()
  .describe('Processes on this machine behind HAProxy, judged by Prometheus.');

export const targetSchema = z.discriminatedUnion('type', [simulatedTargetSchema, localTargetSchema]);
export type TargetSpec = z.infer<typeof targetSchema>;

export const alertPolicySchema = z
  .object({
    onFiring: z.enum(['pause', 'abort']).default('pause').describe('What a firing alert for this service does to the release.'),
    resumeOnResolved: z.boolean().default(false).describe('Resume a release paused by an alert once all its alerts resolved.'),
  })
  .strict();

const DEFAULT_INTERNAL = { header: 'x-rampart-audience', value: 'internal' };

/** The brief's four phases: synthetic load, canary 5% internal first, ramp 10% and 50%, full. */
export const DEFAULT_STEPS = [
  { name: 'synthetic', phase: 'synthetic', weight: 0, bake: 0, analysis: false, load: {} },
  { name: 'canary-internal', phase: 'canary', weight: 0, internalAudience: DEFAULT_INTERNAL, bake: '1m' },
  { name: 'canary-5', phase: 'canary', weight: 5, internalAudience: DEFAULT_INTERNAL, bake: '5m' },
  { name: 'ramp-10', phase: 'ramp', weight: 10, bake: '5m' },
  { name: 'ramp-50', phase: 'ramp', weight: 50, bake: '10m' },
  { name: 'full', phase: 'full', weight: 100, bake: '5m' },
] as const;

export const strategySchema = z
  .object({
    steps: z
      .array(stepSchema)
      .min(1)
      .max(30)
      .default(() => z.array(stepSchema).parse(DEFAULT_STEPS))
      .describe('Ordered steps. Default: synthetic, canary internal then 5%, ramp 10% and 50%, full.'),
  })
  .strict()
  .superRefine((strategy, ctx) => {
    const names = new Set<string>();
    strategy.steps.forEach((step, index) => {
      if (names.has(step.name)) ctx.addIssue({ code: 'custom', path: ['steps', index, 'name'], message: `step name "${step.name}" is used twice` });
      names.add(step.name);
    });
    const last = strategy.steps[strategy.steps.length - 1];
    if (last && last.weight !== 100) {
      ctx.addIssue({ code: 'custom', path: ['steps', strategy.steps.length - 1, 'weight'], message: 'the last step must send 100% of traffic' });
    }
    for (let i = 1; i < strategy.steps.length; i++) {
      if (strategy.steps[i]!.weight < strategy.steps[i - 1]!.weight) {
        ctx.addIssue({ code: 'custom', path: ['steps', i, 'weight'], message: 'weights may not go down from one step to the next' });
      }
    }
  });

export const releaseSpecSchema = z
  .object({
    service: nameSchema.describe('The service being released.'),
    environment: nameSchema.default('production').describe('The environment; one release in flight per service and environment.'),
    version: versionSchema,
    commit: z
      .object({
        sha: z.string().regex(GIT_SHA, 'a git commit SHA is 7 to 40 hex characters').describe('Commit the version was built from.'),
        time: z.iso.datetime({ offset: true }).describe('Commit time (ISO 8601), for lead time.'),
      })
      .strict()
      .optional()
      .describe('Where the version came from.'),
    pipelineUrl: z.url().optional().describe('The CI run that built the version.'),
    target: targetSchema.default({ type: 'simulated', health: {}, latencyMs: 0 }).describe('Where the version runs and how traffic reaches it.'),
    strategy: strategySchema.default(() => strategySchema.parse({})),
    analysis: analysisSchema.default(() => analysisSchema.parse({})),
    alerts: alertPolicySchema.default({ onFiring: 'pause', resumeOnResolved: false }).describe('How Alertmanager alerts steer the release.'),
    requestedBy: actorSchema.default('unknown').describe('Who asked for the release (audit).'),
    notifications: z
      .object({
        webhookUrl: z.url().describe('Receives a POST with a Slack-compatible payload ({text}) when the release finishes.'),
      })
      .strict()
      .optional()
      .describe('Where to announce the release; unset sends nothing.'),
    drill: z.boolean().default(false).describe('Set by rollback drills: the release is a drill, left out of the DORA figures.'),
  })
  .strict();

export type ReleaseSpec = z.infer<typeof releaseSpecSchema>;
export type ReleaseSpecInput = z.input<typeof releaseSpecSchema>;
export type LoadTestSpec = z.infer<typeof loadTestSchema>;
export type HookSpec = z.infer<typeof hookSchema>;
export type AlertPolicy = z.infer<typeof alertPolicySchema>;
