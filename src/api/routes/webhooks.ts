import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ReleaseSpec } from '../../spec/release-spec';
import type { SubmitResult } from '../../../workflows/definitions';
import { releasePath, type ApiContext } from '../context';
import { problemSchema } from '../problem';
import { errorResponses, submitResultSchema, submitStatus } from '../schemas';
import { ciDeliverySchema, specForCiDelivery } from '../webhooks/ci';
import { DeliveryCache } from '../webhooks/delivery-cache';
import { releasesForGitHubEvent } from '../webhooks/github';

const deliveryIdSchema = z.string().regex(/^[A-Za-z0-9._:-]{1,200}$/, 'a delivery id is 1 to 200 letters, digits, . _ : or -');

const githubReleaseSchema = submitResultSchema.extend({ service: z.string(), environment: z.string() });
const githubAnswerSchema = z.object({
  event: z.string(),
  delivery: z.string().nullable(),
  releases: z.array(githubReleaseSchema).describe('One per registered service the event releases.'),
  ignored: z.string().optional().describe('Why the event releases nothing.'),
  replayed: z.boolean().optional().describe('A redelivery: the answer of the first delivery.'),
});

interface WebhookAnswer<T> {
  statusCode: 200 | 201 | 202;
  body: T;
}

/**
 * CI and GitHub webhooks. Idempotent twice over: a delivery id seen by this process gets the first
 * answer again (an in-memory LRU, per process), and a version the service's lane has seen is
 * answered with the existing release (durable, in Temporal, across processes and restarts).
 */
export const webhookRoutes: FastifyPluginAsyncZod<{ ctx: ApiContext }> = async (app, { ctx }) => {
  const signed = { access: { kind: 'signature' as const } };
  const ciDeliveries = new DeliveryCache<WebhookAnswer<SubmitResult>>(ctx.settings.deliveryCacheSize);
  const githubDeliveries = new DeliveryCache<WebhookAnswer<z.infer<typeof githubAnswerSchema>>>(ctx.settings.deliveryCacheSize);

  /**
   * With `Prefer: respond-async` (RFC 7240) the release is handed to its lane with one signal-with-start
   * and answered 202 at once; without it, the lane's decision is waited for and answered precisely.
   */
  async function submit(spec: ReleaseSpec, source: string, respondAsync: boolean): Promise<SubmitResult> {
    const result = respondAsync ? await ctx.releases.enqueue(spec) : await ctx.releases.submit(spec);
    ctx.metrics.webhooks.inc({ source, outcome: result.disposition });
    return result;
  }

  app.post(
    '/v1/webhooks/ci',
    {
      config: signed,
      schema: {
        tags: ['webhooks'],
        summary: 'A CI pipeline built an immutable version: release it.',
        description:
          'Signed: X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with RAMPART_WEBHOOK_SECRET>. ' +
          'Idempotent: the same X-Rampart-Delivery, or the same service and version, returns the existing release. ' +
          '201 started, 202 queued behind the release it supersedes, 200 duplicate. With Prefer: respond-async, 202 accepted at once: ' +
          'the lane decides as above without being waited for (one signal-with-start; the fastest way in).',
        security: [{ signature: [] }],
        headers: z.looseObject({ 'x-rampart-delivery': deliveryIdSchema.optional().describe('Delivery id; a redelivery carries the same one.') }),
        body: ciDeliverySchema,
        response: { 200: submitResultSchema, 201: submitResultSchema, 202: submitResultSchema, 409: problemSchema, 422: problemSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const delivery = request.headers['x-rampart-delivery'];
      const { value, replayed } = await ciDeliveries.run(delivery, async () => {
        const result = await submit(specForCiDelivery(request.body, ctx.specs), 'ci', prefersAsync(request.headers.prefer as string | string[] | undefined));
        return { statusCode: submitStatus(result), body: result };
      });
      if (replayed) ctx.metrics.webhooks.inc({ source: 'ci', outcome: 'replayed' });
      void reply.header('location', releasePath(value.body.releaseId));
      return replayed ? reply.status(200).send({ ...value.body, replayed: true }) : reply.status(value.statusCode).send(value.body);
    },
  );

  app.post(
    '/v1/webhooks/github',
    {
      config: signed,
      schema: {
        tags: ['webhooks'],
        summary: 'GitHub webhook: a successful workflow_run, or a deployment, releases the services bound to the repository.',
        description:
          'Configure the webhook with content type application/json (form encoding works too) and the secret RAMPART_WEBHOOK_SECRET; ' +
          'send workflow runs and deployments. The version is the commit SHA; the spec is the registered one whose ' +
          'github.repository (and workflows, branches or environment) match. Redeliveries (same X-GitHub-Delivery) and ' +
          'repeated versions never start a second release. Events that release nothing answer 200 with the reason.',
        security: [{ signature: [] }],
        headers: z.looseObject({
          'x-github-event': z.string().regex(/^[a-z_]{1,64}$/, 'a GitHub event name such as workflow_run'),
          'x-github-delivery': deliveryIdSchema.optional(),
        }),
        body: z.looseObject({}).describe('The payload of the event named by X-GitHub-Event.'),
        response: { 200: githubAnswerSchema, 201: githubAnswerSchema, 202: githubAnswerSchema, 422: problemSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const event = request.headers['x-github-event'];
      const delivery = request.headers['x-github-delivery'] ?? null;
      const { value, replayed } = await githubDeliveries.run(delivery ?? undefined, async () => {
        const outcome = releasesForGitHubEvent(event, request.body, ctx.specs);
        if (outcome.kind === 'ignored') {
          ctx.metrics.webhooks.inc({ source: 'github', outcome: 'ignored' });
          return { statusCode: 200, body: { event, delivery, releases: [], ignored: outcome.reason } };
        }
        const releases = [];
        for (const spec of outcome.specs) {
          releases.push({ service: spec.service, environment: spec.environment, ...(await submit(spec, 'github', prefersAsync(request.headers.prefer as string | string[] | undefined))) });
        }
        const statusCode: 200 | 201 | 202 = releases.some((r) => r.disposition === 'started')
          ? 201
          : releases.some((r) => r.disposition === 'queued' || r.disposition === 'accepted')
            ? 202
            : 200;
        return { statusCode, body: { event, delivery, releases } };
      });
      if (replayed) ctx.metrics.webhooks.inc({ source: 'github', outcome: 'replayed' });
      return replayed ? reply.status(200).send({ ...value.body, replayed: true }) : reply.status(value.statusCode).send(value.body);
    },
  );
};

function prefersAsync(prefer: string | string[] | undefined): boolean {
  const values = Array.isArray(prefer) ? prefer : prefer ? [prefer] : [];
  return values.some((value) => value.split(',').some((token) => token.trim().toLowerCase() === 'respond-async'));
}
