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
    rate: z
      .number()
      .int()
      .positive()
      .max(100_000)
      .default(100)
      .describe('Requests per second sent to the new version (and as many to stable, to compare under the same load). The default 100/s for 30 s gives 3,000 requests each: enough to tell +5 points of errors from a 2-point margin.'),
    connections: z.number().int().positive().max(1_000).default(10).describe('Concurrent connections per version.'),
    duration: durationSchema.default(30_000).describe('How long the load runs.'),
    paths: z.array(z.string().startsWith('/')).min(1).max(50).default(['/']).describe('Paths requested in turn.'),
    maxIncreaseOverStable: z
      .number()
      .min(0)
      .max(1)
      .default(0.02)
      .describe('Practical margin: fail when the new version\'s error share is, with confidence, more than this above stable\'s under the same load.'),
    maxLatencyRatioOverStable: z
      .number()
      .min(1)
      .default(1.25)
      .describe("Fail when the new version's p95 latency is, with confidence, more than this multiple of stable's under the same load."),
    maxErrorRate: z.number().min(0).max(1).optional().describe('Absolute limit on the error share, judged with its sample size; unset means not checked (the comparison with stable is).'),
    maxP95LatencyMs: z.number().positive().optional().describe('Absolute limit on p95 latency in ms, judged with its sample size; unset means not checked.'),
    maxP99LatencyMs: z.number().positive().optional().describe('Absolute limit on p99 latency in ms, judged with its sample size; unset means not checked.'),
  })
  .strict()
  .describe('Synthetic load driven at the new version and at stable before any user traffic reaches the new version; judged like the analysis.');

export const hookSchema = z
  .object({
    name: nameSchema.describe('Name shown in the status and history.'),
    url: z.url().describe('URL that receives a POST with the release context; a 2xx answer is success.'),
    timeout: durationSchema.default(30_000).describe('How long the hook may take; the activity attempt gets this long (plus a few seconds), so a slow migration is never posted again while it runs.'),
    retries: z
      .number()
      .int()
      .min(0)
      .max(10)
      .default(0)
      .describe('Attempts after a failed one. Default 0: a hook is not assumed idempotent. Every call carries an Idempotency-Key header (release, step, hook) for hooks that are.'),
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

const querySchema = z.string().min(1).max(4_000);
const QUERY_HELP =
  '{{service}}, {{environment}}, {{region}} (the region of a rollout; empty otherwise), {{version}}, {{track}} (stable or canary) and {{window}} (the time since the step moved traffic) are filled in.';

export const ratioCheckSchema = z
  .object({
    name: nameSchema.describe('Check name, unique within the analysis.'),
    kind: z.literal('ratio'),
    events: querySchema.describe(`PromQL counting the bad events of one track over {{window}} (e.g. errors). ${QUERY_HELP}`),
    total: querySchema.describe(`PromQL counting all events of one track over {{window}} (e.g. requests). ${QUERY_HELP}`),
    maxIncreaseOverStable: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .describe('Practical margin: fail when the canary\'s share is, with confidence, more than this above stable\'s (0.02 = 2 points); pass when it is, with confidence, less.'),
    max: z.number().min(0).max(1).optional().describe('Fail when the canary\'s share is, with confidence, above this.'),
    min: z.number().min(0).max(1).optional().describe('Fail when the canary\'s share is, with confidence, below this (e.g. a success share).'),
  })
  .strict();

export const latencyCheckSchema = z
  .object({
    name: nameSchema.describe('Check name, unique within the analysis.'),
    kind: z.literal('latency'),
    buckets: querySchema.describe(`PromQL giving one track's latency histogram over {{window}}: cumulative counts by le, in seconds. ${QUERY_HELP}`),
    quantile: z.number().gt(0).lt(1).default(0.95).describe('The quantile judged (0.95 = p95).'),
    maxRatioOverStable: z
      .number()
      .min(1)
      .optional()
      .describe("Relative margin: fail when the canary's quantile is, with confidence, more than this multiple of stable's (1.25 = 25% slower)."),
    max: z.number().positive().optional().describe("Absolute limit in seconds: fail when the canary's quantile is, with confidence, above it."),
  })
  .strict();

export const checkSchema = z.discriminatedUnion('kind', [ratioCheckSchema, latencyCheckSchema]);

export type CheckSpec = z.infer<typeof checkSchema>;
export type RatioCheckSpec = z.infer<typeof ratioCheckSchema>;
export type LatencyCheckSpec = z.infer<typeof latencyCheckSchema>;

/**
 * What users feel, from HAProxy's own exporter, each failed request counted once against the server
 * that failed it: 5xx answers; requests whose connection the server refused, which HAProxy
 * (`retries` + `option redispatch`) then served from the other server (redispatch warnings; without
 * them a crashed canary would look like a quiet one); requests that found no server to connect to
 * (connection errors); and requests the server dropped or left unanswered, which HAProxy answered
 * 502 or 504 itself (response errors). None of these three is among the server's HTTP responses, so
 * each joins the total as well. Retry warnings are left out: they count attempts, and one request can
 * retry twice. Each extra term is `or vector(0)` so a counter that has not moved does not empty the
 * sum; the responses term is not, so a track Prometheus has no series for is no data, never 0 of 0.
 */
const haproxyIncrease = (metric: string, extra = '') =>
  `sum(increase(haproxy_server_${metric}{proxy="{{service}}",server="{{track}}",environment="{{environment}}",region="{{region}}"${extra}}[{{window}}]))`;
const FAILED_WITHOUT_RESPONSE = ['redispatch_warnings_total', 'connection_errors_total', 'response_errors_total'].map((metric) => `(${haproxyIncrease(metric)} or vector(0))`);
export const DEFAULT_ERROR_EVENTS_QUERY = [`(${haproxyIncrease('http_responses_total', ',code="5xx"')} or vector(0))`, ...FAILED_WITHOUT_RESPONSE].join(' + ');
export const DEFAULT_ERROR_TOTAL_QUERY = [haproxyIncrease('http_responses_total'), ...FAILED_WITHOUT_RESPONSE].join(' + ');
/**
 * The default queries match `region="{{region}}"`: a region's release sees only its region's series,
 * and outside a rollout the placeholder is empty, and `region=""` matches series without the label.
 */
/** The app's own request-duration histogram (the prom-client and OpenTelemetry convention), labelled by the scrape with service, track and environment. */
export const DEFAULT_LATENCY_BUCKETS_QUERY =
  'sum by (le) (increase(http_request_duration_seconds_bucket{service="{{service}}",track="{{track}}",environment="{{environment}}",region="{{region}}"}[{{window}}]))';

export const DEFAULT_CHECKS = [
  { name: 'error-rate', kind: 'ratio', events: DEFAULT_ERROR_EVENTS_QUERY, total: DEFAULT_ERROR_TOTAL_QUERY, maxIncreaseOverStable: 0.02, max: 0.05 },
  { name: 'latency-p95', kind: 'latency', buckets: DEFAULT_LATENCY_BUCKETS_QUERY, quantile: 0.95, maxRatioOverStable: 1.25 },
] as const;

export const analysisSchema = z
  .object({
    interval: durationSchema.default(10_000).describe('How often the checks run during a bake. Each look judges all the evidence since the step moved traffic.'),
    confidence: z
      .number()
      .gt(0.5)
      .lt(1)
      .default(0.99)
      .describe('Confidence a rollback needs, per check and step, valid at every look (anytime-valid): 0.99 keeps false rollbacks of a healthy version rare.'),
    passConfidence: z
      .number()
      .gt(0.5)
      .lt(1)
      .default(0.95)
      .describe('Confidence a pass needs: that the canary is not worse than stable by more than the margin.'),
    minCanarySamples: z
      .number()
      .int()
      .min(1)
      .default(20)
      .describe(
        'Canary requests a check needs before it may fail or pass; fewer is "not enough evidence yet". The anytime-valid interval is what guards against small samples (a healthy 1% canary cannot fail on 20 requests); this floor only keeps the normal approximation out of its worst range, and lets a broken build (half its requests failing) be caught in about 20 requests.',
      ),
    maxBakeFactor: z
      .number()
      .min(1)
      .max(100)
      .default(3)
      .describe('A step whose bake ends without a decision keeps baking up to this multiple of its bake, then pauses with the reason.'),
    consecutiveErrorLimit: z
      .number()
      .int()
      .min(0)
      .default(4)
      .describe('Query errors in a row tolerated before the release pauses for a person (Argo Rollouts\' default).'),
    checks: z
      .array(checkSchema)
      .max(20)
      .default(() => z.array(checkSchema).parse(DEFAULT_CHECKS))
      .describe('The checks. Default: error share (5xx and connection errors) within 2 points of stable and at most 5%, and p95 latency within 1.25x of stable.'),
  })
  .strict()
  .superRefine((analysis, ctx) => {
    const names = new Set<string>();
    analysis.checks.forEach((check, index) => {
      if (names.has(check.name)) ctx.addIssue({ code: 'custom', path: ['checks', index, 'name'], message: `check name "${check.name}" is used twice` });
      names.add(check.name);
      const judged = check.kind === 'ratio' ? [check.maxIncreaseOverStable, check.max, check.min] : [check.maxRatioOverStable, check.max];
      if (judged.every((limit) => limit === undefined)) {
        ctx.addIssue({ code: 'custom', path: ['checks', index], message: 'a check needs a margin over stable or an absolute limit, or it can judge nothing' });
      }
    });
  });

export type AnalysisSpec = z.infer<typeof analysisSchema>;

export const simulatedVersionHealthSchema = z
  .object({
    errorRate: z.number().min(0).max(1).default(0).describe('Share of requests that fail.'),
    latencyMs: z.number().min(0).default(20).describe('Median latency in ms; requests spread around it (log-normal).'),
    crashAfter: durationSchema
      .optional()
      .describe('The instance crashes this long after it first took user traffic: it refuses connections and HAProxy marks it DOWN.'),
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
    trafficPerSecond: z.number().min(0).max(1_000_000).default(100).describe('User requests per second reaching the service (Poisson arrivals).'),
    internalShare: z.number().min(0).max(1).default(0.05).describe('Share of user requests from internal users (those an internal audience sends to the canary).'),
    seed: z.number().int().min(0).default(1).describe('Seed of the simulated traffic: the same seed gives the same requests, errors and latencies.'),
    fleet: nameSchema
      .optional()
      .describe("Which in-process fleet the service runs in; default its own. Each region of a rollout on the simulated target gets its own (the region's name) unless it sets one."),
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

/** One region of a rollout: the base target with these fields merged over it, and optional tweaks to how it is released. */
export const regionSchema = z
  .object({
    target: z
      .record(z.string(), z.unknown())
      .default({})
      .describe(
        "Fields merged over the spec's target for this region: mappings merge key by key (env, a simulated fleet's health), anything else is replaced (ports, sockets, Prometheus URL, command). A different type replaces the whole target.",
      ),
    strategy: z
      .record(z.string(), z.unknown())
      .optional()
      .describe("This region's own strategy (steps), in place of the spec's strategy or rollout.laterWaves."),
    analysis: z
      .record(z.string(), z.unknown())
      .optional()
      .describe("Analysis fields merged over the spec's analysis for this region (checks, when given, replace the list)."),
    alerts: alertPolicySchema.optional().describe("This region's alert policy; default the spec's."),
  })
  .strict()
  .describe('A region: a target of its own (the base target plus overrides) and optional strategy, analysis or alert tweaks.');

export type RegionSpec = z.infer<typeof regionSchema>;

export const rolloutPolicySchema = z
  .object({
    laterWaves: strategySchema
      .optional()
      .describe('The strategy of every wave after the first (a version the first wave proved needs less), e.g. shorter bakes; default the spec\'s strategy.'),
    soak: durationSchema.default(0).describe('How long to wait after a wave is promoted before the next wave starts (a durable timer).'),
    onFailure: z
      .enum(['halt', 'rollback-all'])
      .default('halt')
      .describe(
        'When a region fails (rolled back, aborted, superseded): halt stops later waves and leaves promoted regions as they are; rollback-all also rolls back every region this rollout promoted, in reverse wave order, on the fast rollback path.',
      ),
  })
  .strict()
  .describe('How a rollout moves through its waves.');

export type RolloutPolicy = z.infer<typeof rolloutPolicySchema>;

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
    target: targetSchema.default(() => targetSchema.parse({ type: 'simulated' })).describe('Where the version runs and how traffic reaches it.'),
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
    regions: z
      .record(nameSchema, regionSchema)
      .optional()
      .describe('Named regions: each release of the spec becomes a rollout, one release per region through its own lane, wave by wave (waves). Unset: one release, as ever.'),
    waves: z
      .array(z.array(nameSchema).max(50))
      .max(50)
      .optional()
      .describe('The order of the rollout: lists of region names, e.g. [[pilot], [eu-1, us-1], [ap-1]]; every region in exactly one wave. The regions of a wave run at the same time.'),
    rollout: rolloutPolicySchema.optional().describe('Later-wave strategy, soak between waves and the failure policy (regions only).'),
    region: nameSchema.optional().describe("Set by the rollout on each region's release (not written by hand): the region it runs in, part of its lane and id."),
  })
  .strict();

/**
 * The spec with its regions checked: every mistake in regions, waves and rollout named by its field.
 * What validateReleaseSpec parses with; releaseSpecSchema stays a plain object, so its fields can be
 * picked and omitted (drill schedules, requests).
 */
export const checkedReleaseSpecSchema = releaseSpecSchema.superRefine((spec, ctx) => {
  for (const problem of regionProblems(spec)) ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message });
});

export type ReleaseSpec = z.infer<typeof releaseSpecSchema>;

/** A spec with regions, as the rollout runs it: its waves, and each region's own release spec. */
export interface RolloutPlan {
  waves: string[][];
  /** Per region, the spec its release runs: region set, no regions of its own. */
  specs: Record<string, ReleaseSpec>;
  soakMs: number;
  onFailure: RolloutPolicy['onFailure'];
}

const isMapping = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Mappings merge key by key; anything else in `over` replaces what is in `base`. */
function mergeOver(base: unknown, over: unknown): unknown {
  if (!isMapping(base) || !isMapping(over)) return over;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) merged[key] = value === undefined ? base[key] : mergeOver(base[key], value);
  return merged;
}

/** The spec one region's release runs, before validation: base target and analysis with the region's fields merged over. */
function regionalInput(spec: ReleaseSpec, region: string, waveIndex: number): Record<string, unknown> {
  const own = spec.regions?.[region] ?? { target: {} };
  const { regions: _regions, waves: _waves, rollout, region: _region, ...base } = spec;
  const overTarget = own.target ?? {};
  const target =
    overTarget.type !== undefined && overTarget.type !== spec.target.type
      ? overTarget
      : // A simulated region runs in its own fleet: regions never share slots.
        { ...(spec.target.type === 'simulated' ? { fleet: region } : {}), ...(mergeOver(spec.target, overTarget) as Record<string, unknown>) };
  const strategy = own.strategy ?? (waveIndex > 0 && rollout?.laterWaves ? rollout.laterWaves : spec.strategy);
  const analysis = own.analysis ? { ...spec.analysis, ...own.analysis } : spec.analysis;
  return { ...base, region, target, strategy, analysis, alerts: own.alerts ?? spec.alerts };
}

/**
 * Where a problem in one region's merged spec is named: in the region's own block, or null when it
 * comes from rollout.laterWaves, which is validated (and its problems named) as a field of its own.
 */
function regionField(spec: ReleaseSpec, region: string, waveIndex: number, path: PropertyKey[]): PropertyKey[] | null {
  const own = spec.regions?.[region];
  if (path[0] === 'strategy' && !own?.strategy && waveIndex > 0 && spec.rollout?.laterWaves) return null;
  return ['regions', region, ...path];
}

/** Every mistake in regions, waves and rollout, each with the field it is in. */
function regionProblems(spec: ReleaseSpec): { path: PropertyKey[]; message: string }[] {
  const problems: { path: PropertyKey[]; message: string }[] = [];
  const names = Object.keys(spec.regions ?? {});
  if (spec.region !== undefined && spec.regions) problems.push({ path: ['region'], message: 'region is set by a rollout on each region\'s release; a spec with regions leaves it unset' });
  if (!spec.regions) {
    if (spec.waves) problems.push({ path: ['waves'], message: 'waves order regions: declare them in regions' });
    if (spec.rollout) problems.push({ path: ['rollout'], message: 'rollout applies to a spec with regions' });
    return problems;
  }
  if (names.length === 0) problems.push({ path: ['regions'], message: 'name at least one region, or leave regions out' });
  if (!spec.waves) {
    problems.push({ path: ['waves'], message: `a spec with regions orders them in waves, e.g. [[${names[0] ?? 'pilot'}]${names.length > 1 ? `, [${names.slice(1).join(', ')}]` : ''}]` });
    return problems;
  }
  if (spec.waves.length === 0) problems.push({ path: ['waves'], message: 'at least one wave' });
  const waveOf = new Map<string, number>();
  spec.waves.forEach((wave, w) => {
    if (wave.length === 0) problems.push({ path: ['waves', w], message: 'an empty wave: every wave names at least one region' });
    wave.forEach((region, i) => {
      if (!spec.regions![region]) {
        problems.push({ path: ['waves', w, i], message: `no region "${region}" in regions; they are ${names.join(', ') || 'none'}` });
      } else if (waveOf.has(region)) {
        problems.push({ path: ['waves', w, i], message: `${region} is already in wave ${waveOf.get(region)! + 1}: a region is in one wave only` });
      } else waveOf.set(region, w);
    });
  });
  for (const region of names) {
    if (!waveOf.has(region)) {
      problems.push({ path: ['regions', region], message: `${region} is in no wave: add it to waves (or remove it)` });
      continue;
    }
    const w = waveOf.get(region)!;
    const checked = checkedReleaseSpecSchema.safeParse(regionalInput(spec, region, w));
    if (!checked.success) {
      for (const issue of checked.error.issues) {
        const path = regionField(spec, region, w, issue.path);
        if (path) problems.push({ path, message: issue.message });
      }
    }
  }
  return problems;
}

/** The rollout a spec with regions asks for; null for a spec without regions (one release, as ever). */
export function rolloutPlan(spec: ReleaseSpec): RolloutPlan | null {
  if (!spec.regions || !spec.waves) return null;
  const specs: Record<string, ReleaseSpec> = {};
  spec.waves.forEach((wave, w) => {
    for (const region of wave) specs[region] = checkedReleaseSpecSchema.parse(regionalInput(spec, region, w));
  });
  return { waves: spec.waves.map((wave) => [...wave]), specs, soakMs: spec.rollout?.soak ?? 0, onFailure: spec.rollout?.onFailure ?? 'halt' };
}
export type ReleaseSpecInput = z.input<typeof releaseSpecSchema>;
export type LoadTestSpec = z.infer<typeof loadTestSchema>;
export type HookSpec = z.infer<typeof hookSchema>;
export type AlertPolicy = z.infer<typeof alertPolicySchema>;
