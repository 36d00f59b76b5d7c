import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { InvalidSpecError } from '../../spec/parse';
import { INLINE_SPEC_FIELDS, inlineSpecSchema, releaseOverridesSchema } from '../../spec/release-request';
import { nameSchema, type ReleaseSpec } from '../../spec/release-spec';
import { drillTimingShape, refineDrillTiming, type DrillScheduleInput } from '../../temporal/drills';
import { drillScheduleId } from '../../../workflows/definitions';
import { principalOf, type ApiContext, type DrillOperations } from '../context';
import { invalidFields, problemSchema, ProblemError, summarize, type FieldProblem } from '../problem';
import { commandBodySchema, errorResponses } from '../schemas';

/** What a caller may send to create a drill: like a release, a registered service with overrides, or an inline simulated spec. */
export const drillRequestSchema = z
  .object({
    service: nameSchema.describe('The service to drill.'),
    environment: nameSchema
      .optional()
      .describe("Its environment (the drill goes through the same lane as its releases); default the registered spec's only one, else production."),
    spec: inlineSpecSchema
      .optional()
      .describe('Only for a service without a registered spec (RAMPART_SPECS_DIR): the spec to drill with, on the simulated target.'),
    overrides: releaseOverridesSchema.optional(),
    ...drillTimingShape,
  })
  .strict()
  .superRefine(refineDrillTiming)
  .describe('A drill schedule.');

type DrillRequest = z.infer<typeof drillRequestSchema>;

// Drills get a version of their own per run; this one only lets the spec be checked whole.
const PLACEHOLDER_VERSION = '0000000';
const SPEC_FIELDS: readonly string[] = INLINE_SPEC_FIELDS;

/** The spec a drill runs with: decided like a release's, from the registered spec or an inline simulated one. */
function drillSpecFor(ctx: ApiContext, input: DrillRequest): ReleaseSpec {
  try {
    return ctx.specs.releaseFor(
      {
        service: input.service,
        ...(input.environment ? { environment: input.environment } : {}),
        version: PLACEHOLDER_VERSION,
        ...input.spec,
        ...(input.overrides ? { overrides: input.overrides } : {}),
      },
      'rampart-drill',
    );
  } catch (error) {
    if (!(error instanceof InvalidSpecError)) throw error;
    const errors: FieldProblem[] = error.problems.map((p) => ({
      field: SPEC_FIELDS.includes(p.field.split('.')[0]!) ? `body.spec.${p.field}` : `body.${p.field}`,
      message: p.message,
    }));
    throw new ProblemError(400, 'invalid-spec', summarize(errors, 'the drill spec is not a valid release spec'), errors);
  }
}

const drillParamsSchema = z
  .object({
    service: nameSchema.describe('The drilled service.'),
    environment: nameSchema.describe('Its environment.'),
  })
  .strict();

export const drillScheduleSummarySchema = z
  .object({
    scheduleId: z.string().describe('drill/<service>/<environment>.'),
    service: z.string(),
    environment: z.string(),
    kind: z.enum(['canary-fault', 'revert']).describe('Which drill the schedule runs.'),
    paused: z.boolean(),
    note: z.string().nullable().describe('Why it was last paused or resumed, and by whom.'),
    every: z.string().nullable().describe('The interval between drills, when it runs on one.'),
    cron: z.string().nullable().describe('The cron expression, when it runs on one.'),
    nextRuns: z.array(z.string()).describe('The next times a drill is due by the schedule (it runs only if not paused then).'),
    recentRuns: z.array(z.object({ workflowId: z.string(), at: z.string() })).describe('The last drills started, oldest first.'),
  })
  .describe('A drill schedule (a Temporal Schedule).');

export const drillResultSchema = z
  .object({
    kind: z.enum(['canary-fault', 'revert']).default('canary-fault').describe('Which drill: a faulty build caught in the canary phase, or a healthy build rolled back with the rollback command.'),
    service: z.string(),
    environment: z.string(),
    result: z.enum(['passed', 'failed', 'skipped']),
    reason: z.string().describe('Why it passed, failed or was skipped (a release in flight is named).'),
    releaseId: z.string().nullable().describe('The drill release, when one ran.'),
    version: z.string().nullable(),
    outcome: z.string().nullable().describe('How the drill release ended; rolled-back is what a drill expects.'),
    startedAt: z.string(),
    finishedAt: z.string(),
    timeToDetectMs: z.number().nullable().describe('From the faulty build taking traffic to the decision to roll back.'),
    timeToSafeMs: z
      .number()
      .nullable()
      .describe('canary-fault: from the same moment to all traffic verified back on stable. revert: from the rollback command to all traffic on the previous version.'),
    sloMs: z.number().describe('The time to safe a passing drill stays under.'),
    rollbackId: z.string().nullable().optional().describe("A revert drill's rollback, when one ran."),
  })
  .describe('One finished drill.');

const resultsQuerySchema = z
  .object({
    service: nameSchema.optional().describe('Only this service.'),
    limit: z.coerce.number().int().min(1).max(1_000).default(50).describe('At most this many, newest first.'),
  })
  .strict();

/** A drill schedule's path on the API. */
export function drillPath(service: string, environment: string): string {
  return `/v1/drills/${service}/${environment}`;
}

/** Rollback drills on Temporal Schedules: create, list, inspect, pause, resume, trigger, delete, and their results. */
export const drillRoutes: FastifyPluginAsyncZod<{ ctx: ApiContext }> = async (app, { ctx }) => {
  const viewer = { access: { kind: 'token' as const, role: 'viewer' as const } };
  const operator = { access: { kind: 'token' as const, role: 'operator' as const } };
  const admin = { access: { kind: 'token' as const, role: 'admin' as const } };
  const bearer = [{ bearer: [] }];
  const tags = ['drills'];

  const drills = (): DrillOperations => {
    if (ctx.drills) return ctx.drills;
    const detail = 'this API process was started without drill schedules; use one started by `npm start` or src/api/main.ts';
    throw new ProblemError(503, 'drills-unavailable', detail, [{ field: 'url', message: detail }]);
  };

  app.post(
    '/v1/drills',
    {
      config: operator,
      schema: {
        tags,
        summary: 'Create a drill schedule for a service (one per service and environment).',
        description:
          'Each drill releases a build carrying the fault to the service’s drill target through its lane, lets the engine roll it back, ' +
          'and records the time to detect and the time to safe against the SLO. With a release in flight it skips or waits (whenBusy). ' +
          '409 when the service already has a drill schedule.',
        security: bearer,
        body: drillRequestSchema,
        response: { 201: drillScheduleSummarySchema, 409: problemSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { overrides: _overrides, spec: _inline, ...input } = request.body;
      const { service, environment, version: _version, commit: _commit, pipelineUrl: _pipelineUrl, ...spec } = drillSpecFor(ctx, request.body);
      const schedule: DrillScheduleInput = { ...input, service, environment, spec };
      let created;
      try {
        created = await drills().create(schedule);
      } catch (error) {
        if (error instanceof z.ZodError) throw invalidFields('body', error.issues, 'invalid drill schedule');
        throw error;
      }
      request.log.info({ scheduleId: created.scheduleId, caller: principalOf(request).name }, 'drill schedule created');
      return reply.status(201).header('location', drillPath(created.service, created.environment)).send(created);
    },
  );

  app.get(
    '/v1/drills',
    {
      config: viewer,
      schema: { tags, summary: 'List the drill schedules.', security: bearer, response: { 200: z.object({ drills: z.array(drillScheduleSummarySchema) }), ...errorResponses } },
    },
    async () => ({ drills: await drills().list() }),
  );

  app.get(
    '/v1/drills/results',
    {
      config: viewer,
      schema: {
        tags,
        summary: 'Finished drills, newest first: when, which service, each timing, pass or fail and why.',
        security: bearer,
        querystring: resultsQuerySchema,
        response: { 200: z.object({ results: z.array(drillResultSchema) }), ...errorResponses },
      },
    },
    async (request) => {
      const { service, limit } = request.query;
      return { results: await drills().results({ ...(service ? { service } : {}), limit }) };
    },
  );

  const oneResponse = { 200: drillScheduleSummarySchema, 404: problemSchema, ...errorResponses };

  app.get(
    '/v1/drills/:service/:environment',
    { config: viewer, schema: { tags, summary: 'One drill schedule: paused or not, next and recent runs.', security: bearer, params: drillParamsSchema, response: oneResponse } },
    async (request) => drills().describe(drillScheduleId(request.params.service, request.params.environment)),
  );

  for (const action of ['pause', 'resume'] as const) {
    app.post(
      `/v1/drills/:service/:environment/${action}`,
      {
        config: operator,
        schema: {
          tags,
          summary: action === 'pause' ? 'Pause a drill schedule: no drill runs until it is resumed.' : 'Resume a paused drill schedule.',
          description: 'The reason and the token name become the schedule’s note.',
          security: bearer,
          params: drillParamsSchema,
          body: commandBodySchema,
          response: oneResponse,
        },
      },
      async (request) => {
        const scheduleId = drillScheduleId(request.params.service, request.params.environment);
        const note = `${action}d by ${principalOf(request).name}: ${request.body.reason}`;
        return action === 'pause' ? drills().pause(scheduleId, note) : drills().resume(scheduleId, note);
      },
    );
  }

  app.post(
    '/v1/drills/:service/:environment/trigger',
    {
      config: operator,
      schema: {
        tags,
        summary: 'Run a drill now (also while paused), under the schedule’s overlap policy; answers 202 with the schedule.',
        security: bearer,
        params: drillParamsSchema,
        response: { 202: drillScheduleSummarySchema, 404: problemSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const summary = await drills().trigger(drillScheduleId(request.params.service, request.params.environment));
      request.log.info({ scheduleId: summary.scheduleId, caller: principalOf(request).name }, 'drill triggered');
      return reply.status(202).send(summary);
    },
  );

  app.delete(
    '/v1/drills/:service/:environment',
    {
      config: admin,
      schema: {
        tags,
        summary: 'Delete a drill schedule; a drill already running finishes, and past results stay.',
        security: bearer,
        params: drillParamsSchema,
        response: { 204: z.null().describe('Deleted.'), 404: problemSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const scheduleId = drillScheduleId(request.params.service, request.params.environment);
      await drills().delete(scheduleId);
      request.log.info({ scheduleId, caller: principalOf(request).name }, 'drill schedule deleted');
      return reply.status(204).send(null);
    },
  );
};
