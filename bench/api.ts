// API throughput: signed CI webhooks per second through the real HTTP API, from the same process and
// at the same concurrency as the floors they stand beside, interleaved:
// - asynchronous webhooks (Prefer: respond-async) against bare `client.workflow.start` of a release,
//   with no worker running, so only the cost of accepting durably is measured;
// - webhooks answered with the lane's decision against in-process `ReleaseClient.submit`, with a worker.
import { createHmac, randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { startApi } from '../src/api/server';
import { loadConfig } from '../src/config';
import type { DevServer } from '../src/temporal/dev-server';
import { ReleaseClient } from '../src/temporal/releases';
import { fastSpec } from '../test/helpers/specs';
import { sha } from '../test/helpers/temporal';
import { createReleaseWorker } from '../workers/worker';
import { laneWorkflowId, releaseWorkflowId, TASK_QUEUE } from '../workflows/definitions';
import { releaseWorkflow } from '../workflows/release';
import { inPool, percentile, round } from './stats';

export interface ApiThroughput {
  requestsPerRound: number;
  rounds: number;
  concurrency: number;
  bareStartPerSecond: number;
  submitPerSecond: number;
  /** Webhooks answered once the lane has decided (201/202/200). */
  webhookPerSecond: number;
  /** Webhooks with Prefer: respond-async: one signal-with-start, answered 202. */
  asyncWebhookPerSecond: number;
  ratioWebhookToBareStart: number;
  ratioAsyncWebhookToBareStart: number;
  ratioWebhookToSubmit: number;
  webhookLatencyMs: { p50: number; p99: number };
  asyncWebhookLatencyMs: { p50: number; p99: number };
  bareStartLatencyMs: { p50: number; p99: number };
}

/** `count` calls of `work`, `width` at a time: the wall time and each call's own latency. */
async function timed(count: number, width: number, work: () => Promise<number>): Promise<{ ms: number; latencies: number[] }> {
  const t0 = performance.now();
  const latencies = await inPool(Array.from({ length: count }), width, work);
  return { ms: performance.now() - t0, latencies };
}

export async function benchApi(server: Pick<DevServer, 'address'>, options: { requests?: number; rounds?: number; concurrency?: number } = {}): Promise<ApiThroughput> {
  const requests = options.requests ?? 100;
  const rounds = options.rounds ?? 3;
  const concurrency = options.concurrency ?? 10;
  const secret = randomUUID();
  const config = loadConfig({
    TEMPORAL_ADDRESS: server.address,
    RAMPART_API_PORT: '0',
    RAMPART_API_TOKENS: `bench:admin:${randomUUID()}`,
    RAMPART_WEBHOOK_SECRET: secret,
    RAMPART_API_RATE_LIMIT: '0',
    RAMPART_LOG_LEVEL: 'warn',
  });
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const releases = new ReleaseClient(client);
  // Phase one runs with no worker: it measures what the API costs to accept a webhook durably against
  // what a bare start costs, with no background release work on the two shared cores skewing either.
  let worker: Awaited<ReturnType<typeof createReleaseWorker>> | null = null;
  let running: Promise<void> | null = null;
  const api = await startApi({ config, client });
  const lanes: string[] = [];
  const started: string[] = [];
  const run = randomUUID().slice(0, 8);
  // Every release bakes for an hour at its first step: the measurement sees starts, not whole releases.
  const bake = { synthetic: '1h' };
  let n = 0;
  const next = (kind: string) => {
    n += 1;
    return { service: `api-${kind}-${run}-${n}`, version: sha(`${run}-${kind}-${n}`) };
  };
  try {
    const bare = () =>
      timed(requests, concurrency, async () => {
        const { service, version } = next('bare');
        const spec = fastSpec(service, version, { bake });
        const id = releaseWorkflowId(service, spec.environment, version);
        const t0 = performance.now();
        await client.workflow.start(releaseWorkflow, { taskQueue: TASK_QUEUE, workflowId: id, args: [{ releaseId: id, spec }] });
        started.push(id);
        return performance.now() - t0;
      });
    const submit = () =>
      timed(requests, concurrency, async () => {
        const { service, version } = next('submit');
        const t0 = performance.now();
        started.push((await releases.submit(fastSpec(service, version, { bake }))).releaseId);
        return performance.now() - t0;
      });
    const webhook = (respondAsync: boolean) =>
      timed(requests, concurrency, async () => {
        const { service, version } = next(respondAsync ? 'async' : 'hook');
        const { strategy, analysis, target } = fastSpec(service, version, { bake });
        const body = JSON.stringify({ service, version, commit: { sha: version.slice(0, 12), time: new Date().toISOString() }, spec: { strategy, analysis, target } });
        const signature = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
        const t0 = performance.now();
        const response = await fetch(`${api.url}/v1/webhooks/ci`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-hub-signature-256': signature,
            'x-rampart-delivery': randomUUID(),
            ...(respondAsync ? { prefer: 'respond-async' } : {}),
          },
          body,
        });
        const answer = (await response.json()) as { releaseId?: string };
        if (response.status !== (respondAsync ? 202 : 201)) throw new Error(`webhook answered ${response.status}: ${JSON.stringify(answer)}`);
        started.push(answer.releaseId!);
        lanes.push(laneWorkflowId(service, 'production'));
        return performance.now() - t0;
      });

    const terminateAll = () =>
      Promise.all([...started.splice(0), ...lanes.splice(0)].map((id) => client.workflow.getHandle(id).terminate('benchmark phase done').catch(() => undefined)));
    await bare();
    await webhook(true); // warm-up of both paths
    const totals = { bare: 0, submit: 0, webhook: 0, async: 0 };
    const latency = { bare: [] as number[], webhook: [] as number[], async: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      // Interleaved, so a noisy neighbour hurts both paths alike.
      const b = await bare();
      const a = await webhook(true);
      totals.bare += b.ms;
      totals.async += a.ms;
      latency.bare.push(...b.latencies);
      latency.async.push(...a.latencies);
    }
    // Phase two needs a worker: the lane decides while the caller waits. Nothing of phase one may run on.
    await terminateAll();
    worker = await createReleaseWorker({ address: server.address });
    running = worker.run();
    for (let r = 0; r < rounds; r++) {
      const s = await submit();
      const w = await webhook(false);
      totals.submit += s.ms;
      totals.webhook += w.ms;
      latency.webhook.push(...w.latencies);
    }
    const rate = (ms: number) => (requests * rounds * 1_000) / ms;
    return {
      requestsPerRound: requests,
      rounds,
      concurrency,
      bareStartPerSecond: round(rate(totals.bare)),
      submitPerSecond: round(rate(totals.submit)),
      webhookPerSecond: round(rate(totals.webhook)),
      asyncWebhookPerSecond: round(rate(totals.async)),
      ratioWebhookToBareStart: round(rate(totals.webhook) / rate(totals.bare), 3),
      ratioAsyncWebhookToBareStart: round(rate(totals.async) / rate(totals.bare), 3),
      ratioWebhookToSubmit: round(rate(totals.webhook) / rate(totals.submit), 3),
      webhookLatencyMs: { p50: round(percentile(latency.webhook, 50), 1), p99: round(percentile(latency.webhook, 99), 1) },
      asyncWebhookLatencyMs: { p50: round(percentile(latency.async, 50), 1), p99: round(percentile(latency.async, 99), 1) },
      bareStartLatencyMs: { p50: round(percentile(latency.bare, 50), 1), p99: round(percentile(latency.bare, 99), 1) },
    };
  } finally {
    await api.close();
    await Promise.all([...started, ...lanes].map((id) => client.workflow.getHandle(id).terminate('benchmark done').catch(() => undefined)));
    await worker?.shutdown();
    await running?.catch(() => undefined);
    await connection.close();
  }
}
