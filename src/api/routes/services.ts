import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { nameSchema } from '../../spec/release-spec';
import type { ApiContext } from '../context';
import { problemSchema, ProblemError } from '../problem';
import { errorResponses } from '../schemas';

const laneRecordSchema = z.object({ releaseId: z.string(), version: z.string() });

const registeredSchema = z.object({
  service: z.string(),
  environment: z.string(),
  file: z.string().describe('The file in RAMPART_SPECS_DIR.'),
  github: z
    .object({ repository: z.string(), workflows: z.array(z.string()), branches: z.array(z.string()) })
    .nullable()
    .describe('Which GitHub events release the service.'),
  alerts: z.object({ onFiring: z.enum(['pause', 'abort']), resumeOnResolved: z.boolean() }),
  spec: z.record(z.string(), z.unknown()).describe('The registered spec, as written (no version).'),
});

/** The registered specs (read-only: they are files) and each lane's release in flight. */
export const serviceRoutes: FastifyPluginAsyncZod<{ ctx: ApiContext }> = async (app, { ctx }) => {
  const viewer = { access: { kind: 'token' as const, role: 'viewer' as const } };

  app.get(
    '/v1/services',
    {
      config: viewer,
      schema: {
        tags: ['services'],
        summary: 'The registered service specs (RAMPART_SPECS_DIR), used by webhooks that carry no spec.',
        security: [{ bearer: [] }],
        response: { 200: z.object({ services: z.array(registeredSchema) }), ...errorResponses },
      },
    },
    async () => ({
      services: ctx.specs.list().map((e) => ({
        service: e.service,
        environment: e.environment,
        file: e.file,
        github: e.github,
        alerts: e.alerts,
        spec: e.template,
      })),
    }),
  );

  app.get(
    '/v1/services/:service/:environment/lane',
    {
      config: viewer,
      schema: {
        tags: ['services'],
        summary: "The lane of a service in an environment: the release in flight, the one queued behind it, recent versions.",
        security: [{ bearer: [] }],
        params: z.object({ service: nameSchema, environment: nameSchema }).strict(),
        response: {
          200: z.object({
            service: z.string(),
            environment: z.string(),
            current: laneRecordSchema.nullable(),
            pending: laneRecordSchema.nullable(),
            recent: z.array(laneRecordSchema),
          }),
          404: problemSchema,
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const { service, environment } = request.params;
      const lane = await ctx.releases.lane(service, environment);
      if (!lane) {
        const detail = `no release of ${service} in ${environment} has been submitted`;
        throw new ProblemError(404, 'lane-not-found', detail, [{ field: 'params.service', message: detail }]);
      }
      return lane;
    },
  );
};
