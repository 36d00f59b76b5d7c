import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { CommandName, ReleaseStatus } from '../../engine/release-state';
import { releaseRequestSchema } from '../../spec/release-request';
import { CommandRejectedError, ReleaseNotFoundError } from '../../temporal/releases';
import { releaseWorkflowId } from '../../../workflows/definitions';
import type { Principal } from '../auth';
import { principalOf, releasePath, type ApiContext } from '../context';
import { problemSchema } from '../problem';
import {
  commandAcceptedSchema,
  commandBodySchema,
  errorResponses,
  LIST_STATUSES,
  listQuerySchema,
  releaseIdParamsSchema,
  releaseListSchema,
  releaseParamsSchema,
  releaseStatusSchema,
  statusBody,
  submitResultSchema,
  submitStatus,
  summaryBodies,
  type ReleaseStatusBody,
} from '../schemas';

export const COMMANDS: readonly CommandName[] = ['pause', 'resume', 'promote', 'abort', 'approve'];

const COMMAND_SUMMARIES: Record<CommandName, string> = {
  pause: 'Pause: traffic stays where it is and no bake advances until resumed.',
  resume: 'Resume a paused release.',
  promote: 'Promote: skip the rest of the current bake and move to the next step (also lifts a pause).',
  abort: 'Abort: roll back to the stable version; answers once the rollback is done (or 202 after the command wait).',
  approve: 'Approve the manual gate the release is waiting at.',
};

/** Runs a promise for at most `ms`; the caller learns whether it finished. */
export async function within<T>(promise: Promise<T>, ms: number): Promise<{ done: true; value: T } | { done: false }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ done: false }>((resolve) => (timer = setTimeout(() => resolve({ done: false }), ms)));
  try {
    return await Promise.race([promise.then((value) => ({ done: true as const, value })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Sends an operator command as the token's name. The answer is the release's state after it; a
 * command still running after the command wait (an abort that is still rolling back) answers 202
 * with the state so far.
 */
export async function sendCommand(
  ctx: ApiContext,
  releaseId: string,
  name: CommandName,
  reason: string,
  principal: Principal,
  reply: FastifyReply,
  step?: string,
): Promise<ReleaseStatusBody | { accepted: true; detail: string; status: ReleaseStatusBody }> {
  const pending = ctx.releases.command(releaseId, name, { actor: principal.name, reason, source: 'operator', ...(step ? { step } : {}) });
  const count = (outcome: string) => ctx.metrics.commands.inc({ command: name, source: 'operator', outcome });
  let result: Awaited<ReturnType<typeof within<ReleaseStatus>>>;
  try {
    result = await within(pending, ctx.settings.commandWaitMs);
  } catch (error) {
    if (error instanceof CommandRejectedError) count('rejected');
    else if (error instanceof ReleaseNotFoundError) count('not-found');
    throw error;
  }
  if (result.done) {
    count('applied');
    return statusBody(result.value);
  }
  pending.catch(() => undefined);
  count('pending');
  const status = await ctx.releases.status(releaseId);
  void reply.status(202);
  return {
    accepted: true,
    detail: `${name} was sent but had not finished after ${ctx.settings.commandWaitMs} ms${name === 'abort' ? ' (the rollback is still running)' : ''}; follow the release`,
    status: statusBody(status),
  };
}

export const releaseRoutes: FastifyPluginAsyncZod<{ ctx: ApiContext }> = async (app, { ctx }) => {
  const viewer = { access: { kind: 'token' as const, role: 'viewer' as const } };
  const operator = { access: { kind: 'token' as const, role: 'operator' as const } };
  const bearer = [{ bearer: [] }];

  app.post(
    '/v1/releases',
    {
      config: operator,
      schema: {
        tags: ['releases'],
        summary: "Start a release: a registered service's version, or an inline spec on the simulated target.",
        description:
          'A service registered in RAMPART_SPECS_DIR is released from its registered spec: the body names it and brings the version, ' +
          'commit, pipelineUrl and overrides (bakes, weights, approvals, analysis interval and margins) within the limits of that spec; ' +
          'target, strategy, analysis, alerts or notifications in the body are refused (400 naming the field). A service without one ' +
          'may come with an inline spec whose target is simulated and whose hooks and notifications go to RAMPART_OUTBOUND_HOSTS. ' +
          'The release goes to its service lane: 201 started, 202 queued behind the release it supersedes (which rolls back first), ' +
          '200 when this version was already submitted (the existing release). The requester is the token name.',
        security: bearer,
        body: releaseRequestSchema,
        response: { 200: submitResultSchema, 201: submitResultSchema, 202: submitResultSchema, 409: problemSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const spec = ctx.specs.releaseFor(request.body, principalOf(request).name);
      const result = await ctx.releases.submit(spec);
      ctx.metrics.webhooks.inc({ source: 'api', outcome: result.disposition });
      return reply.status(submitStatus(result)).header('location', releasePath(result.releaseId)).send(result);
    },
  );

  app.get(
    '/v1/releases',
    {
      config: viewer,
      schema: {
        tags: ['releases'],
        summary: 'List releases (Temporal visibility), newest first.',
        security: bearer,
        querystring: listQuerySchema,
        response: { 200: releaseListSchema, ...errorResponses },
      },
    },
    async (request) => {
      const { service, environment, status, limit } = request.query;
      const releases = await ctx.releases.list({
        ...(service ? { service } : {}),
        ...(environment ? { environment } : {}),
        ...(status ? { status: status === 'running' ? 'running' : LIST_STATUSES[status] } : {}),
        limit,
      });
      return { releases: summaryBodies(releases) };
    },
  );

  const statusResponse = { 200: releaseStatusSchema, 404: problemSchema, ...errorResponses };

  app.get(
    '/v1/releases/:id',
    {
      config: viewer,
      schema: {
        tags: ['releases'],
        summary: 'One release by its URL-encoded id (release%2F<service>%2F<environment>%2F<version>).',
        security: bearer,
        params: releaseIdParamsSchema,
        response: statusResponse,
      },
    },
    async (request) => statusBody(await ctx.releases.status(request.params.id)),
  );

  app.get(
    '/v1/releases/:service/:environment/:version',
    {
      config: viewer,
      schema: {
        tags: ['releases'],
        summary: 'One release by service, environment and version.',
        security: bearer,
        params: releaseParamsSchema,
        response: statusResponse,
      },
    },
    async (request) => {
      const { service, environment, version } = request.params;
      return statusBody(await ctx.releases.status(releaseWorkflowId(service, environment, version)));
    },
  );

  const commandResponse = { 200: releaseStatusSchema, 202: commandAcceptedSchema, 404: problemSchema, 409: problemSchema, ...errorResponses };
  for (const name of COMMANDS) {
    app.post(
      `/v1/releases/:id/${name}`,
      {
        config: operator,
        schema: {
          tags: ['releases'],
          summary: COMMAND_SUMMARIES[name],
          description: 'Answers the release state after the command; 409 with the reason when the command makes no sense now.',
          security: bearer,
          params: releaseIdParamsSchema,
          body: commandBodySchema,
          response: commandResponse,
        },
      },
      async (request, reply) => sendCommand(ctx, request.params.id, name, request.body.reason, principalOf(request), reply, request.body.step),
    );
    app.post(
      `/v1/releases/:service/:environment/:version/${name}`,
      {
        config: operator,
        schema: {
          tags: ['releases'],
          summary: COMMAND_SUMMARIES[name],
          security: bearer,
          params: releaseParamsSchema,
          body: commandBodySchema,
          response: commandResponse,
        },
      },
      async (request, reply) => {
        const { service, environment, version } = request.params;
        return sendCommand(ctx, releaseWorkflowId(service, environment, version), name, request.body.reason, principalOf(request), reply, request.body.step);
      },
    );
  }
};
