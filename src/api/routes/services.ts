import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { nameSchema } from '../../spec/release-spec';
import { GITHUB_RELEASE_EVENTS } from '../spec-registry';
import { principalOf, type ApiContext } from '../context';
import { problemSchema, ProblemError } from '../problem';
import { errorResponses } from '../schemas';

const laneRecordSchema = z.object({ releaseId: z.string(), version: z.string() });

export const REDACTED = '[redacted]';

const registeredSchema = z.object({
  service: z.string(),
  environment: z.string(),
  file: z.string().describe('The file in RAMPART_SPECS_DIR.'),
  github: z
    .object({
      repository: z.string(),
      workflows: z.array(z.string()),
      branches: z.array(z.string()),
      events: z.array(z.enum(GITHUB_RELEASE_EVENTS)),
      environments: z.array(z.string()),
    })
    .nullable()
    .describe('Which GitHub events release the service.'),
  alerts: z.object({ onFiring: z.enum(['pause', 'abort']), resumeOnResolved: z.boolean() }),
  spec: z
    .record(z.string(), z.unknown())
    .describe(`The registered spec (no version). Below admin, every string outside the release's shape (commands, environment, URLs, sockets, queries) reads "${REDACTED}".`),
  redacted: z.boolean().describe('Whether spec had its strings redacted (every role below admin).'),
});

/**
 * Strings a spec may show to every reader: names, kinds and durations. Anything else may be a
 * secret (an environment value, a webhook URL with its token in the path, a command line, a socket
 * or Prometheus address), and a field added later is hidden until it is listed here.
 */
const SHOWN_STRINGS = new Set(['service', 'environment', 'type', 'name', 'phase', 'kind', 'bake', 'interval', 'timeout', 'onFiring', 'healthPath', 'waves', 'soak', 'onFailure', 'fleet']);

/** The spec with every string not known to be harmless replaced; numbers and booleans (weights, ports, margins) stay. */
export function redactSpec(value: unknown, key = ''): unknown {
  if (Array.isArray(value)) return value.map((item) => redactSpec(item, key));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactSpec(v, k)]));
  }
  if (typeof value === 'string') return SHOWN_STRINGS.has(key) ? value : REDACTED;
  return value;
}

/** The registered specs (read-only: they are files) and each lane's release in flight. */
export const serviceRoutes: FastifyPluginAsyncZod<{ ctx: ApiContext }> = async (app, { ctx }) => {
  const viewer = { access: { kind: 'token' as const, role: 'viewer' as const } };

  app.get(
    '/v1/services',
    {
      config: viewer,
      schema: {
        tags: ['services'],
        summary: 'The registered service specs (RAMPART_SPECS_DIR), used by webhooks that carry no spec; secrets redacted below admin.',
        security: [{ bearer: [] }],
        response: { 200: z.object({ services: z.array(registeredSchema) }), ...errorResponses },
      },
    },
    async (request) => {
      // What a release may touch is review-gated configuration: admins, who could change it, see it whole.
      const whole = principalOf(request).role === 'admin';
      return {
        services: ctx.specs.list().map((e) => ({
          service: e.service,
          environment: e.environment,
          file: e.file,
          github: e.github,
          alerts: e.alerts,
          spec: whole ? e.template : (redactSpec(e.template) as Record<string, unknown>),
          redacted: !whole,
        })),
      };
    },
  );

  app.get(
    '/v1/services/:service/:environment/lane',
    {
      config: viewer,
      schema: {
        tags: ['services'],
        summary: "The lane of a service in an environment: the release in flight, the one queued behind it, recent versions, versions that were stable.",
        security: [{ bearer: [] }],
        params: z.object({ service: nameSchema, environment: nameSchema }).strict(),
        response: {
          200: z.object({
            service: z.string(),
            environment: z.string(),
            current: laneRecordSchema.nullable(),
            pending: laneRecordSchema.nullable(),
            recent: z.array(laneRecordSchema),
            stable: z.array(laneRecordSchema).describe('Versions that were stable, oldest first: what a rollback may return to.'),
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
