// An abort during the synthetic load test stops the load within seconds: the activity observes its
// cancellation (Temporal delivers it with the next heartbeat) and autocannon stops at once. Real
// HTTP servers count what reaches them.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities, type ReleaseRef } from '../../activities';
import { ProviderRegistry } from '../../src/providers';
import { SimulatedFleet } from '../../src/providers/simulated/fleet';
import { loadTestSchema, targetSchema } from '../../src/spec/release-spec';
import { waitFor } from '../helpers/temporal';

const counts = { canary: 0, stable: 0 };
const servers: http.Server[] = [];

async function listen(track: 'canary' | 'stable'): Promise<number> {
  const server = http.createServer((_req, res) => {
    counts[track] += 1;
    res.end('ok');
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

let ref: ReleaseRef;
before(async () => {
  const [canaryPort, stablePort] = [await listen('canary'), await listen('stable')];
  const target = targetSchema.parse({
    type: 'local',
    command: ['true'],
    stablePort,
    canaryPort,
    haproxySocket: '127.0.0.1:1',
    prometheusUrl: 'http://127.0.0.1:1',
  });
  ref = { service: 'loadcancel', environment: 'production', version: 'abcdef1', target };
});

after(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('cancelling a 60 s load test stops the load on both versions within seconds', async () => {
  const activities = createActivities({ providers: new ProviderRegistry({ fleet: new SimulatedFleet() }) });
  const env = new MockActivityEnvironment();
  const load = loadTestSchema.parse({ rate: 200, duration: '60s', connections: 4 });
  const running = env.run(activities.runLoadTest, ref, load, 'fedcba9');
  await waitFor('load reaching both versions', async () => counts.canary > 50 && counts.stable > 50, 20_000, 50);

  const cancelledAt = Date.now();
  env.cancel();
  await assert.rejects(running, (error: unknown) => error instanceof CancelledFailure || /abort|cancel/i.test(String(error)));
  const stoppedWithinMs = Date.now() - cancelledAt;
  assert.ok(stoppedWithinMs < 5_000, `the activity ended ${stoppedWithinMs} ms after its cancellation`);

  // No more requests arrive: the count settles (in-flight answers drain) and stays far below 60 s of load.
  const settled = { canary: counts.canary, stable: counts.stable };
  await waitFor('the load settled', async () => {
    const same = counts.canary === settled.canary && counts.stable === settled.stable;
    settled.canary = counts.canary;
    settled.stable = counts.stable;
    return same;
  }, 10_000, 500);
  assert.ok(counts.canary < 200 * 10, `canary received ${counts.canary} requests, not a minute's worth`);
  assert.ok(counts.stable < 200 * 10, `stable received ${counts.stable} requests`);
});
