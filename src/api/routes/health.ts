import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiContext } from '../context';
import { problemSchema, ProblemError } from '../problem';

const READY_TIMEOUT_MS = 2_000;

/** Liveness, readiness (Temporal answers), Prometheus metrics and the OpenAPI document. */
export const healthRoutes: FastifyPluginAsyncZod<{ ctx: ApiContext }> = async (app, { ctx }) => {
  const probe = { access: { kind: 'public' as const }, rateLimit: false as const };

  app.get(
    '/healthz',
    {
      config: probe,
      schema: {
        tags: ['operations'],
        summary: 'Liveness: the process answers.',
        response: { 200: z.object({ status: z.literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      config: probe,
      schema: {
        tags: ['operations'],
        summary: 'Readiness: Temporal answers within 2 s.',
        response: { 200: z.object({ status: z.literal('ready'), temporal: z.literal('reachable') }), 503: problemSchema },
      },
    },
    async () => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          ctx.ping(),
          new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS))),
        ]);
      } catch (error) {
        throw new ProblemError(503, 'not-ready', `Temporal is not reachable: ${(error as Error).message}`, [], { 'retry-after': '5' });
      } finally {
        clearTimeout(timer);
      }
      return { status: 'ready' as const, temporal: 'reachable' as const };
    },
  );

  app.get(
    '/metrics',
    {
      config: { access: ctx.settings.metricsPublic ? { kind: 'public' } : { kind: 'token', role: 'viewer' } },
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics of the API (text exposition format).',
        security: ctx.settings.metricsPublic ? [] : [{ bearer: [] }],
      },
    },
    async (_request, reply) => {
      const text = await ctx.metrics.registry.metrics();
      return reply.type(ctx.metrics.registry.contentType).send(text);
    },
  );

  app.get('/openapi.json', { config: { access: { kind: 'public' } }, schema: { hide: true } }, async () => app.swagger());
};
