import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { principalOf, type ApiContext } from '../context';
import { errorResponses } from '../schemas';
import { alertActionSchema, alertmanagerPayloadSchema, applyAlerts } from '../webhooks/alertmanager';

export const alertRoutes: FastifyPluginAsyncZod<{ ctx: ApiContext }> = async (app, { ctx }) => {
  app.post(
    '/v1/alerts/alertmanager',
    {
      config: { access: { kind: 'alertmanager' } },
      schema: {
        tags: ['webhooks'],
        summary: 'Alertmanager webhook: firing alerts pause (or abort) the matching releases in flight; resolved ones may resume them.',
        description:
          'Authorization: Bearer <RAMPART_ALERTMANAGER_TOKEN> (Alertmanager http_config.authorization), or an operator API token. ' +
          'Alerts match releases in flight by their service label, and environment label when present. A firing alert does what its ' +
          "rampart_action label says (pause or abort), else what the release's alert policy says (default pause). A resolved alert " +
          'resumes a release only when an alert paused it, the policy has resumeOnResolved, and no other alert for the service fires. ' +
          "Which alerts fire is kept by the service's lane in Temporal, so any API replica may take any notification. " +
          'Repeated and late notifications change nothing: the answer lists what was done for each alert.',
        security: [{ bearer: [] }],
        body: alertmanagerPayloadSchema,
        response: { 200: z.object({ actions: z.array(alertActionSchema) }), ...errorResponses },
      },
    },
    async (request) => ({ actions: await applyAlerts(ctx, request.body, principalOf(request)) }),
  );
};
