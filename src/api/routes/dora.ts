import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { nameSchema } from '../../spec/release-spec';
import type { ApiContext } from '../context';
import { errorResponses } from '../schemas';

const doraQuerySchema = z
  .object({
    service: nameSchema.optional().describe('Only this service.'),
    environment: nameSchema.optional().describe('Only this environment.'),
    days: z.coerce.number().int().min(1).max(365).default(30).describe('The window: releases that finished in the last this many days.'),
  })
  .strict();

const durationSummarySchema = z
  .object({ count: z.number(), medianSeconds: z.number(), meanSeconds: z.number() })
  .nullable()
  .describe('Over the releases that carry the figure; null when none does.');

export const doraFiguresSchema = z
  .object({
    service: z.string(),
    environment: z.string(),
    window: z.object({ from: z.string(), to: z.string(), days: z.number() }),
    deployments: z.number().describe('Releases promoted to 100% in the window.'),
    deploymentFrequencyPerDay: z.number().describe('Deployment frequency: deployments per day of the window.'),
    leadTimeForChanges: durationSummarySchema.describe('Lead time for changes: commit time to 100%, over deployments that carried a commit time.'),
    changeFailureRate: z.number().nullable().describe('Failed releases (rolled back or aborted) over failed plus deployed; null with neither.'),
    failedDeployments: z.number(),
    failedDeploymentRecoveryTime: durationSummarySchema.describe('Failed deployment recovery time: from the decision to roll back to traffic verified back on stable.'),
    regions: z
      .record(z.string(), z.object({ deployments: z.number(), failures: z.number() }))
      .optional()
      .describe("A service released in rollouts across regions: each rollout counts once above; here each region's promoted and failed releases."),
  })
  .describe('The four DORA keys of one service and environment.');

/** The four DORA keys per service, from the releases' own history in Temporal (visibility and memo). */
export const doraRoutes: FastifyPluginAsyncZod<{ ctx: ApiContext }> = async (app, { ctx }) => {
  app.get(
    '/v1/dora',
    {
      config: { access: { kind: 'token', role: 'viewer' } },
      schema: {
        tags: ['dora'],
        summary: 'The four DORA keys per service and environment over a window of days.',
        description:
          'Computed from the releases that finished in the window. Drills, superseded and cancelled releases are neither deployments nor failures. ' +
          'A service with no finished release in the window is not listed.',
        security: [{ bearer: [] }],
        querystring: doraQuerySchema,
        response: { 200: z.object({ figures: z.array(doraFiguresSchema) }), ...errorResponses },
      },
    },
    async (request) => {
      const { service, environment, days } = request.query;
      return { figures: await ctx.releases.dora({ ...(service ? { service } : {}), ...(environment ? { environment } : {}), days }) };
    },
  );
};
