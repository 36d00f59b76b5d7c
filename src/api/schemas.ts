// The API's own request and response schemas. Together with the release spec's schema they validate
// every request and produce the OpenAPI document, so the page and the behaviour cannot drift apart.
import { z } from 'zod';
import type { ReleaseStatus } from '../engine/release-state';
import { nameSchema, versionSchema } from '../spec/release-spec';
import type { ReleaseSummary } from '../temporal/releases';
import type { SubmitResult } from '../../workflows/definitions';
import { problemSchema, ProblemError } from './problem';

export const reasonSchema = z.string().trim().min(1, 'say why: the reason goes into the audit trail').max(1_000);

export const commandBodySchema = z
  .object({
    reason: reasonSchema.describe('Why: recorded with the actor (the token name) in the release history.'),
    step: nameSchema
      .optional()
      .describe("The step the command is meant for (the status's step.name). Once the release has moved on to another step the command is refused with 409, rather than acting on a step the sender never saw. The CLI fills it in for promote."),
  })
  .strict()
  .describe('An operator command.');

export const releaseParamsSchema = z
  .object({
    service: nameSchema.describe('The service.'),
    environment: nameSchema.describe('The environment.'),
    version: versionSchema.describe('The version (URL-encode the slashes of an image reference).'),
  })
  .strict();

const RELEASE_ID = /^release\/([^/]+)\/([^/]+)\/(.+)$/;
/** A rollback's id: rollback/<service>/<environment>/<version>/<8 hex digits> (rollbackWorkflowId). */
const ROLLBACK_ID = /^rollback\/([^/]+)\/([^/]+)\/(.+)\/[0-9a-f]{8}$/;

/** `<environment>` or, for a region of a rollout, `<environment>@<region>` (placeOf), as parts to check. */
function placeParts(place: string): [string, z.ZodType, string][] {
  const at = place.indexOf('@');
  if (at < 0) return [['environment', nameSchema, place]];
  return [
    ['environment', nameSchema, place.slice(0, at)],
    ['region', nameSchema, place.slice(at + 1)],
  ];
}

/** A release id, release/<service>/<environment>/<version>, URL-encoded as one path segment. */
export const releaseIdParamsSchema = z
  .object({
    id: z
      .string()
      .max(500)
      .superRefine((id, ctx) => {
        const match = RELEASE_ID.exec(id) ?? ROLLBACK_ID.exec(id);
        if (!match) {
          ctx.addIssue({ code: 'custom', message: 'a release id is release/<service>/<environment>/<version>, URL-encoded (%2F for /)' });
          return;
        }
        const checks: [string, z.ZodType, string][] = [
          ['service', nameSchema, match[1]!],
          // <environment>@<region> for a region of a rollout.
          ...placeParts(match[2]!),
          ['version', versionSchema, match[3]!],
        ];
        for (const [part, schema, value] of checks) {
          const result = schema.safeParse(value);
          if (!result.success) ctx.addIssue({ code: 'custom', message: `${part}: ${result.error.issues[0]?.message ?? 'invalid'}` });
        }
      })
      .describe('The release id, release/<service>/<environment>/<version> (release/<service>/<environment>@<region>/<version> in a rollout), URL-encoded.'),
  })
  .strict();

export const LIST_STATUSES = {
  running: 'Running',
  completed: 'Completed',
  failed: 'Failed',
  cancelled: 'Canceled',
  terminated: 'Terminated',
  'timed-out': 'TimedOut',
} as const;

export const listQuerySchema = z
  .object({
    service: nameSchema.optional().describe('Only this service.'),
    environment: nameSchema.optional().describe('Only this environment.'),
    status: z
      .enum(Object.keys(LIST_STATUSES) as [keyof typeof LIST_STATUSES, ...(keyof typeof LIST_STATUSES)[]])
      .optional()
      .describe('Only releases whose workflow is in this state; running means in flight (including paused).'),
    limit: z.coerce.number().int().min(1).max(1_000).default(100).describe('At most this many, newest first.'),
  })
  .strict();

export const submitResultSchema = z
  .object({
    releaseId: z.string().describe('release/<service>/<environment>/<version>; for a spec with regions, the rollout id (as rolloutId).'),
    rolloutId: z.string().optional().describe('rollout/<service>/<environment>/<version>: set when the spec has regions (one rollout, one release per region). Follow it at /v1/rollouts/{id}.'),
    disposition: z
      .enum(['started', 'queued', 'duplicate', 'busy', 'accepted', 'stale'])
      .describe(
        'started: running now; queued: starts when the release it supersedes has rolled back; duplicate: this version was already submitted; ' +
          'busy: a drill refused because a release is in flight (answered 409 where one release was asked for); ' +
          'accepted: handed to the lane without waiting for its decision (Prefer: respond-async), answered 202; ' +
          'stale: refused because its commit is older than one already started or queued (versions never go back; answered 409 where one release was asked for).',
      ),
    supersedes: z.string().optional().describe('The release in flight that this one supersedes.'),
    reason: z.string().optional().describe('Why the lane refused it (stale).'),
    replayed: z.boolean().optional().describe('A redelivered webhook: the answer of its first delivery.'),
  })
  .describe('Where the submitted release went.');

const transitionSchema = z.looseObject({
  at: z.string(),
  event: z.string(),
  state: z.string(),
  step: z.string().optional(),
  actor: z.string().optional().describe('Who caused it: the token name, alertmanager, or rampart.'),
  reason: z.string().optional(),
});

export const releaseStatusSchema = z
  .looseObject({
    releaseId: z.string(),
    service: z.string(),
    environment: z.string(),
    version: z.string(),
    stableVersion: z.string().nullable().describe('What was at 100% before; what a rollback returns to.'),
    state: z
      .string()
      .describe('running, paused, awaiting-approval, rolling-back, promoted, rolled-back, aborted, superseded or cancelled.'),
    phase: z.string().nullable().describe('synthetic, canary, ramp or full.'),
    step: z.looseObject({ index: z.number(), name: z.string() }).nullable(),
    stepCount: z.number(),
    routes: z.looseObject({ canaryWeight: z.number(), internalAudience: z.looseObject({ header: z.string(), value: z.string() }).nullable() }),
    pause: z.looseObject({ cause: z.string(), actor: z.string(), reason: z.string(), at: z.string() }).nullable(),
    analysis: z.array(z.looseObject({ at: z.string(), step: z.string(), outcome: z.string(), windowSeconds: z.number(), verdicts: z.array(z.unknown()) })),
    loadTests: z.array(z.unknown()),
    compensation: z.array(z.string()).describe('Undos registered so far, oldest first.'),
    history: z.array(transitionSchema).describe('Every transition, with actor and reason: the audit trail.'),
    outcome: z.looseObject({ result: z.string(), reason: z.string(), actor: z.string().optional(), at: z.string() }).nullable(),
    requestedBy: z.string(),
    commit: z.looseObject({ sha: z.string(), time: z.string() }).optional(),
    startedAt: z.string(),
    finishedAt: z.string().nullable(),
  })
  .describe("The release's state, from its workflow's status query.");

export type ReleaseStatusBody = z.output<typeof releaseStatusSchema>;

/**
 * The status as the response schema types it. The schema is loose on purpose: fields the workflow
 * adds later reach clients without an API change, so the interface and the schema differ only in
 * the index signature.
 */
export function statusBody(status: ReleaseStatus): ReleaseStatusBody {
  return status as unknown as ReleaseStatusBody;
}

export const commandAcceptedSchema = z
  .object({
    accepted: z.literal(true),
    detail: z.string(),
    status: releaseStatusSchema,
  })
  .describe('The command was accepted but had not finished within the wait (an abort still rolling back); poll the release.');

export const releaseSummarySchema = z.looseObject({
  releaseId: z.string(),
  service: z.string().optional(),
  environment: z.string().optional(),
  version: z.string().optional(),
  region: z.string().optional().describe('The region, for a release that is one region of a rollout.'),
  phase: z.string().optional().describe('The phase it reached.'),
  outcome: z.string().optional().describe('How it ended, once it has.'),
  status: z.string().describe('The workflow status: RUNNING, COMPLETED, FAILED, …'),
  startTime: z.string(),
  closeTime: z.string().nullable(),
});

export const releaseListSchema = z.object({ releases: z.array(releaseSummarySchema) });

export function summaryBodies(summaries: ReleaseSummary[]): z.output<typeof releaseSummarySchema>[] {
  return summaries as unknown as z.output<typeof releaseSummarySchema>[];
}

/** The HTTP status of a submission; a drill refused by a busy lane, or a stale commit, is a conflict, answered as a problem. */
export function submitStatus(result: SubmitResult): 200 | 201 | 202 {
  switch (result.disposition) {
    case 'started':
      return 201;
    case 'queued':
    case 'accepted':
      return 202;
    case 'duplicate':
      return 200;
    case 'busy': {
      const detail = `${result.releaseId} is in flight; a drill never supersedes a release`;
      throw new ProblemError(409, 'lane-busy', detail, [{ field: 'body.drill', message: detail }]);
    }
    case 'stale': {
      const detail = result.reason ?? 'an older commit than one already started or queued';
      throw new ProblemError(409, 'stale-version', detail, [{ field: 'body.commit.time', message: detail }]);
    }
  }
}

/** The errors every authenticated route may answer, for the OpenAPI page. */
export const errorResponses = {
  400: problemSchema.describe('Invalid request: the errors name each field.'),
  401: problemSchema.describe('Missing or wrong credentials.'),
  403: problemSchema.describe('The token is valid but its role is too low.'),
  413: problemSchema.describe('Body too large.'),
  415: problemSchema.describe('Only application/json bodies are accepted.'),
  429: problemSchema.describe('Rate limit reached; see Retry-After.'),
  503: problemSchema.describe('Temporal cannot be reached right now.'),
} as const;
