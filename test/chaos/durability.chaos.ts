import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { PROJECT_ROOT } from '../../src/paths';
import { SimulatedFleet } from '../../src/providers/simulated/fleet';
import type { DevServer } from '../../src/temporal/dev-server';
import { freePort } from '../../src/net';
import { ReleaseClient } from '../../src/temporal/releases';
import { fastSpec, STABLE } from '../helpers/specs';
import { sha, startTestServer, uniqueService, waitFor, workerProcessEnv } from '../helpers/temporal';

/**
 * Chaos: workers killed with SIGKILL at random moments and the Temporal dev server killed and
 * restarted on its SQLite file, in the middle of releases. Every release must end where its workflow
 * says, with the fleet matching and no visible side effect repeated.
 */

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function workerProcess(address: string, dataDir: string): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
    cwd: PROJECT_ROOT,
    env: workerProcessEnv(address, dataDir),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.resume();
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** mulberry32: a tiny seeded generator, so a failing chaos run can be replayed with the same kill times. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Activities running right now (started, not finished) across the releases: where a kill lands. */
async function activitiesInFlight(client: Client, releaseIds: string[]): Promise<string[]> {
  const running: string[] = [];
  await Promise.all(
    releaseIds.map(async (id) => {
      const description = await client.workflow.getHandle(id).describe().catch(() => null);
      for (const activity of description?.raw.pendingActivities ?? []) {
        if (activity.lastStartedTime && String(activity.state) !== '1') running.push(activity.activityType?.name ?? '?');
      }
    }),
  );
  return running;
}

/** The end state a promoted release must leave, read from the fleet's files as the workers left them. */
function assertPromotedFleet(dataDir: string, service: string, version: string): void {
  const fleet = new SimulatedFleet({ stateDir: join(dataDir, 'simulated') }).reload(service);
  assert.ok(fleet, `fleet of ${service}`);
  assert.deepEqual(fleet.slots, { stable: version, canary: null }, `${service} slots`);
  assert.deepEqual(fleet.routes, { canaryWeight: 0, internalAudience: null }, `${service} routes`);
  const canaryStarts = fleet.events.filter((e) => e.action === 'deploy' && e.slot === 'canary');
  assert.equal(canaryStarts.length, 1, `${service}: one canary start, not ${canaryStarts.length}`);
  const weights = fleet.events.filter((e) => e.action === 'set-routes').map((e) => e.routes!.canaryWeight);
  const forward = weights.slice(0, -1);
  assert.deepEqual(forward, [...forward].sort((a, b) => a - b), `${service}: weights out of order: ${weights.join(',')}`);
}

describe('chaos', () => {
  test('workers killed with SIGKILL at seeded random moments during 24 releases, inside activities: every release ends promoted, once', async () => {
    const seed = Number(process.env.CHAOS_SEED ?? 20261201);
    const random = seeded(seed);
    const dataDir = mkdtempSync(join(tmpdir(), 'rampart-chaos-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const server = await startTestServer();
    cleanups.push(() => server.stop());
    const connection = await Connection.connect({ address: server.address });
    cleanups.push(() => connection.close());
    const client = new Client({ connection });
    const releases = new ReleaseClient(client);

    let worker = workerProcess(server.address, dataDir);
    const bake = { 'canary-internal': '1s', 'canary-5': '1s', 'ramp-10': '1s', 'ramp-50': '1s', full: '1s' };
    const started = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const service = uniqueService('chaos');
        const version = sha(`chaos-${i}-${Date.now()}`);
        // Every fleet call takes 200 ms, so at any moment some activity is mid-flight for a kill to land in.
        const { releaseId } = await releases.submit(fastSpec(service, version, { bake, providerLatencyMs: 200, analysis: { interval: '300ms' } }));
        return { service, version, releaseId };
      }),
    );

    // Kill and replace the worker at seeded random moments until every release has finished.
    const landed: string[][] = [];
    let finished = false;
    const results = Promise.all(started.map((r) => releases.result(r.releaseId))).finally(() => (finished = true));
    while (!finished && landed.length < 8) {
      await sleep(2_000 + Math.floor(random() * 3_000));
      if (finished) break;
      const inFlight = await activitiesInFlight(client, started.map((r) => r.releaseId));
      await killHard(worker);
      landed.push(inFlight);
      worker = workerProcess(server.address, dataDir);
    }
    const outcomes = await results;
    const inside = landed.filter((activities) => activities.length > 0);
    assert.ok(landed.length >= 3, `seed ${seed}: the worker was killed ${landed.length} times`);
    assert.ok(inside.length >= Math.ceil(landed.length / 2), `seed ${seed}: kills inside activities: ${landed.map((a) => `[${a.join(',')}]`).join(' ')}`);
    for (const [i, outcome] of outcomes.entries()) {
      assert.equal(outcome.outcome?.result, 'promoted', `${started[i]!.releaseId}: ${outcome.outcome?.reason}`);
      assertPromotedFleet(dataDir, started[i]!.service, started[i]!.version);
    }
    await killHard(worker);
  });

  test('the Temporal dev server killed and restarted on its SQLite file mid-release: releases finish', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'rampart-chaos-db-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const dbFile = join(dataDir, 'temporal.sqlite');
    const port = await freePort();
    let server: DevServer = await startTestServer({ dbFile, port });
    cleanups.push(() => server.stop());
    const worker = workerProcess(server.address, dataDir);

    const connection = await Connection.connect({ address: server.address });
    const releases = new ReleaseClient(new Client({ connection }));
    const bake = { 'canary-5': '2s', 'ramp-10': '2s', 'ramp-50': '1s' };
    const started = await Promise.all(
      Array.from({ length: 5 }, async (_, i) => {
        const service = uniqueService('dbkill');
        const version = sha(`db-${i}-${Date.now()}`);
        const { releaseId } = await releases.submit(fastSpec(service, version, { bake, analysis: { interval: '200ms' } }));
        return { service, version, releaseId };
      }),
    );
    await waitFor('releases baking', async () => (await releases.status(started[0]!.releaseId)).step?.name === 'canary-5', 60_000);
    await connection.close();

    await server.stop('SIGKILL');
    await sleep(2_000);
    server = await startTestServer({ dbFile, port });

    const again = await Connection.connect({ address: server.address });
    cleanups.push(() => again.close());
    const after = new ReleaseClient(new Client({ connection: again }));
    for (const r of started) {
      const result = await waitFor(`${r.releaseId} to finish`, async () => after.result(r.releaseId), 120_000, 500);
      assert.equal(result.outcome?.result, 'promoted', `${r.releaseId}: ${result.outcome?.reason}`);
      assert.equal(result.stableVersion, STABLE);
      assertPromotedFleet(dataDir, r.service, r.version);
    }
    await killHard(worker);
  });
});
