import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { CommandName } from '../../engine/release-state';
import { nameSchema, rolloutPlan, versionSchema } from '../../spec/release-spec';
import { RolloutNotFoundError, type RolloutCommandName } from '../../temporal/releases';
import { rolloutWorkflowId } from '../../../workflows/definitions';
import { principalOf, type ApiContext } from '../context';
import { ProblemError, problemSchema } from '../problem';
import { SpecRegistry } from '../spec-registry';
import { commandAcceptedSchema, commandBodySchema, errorResponses, releaseStatusSchema, reasonSchema } from '../schemas';
import { COMMANDS, sendCommand } from './releases';

const ROLLOUT_ID = /^rollout\/([^/]+)\/([^/]+)\/(.+)$/;

const rolloutIdParamsSchema = z
  .object({
    id: z
      .string()
      .max(500)
      .superRefine((id, ctx) => {
        const match = ROLLOUT_ID.exec(id);
        if (!match) {
          ctx.addIssue({ code: 'custom', message: 'a rollout id is rollout/<service>/<environment>/<version>, URL-encoded (%2F for /)' });
          return;
        }
        const parts: [string, z.ZodType, string][] = [
          ['service', nameSchema, match[1]!],
          ['environment', nameSchema, match[2]!],
          ['version', versionSchema, match[3]!],
        ];
        for (const [part, schema, value] of parts) {
          const result = schema.safeParse(value);
          if (!result.success) ctx.addIssue({ code: 'custom', message: `${part}: ${result.error.issues[0]?.message ?? 'invalid'}` });
        }
      })
      .describe('The rollout id, rollout/<service>/<environment>/<version>, URL-encoded.'),
  })
  .strict();

const regionStateSchema = z.object({
  region: z.string(),
  wave: z.number().int().describe('Index of its wave (0 = first).'),
  state: z.enum(['waiting', 'running', 'promoted', 'failed', 'rolling-back', 'rolled-back', 'rollback-failed', 'cancelled']),
  releaseId: z.string().nullable().describe("The region's release (release/<service>/<environment>@<region>/<version>); its commands are under /regions/{region}."),
  previousStable: z.string().nullable().describe('The version stable in the region before this rollout: what a rollback returns to.'),
  outcome: z.string().nullable().describe("How the region's release ended."),
  rollbackId: z.string().nullable(),
  detail: z.string().nullable(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
});

export const rolloutStatusSchema = z
  .object({
    rolloutId: z.string(),
    service: z.string(),
    environment: z.string(),
    version: z.string(),
    state: z.enum(['running', 'promoted', 'halted', 'rolled-back', 'aborted', 'superseded']),
    onFailure: z.enum(['halt', 'rollback-all']),
    soakMs: z.number(),
    currentWave: z.number().int(),
    soakUntil: z.string().nullable(),
    paused: z.object({ actor: z.string(), reason: z.string(), at: z.string() }).nullable(),
    waves: z.array(
      z.object({
        index: z.number().int(),
        regions: z.array(z.string()),
        state: z.enum(['waiting', 'soaking', 'paused', 'running', 'promoted', 'failed', 'cancelled']),
        startedAt: z.string().nullable(),
        finishedAt: z.string().nullable(),
      }),
    ),
    regions: z.array(regionStateSchema),
    startedAt: z.string(),
    finishedAt: z.string().nullable(),
    reason: z.string().nullable(),
    history: z.array(z.object({ at: z.string(), event: z.string(), detail: z.string(), actor: z.string().optional() })),
  })
  .describe('A rollout: its waves and each region’s state.');

const regionViewSchema = z.object({
  region: z.string(),
  stable: z.string().nullable().describe('The version stable in the region (null: nothing promoted through Rampart there yet).'),
  inFlight: z
    .object({ releaseId: z.string(), version: z.string(), state: z.string().nullable(), step: z.string().nullable(), rollback: z.boolean() })
    .nullable()
    .describe('The release or rollback in flight in the region, with its step.'),
  lastChange: z.string().nullable().describe('When the stable version became stable there.'),
});

const ROLLOUT_COMMANDS: readonly RolloutCommandName[] = ['pause', 'resume', 'abort'];
const ROLLOUT_SUMMARIES: Record<RolloutCommandName, string> = {
  pause: 'Pause the rollout: every region release in flight pauses and no next wave starts until resumed.',
  resume: 'Resume a paused rollout and its paused region releases.',
  abort: 'Abort the rollout: releases in flight roll back, and every region it promoted returns to its previous version (fast path).',
};

/** Rollouts across regions: status, commands on the whole rollout or one region, and what runs where. */
export const rolloutRoutes: FastifyPluginAsyncZod<{ ctx: ApiContext }> = async (app, { ctx }) => {
  const viewer = { access: { kind: 'token' as const, role: 'viewer' as const } };
  const operator = { access: { kind: 'token' as const, role: 'operator' as const } };
  const bearer = [{ bearer: [] }];
  const notFound = (error: unknown): never => {
    if (error instanceof RolloutNotFoundError) {
      throw new ProblemError(404, 'rollout-not-found', error.message, [{ field: 'params.id', message: error.message }]);
    }
    throw error;
  };

  app.get(
    '/v1/rollouts/:id',
    {
      config: viewer,
      schema: {
        tags: ['rollouts'],
        summary: 'One rollout by its URL-encoded id (rollout%2F<service>%2F<environment>%2F<version>): waves and each region’s state.',
        security: bearer,
        params: rolloutIdParamsSchema,
        response: { 200: rolloutStatusSchema, 404: problemSchema, ...errorResponses },
      },
    },
    async (request) => ctx.releases.rolloutStatus(request.params.id).catch(notFound),
  );

  app.get(
    '/v1/rollouts/:service/:environment/:version',
    {
      config: viewer,
      schema: {
        tags: ['rollouts'],
        summary: 'One rollout by service, environment and version.',
        security: bearer,
        params: z.object({ service: nameSchema, environment: nameSchema, version: versionSchema }).strict(),
        response: { 200: rolloutStatusSchema, 404: problemSchema, ...errorResponses },
      },
    },
    async (request) => {
      const { service, environment, version } = request.params;
      return ctx.releases.rolloutStatus(rolloutWorkflowId(service, environment, version)).catch(notFound);
    },
  );

  for (const name of ROLLOUT_COMMANDS) {
    app.post(
      `/v1/rollouts/:id/${name}`,
      {
        config: operator,
        schema: {
          tags: ['rollouts'],
          summary: ROLLOUT_SUMMARIES[name],
          description: 'Answers the rollout status after the command; 409 with the reason when it makes no sense now.',
          security: bearer,
          params: rolloutIdParamsSchema,
          body: z.object({ reason: reasonSchema }).strict(),
          response: { 200: rolloutStatusSchema, 404: problemSchema, 409: problemSchema, ...errorResponses },
        },
      },
      async (request) =>
        ctx.releases.rolloutCommand(request.params.id, name, { actor: principalOf(request).name, reason: request.body.reason, source: 'operator' }).catch(notFound),
    );
  }

  for (const name of COMMANDS) {
    app.post(
      `/v1/rollouts/:id/regions/:region/${name}`,
      {
        config: operator,
        schema: {
          tags: ['rollouts'],
          summary: `The ${name} command on one region's release of the rollout.`,
          description: "The same command as on a release; the region's release ending anything but promoted stops the rollout by its failure policy.",
          security: bearer,
          params: rolloutIdParamsSchema.extend({ region: nameSchema }),
          body: commandBodySchema,
          response: { 200: releaseStatusSchema, 202: commandAcceptedSchema, 404: problemSchema, 409: problemSchema, ...errorResponses },
        },
      },
      async (request, reply) => {
        const rollout = await ctx.releases.rolloutStatus(request.params.id).catch(notFound);
        const region = rollout.regions.find((r) => r.region === request.params.region);
        if (!region) {
          const detail = `no region ${request.params.region} in ${rollout.rolloutId}; its regions are ${rollout.regions.map((r) => r.region).join(', ')}`;
          throw new ProblemError(404, 'region-not-found', detail, [{ field: 'params.region', message: detail }]);
        }
        if (!region.releaseId) {
          const detail = `${region.region} has no release yet (its wave is ${region.state}); act on the whole rollout instead`;
          throw new ProblemError(409, 'command-rejected', detail, [{ field: 'params.region', message: detail }]);
        }
        return sendCommand(ctx, region.releaseId, name as CommandName, request.body.reason, principalOf(request), reply, request.body.step);
      },
    );
  }

  app.get(
    '/v1/services/:service/:environment/regions',
    {
      config: viewer,
      schema: {
        tags: ['services', 'rollouts'],
        summary: 'What runs where: per region, the stable version, the release in flight and its step, and when it last changed.',
        description: "Regions come from the service's registered spec, else from its newest rollout. 404 when the service has neither.",
        security: bearer,
        params: z.object({ service: nameSchema, environment: nameSchema }).strict(),
        response: { 200: z.object({ service: z.string(), environment: z.string(), regions: z.array(regionViewSchema) }), 404: problemSchema, ...errorResponses },
      },
    },
    async (request) => {
      const { service, environment } = request.params;
      const found = ctx.specs.find(service, environment);
      let names: string[] | undefined;
      if (found && !('ambiguous' in found)) {
        const plan = rolloutPlan(SpecRegistry.specFor(found, { version: '0'.repeat(40), requestedBy: 'where' }));
        names = plan?.waves.flat();
      }
      const regions = await ctx.releases.where(service, environment, names);
      if (regions.length === 0) {
        const detail = `${service} in ${environment} has no regions: no registered spec declares them and no rollout ran`;
        throw new ProblemError(404, 'no-regions', detail, [{ field: 'params.service', message: detail }]);
      }
      return { service, environment, regions };
    },
  );
};
