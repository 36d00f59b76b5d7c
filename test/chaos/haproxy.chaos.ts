import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants, openSync } from 'node:fs';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isTerminal, type ReleaseStatus } from '../../src/engine/release-state';
import { HaproxyRouter } from '../../src/providers/traffic/haproxy';
import { sameRoutes, STABLE_ONLY, type Routes } from '../../src/providers/traffic/router';
import type { LocalStack, StackService } from '../../src/stack/local-stack';
import {
  allocateService,
  Cleanups,
  demoDeployer,
  HEALTHY,
  movedWeights,
  observeRoutes,
  removeService,
  runtimeCommand,
  serverCounters,
  startRigAndStack,
  TrafficLoop,
  localSpec,
} from '../e2e/helpers';
import { sha, waitFor, type TestRig } from '../helpers/temporal';

/**
 * Chaos: HAProxy's runtime API gone for 30 s while a release bakes. The release must wait and retry, never report
 * (let alone promote on) a weight HAProxy did not confirm, and go on by itself when the socket is back. Two ways
 * to lose it: the socket unreachable while HAProxy keeps serving, and HAProxy stopped and restarted, which brings
 * it back with its configured routes (stable only), not the release's.
 */

const OUTAGE_MS = 30_000;
const cleanups = new Cleanups();
let rig: TestRig;
let stack: LocalStack;
const services: { unreachable?: Required<StackService>; restarted?: Required<StackService> } = {};

before(async () => {
  const workDir = await mkdtemp(path.join(tmpdir(), 'rampart-haproxy-chaos-'));
  cleanups.add('work dir', () => rm(workDir, { recursive: true, force: true }));
  services.unreachable = await allocateService('chaos-socket');
  services.restarted = await allocateService('chaos-restart');
  for (const service of [services.unreachable, services.restarted]) cleanups.add(`instances of ${service.name}`, () => removeService(service));
  ({ rig, stack } = await startRigAndStack(cleanups, {
    dir: path.join(workDir, 'stack'),
    services: [services.unreachable, services.restarted],
    components: ['haproxy', 'prometheus'],
  }));
});

after(() => cleanups.run());

function haproxyBinary(): string {
  if (process.env.HAPROXY_BIN) return process.env.HAPROXY_BIN;
  for (const dir of [...(process.env.PATH ?? '').split(path.delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin']) {
    try {
      accessSync(path.join(dir, 'haproxy'), constants.X_OK);
      return path.join(dir, 'haproxy');
    } catch {
      // not here
    }
  }
  throw new Error('haproxy not found');
}

/**
 * Starts HAProxy again on the config the stack wrote, recording its pid where the stack's stop() looks, and waits
 * for its runtime API. It comes back as that config says: every canary at weight 0, no internal audience.
 */
async function restartHaproxy(): Promise<void> {
  await rm(stack.haproxySocket, { force: true });
  const log = openSync(path.join(stack.dir, 'haproxy.log'), 'a');
  const child = spawn(haproxyBinary(), ['-f', path.join(stack.dir, 'haproxy', 'haproxy.cfg')], { cwd: stack.dir, detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  child.unref();
  await writeFile(path.join(stack.dir, 'haproxy.pid'), `${child.pid}\n`);
  await waitFor('HAProxy to answer on its runtime API again', () => runtimeCommand(stack.haproxySocket, 'show info').then((info) => info.includes('Pid:')), 10_000, 50);
}

async function releaseWithTraffic(service: Required<StackService>, bake: Record<string, string>, analysis: Record<string, unknown> = {}) {
  const stable = sha(`${service.name}-stable`);
  const next = sha(`${service.name}-next`);
  const behaviour = { [stable]: HEALTHY, [next]: HEALTHY };
  await demoDeployer(service, behaviour).deploy(service.name, 'stable', stable);
  await new HaproxyRouter({ socket: stack.haproxySocket }).waitUntilUp(service.name, ['stable']);
  const traffic = new TrafficLoop(stack.frontendUrl, service.name, { rate: 100, concurrency: 8, maxMs: 180_000 }).start();
  // Enough synthetic load, and at 10% enough user traffic within a few seconds, for the judge to pass a healthy version.
  const spec = localSpec(stack, service, next, { behaviour, steps: ['synthetic', 'ramp-10', 'ramp-50', 'full'], bake, analysis, load: { rate: 100, duration: '2s' } });
  const { releaseId } = await rig.releases.submit(spec);
  return { stable, next, traffic, releaseId };
}

async function pendingActivities(releaseId: string): Promise<string[]> {
  const described = await rig.client.workflow.getHandle(releaseId).describe();
  return (described.raw.pendingActivities ?? []).map((a) => `${a.activityType?.name} (attempt ${a.attempt}${a.lastFailure?.message ? `: ${a.lastFailure.message.slice(0, 120)}` : ''})`);
}

async function waitForStep(releaseId: string, step: string, weight: number): Promise<ReleaseStatus> {
  return waitFor(`the release baking at ${step}`, async () => {
    const status = await rig.releases.status(releaseId);
    return status.step?.name === step && status.routes.canaryWeight === weight && status.state === 'running' && status;
  }, 60_000, 100);
}

async function finish(releaseId: string): Promise<ReleaseStatus> {
  return waitFor('the release to finish', async () => {
    const status = await rig.releases.status(releaseId);
    return isTerminal(status.state) && status;
  }, 90_000, 250);
}

/** During the outage the release may wait anywhere, but never roll back, finish, or claim routes it could not verify. */
function assertWaiting(status: ReleaseStatus, routesBefore: Routes, movedBefore: number[]): void {
  assert.ok(status.state === 'running' || status.state === 'paused', `the release waits (it is ${status.state}: ${status.outcome?.reason ?? ''})`);
  assert.ok(sameRoutes(status.routes, routesBefore), `no unverified routes reported: ${JSON.stringify(status.routes)}`);
  assert.deepEqual(movedWeights(status), movedBefore, 'no traffic moved while HAProxy could not confirm it');
}

describe('chaos: HAProxy runtime API', () => {
  test('the runtime socket unreachable for 30 s during a bake: the release waits and retries, never reports an unverified weight, and goes on', { timeout: 180_000 }, async (t) => {
    const service = services.unreachable!;
    // The step at 10% gathers its evidence from Prometheus, which scrapes HAProxy's exporter, not the socket: it passes
    // during the outage, and the move to 50% has to wait for the socket.
    const { next, traffic, releaseId } = await releaseWithTraffic(service, { 'ramp-10': '3s', 'ramp-50': '2s', full: '1s' }, { maxBakeFactor: 30 });
    const away = `${stack.haproxySocket}.away`;
    let restored = false;
    const restore = async () => {
      if (!restored) await rename(away, stack.haproxySocket);
      restored = true;
    };
    try {
      const baking = await waitForStep(releaseId, 'ramp-10', 10);
      await rename(stack.haproxySocket, away);
      // The truth, read through the renamed socket while the release cannot reach it.
      const truth = new HaproxyRouter({ socket: away });
      const movedBefore = movedWeights(baking);
      const waitingOn = new Set<string>();
      const until = Date.now() + OUTAGE_MS;
      while (Date.now() < until) {
        const status = await rig.releases.status(releaseId);
        assertWaiting(status, baking.routes, movedBefore);
        assert.ok(sameRoutes(await truth.getRoutes(service.name), status.routes), 'HAProxy still holds what the release reports');
        for (const activity of await pendingActivities(releaseId)) waitingOn.add(activity.replace(/ \(attempt \d+/, ' (attempt n'));
        await sleep(250);
      }
      t.diagnostic(`waiting on: ${[...waitingOn].join('; ') || 'nothing'}`);
      await restore();

      const result = await finish(releaseId);
      assert.equal(result.outcome?.result, 'promoted', result.outcome?.reason);
      assert.deepEqual(movedWeights(result), [0, 10, 50, 100]);
      assert.deepEqual(await new HaproxyRouter({ socket: stack.haproxySocket }).getRoutes(service.name), STABLE_ONLY);
      assert.deepEqual(await demoDeployer(service, {}).slots(service.name), { stable: next, canary: null });
    } finally {
      await restore().catch(() => undefined);
      await traffic.stop();
      await rig.releases.command(releaseId, 'abort', { actor: 'chaos', reason: 'cleanup' }).catch(() => undefined);
    }
  });

  test('HAProxy stopped for 30 s mid-bake and restarted stable-only: the release re-applies its routes and goes on', { timeout: 180_000 }, async (t) => {
    const service = services.restarted!;
    // HAProxy stops 1 s into a 12 s bake at 10%. While it (its exporter too) is away no new evidence arrives, so the
    // bake cannot end; it may extend well past the outage, so the release waits rather than pausing for a person.
    // When HAProxy is back, the release still bakes at 10% (or moves on), which HAProxy no longer applies.
    const { next, traffic, releaseId } = await releaseWithTraffic(service, { 'ramp-10': '12s', 'ramp-50': '2s', full: '1s' }, { maxBakeFactor: 20 });
    const router = new HaproxyRouter({ socket: stack.haproxySocket });
    let running = true;
    try {
      const baking = await waitForStep(releaseId, 'ramp-10', 10);
      await stack.stop('haproxy');
      running = false;
      const movedBefore = movedWeights(baking);
      const until = Date.now() + OUTAGE_MS;
      while (Date.now() < until) {
        assertWaiting(await rig.releases.status(releaseId), baking.routes, movedBefore);
        await sleep(250);
      }
      await restartHaproxy();
      running = true;
      const back = Date.now();
      assert.deepEqual(await router.getRoutes(service.name), STABLE_ONLY, 'a restarted HAProxy comes back stable-only');

      // Within a few analysis intervals the release has put its routes back (or moved on, verified).
      const agreed = await waitFor(
        'HAProxy and the release to agree again',
        async () => {
          const seen = await observeRoutes(rig.releases, rig.client, releaseId, () => router.getRoutes(service.name));
          return seen && sameRoutes(seen.status.routes, seen.haproxy) && seen;
        },
        10_000,
        200,
      ).catch((error: Error) => {
        throw new Error(`${error.message}; the release reports ${JSON.stringify(baking.routes)} while HAProxy has canary 0`);
      });
      t.diagnostic(`routes agreed ${Date.now() - back} ms after HAProxy came back, at canary ${agreed.haproxy.canaryWeight}%`);
      assert.ok(agreed.haproxy.canaryWeight >= 10);
      await sleep(3_000);
      assert.ok((await serverCounters(stack.haproxySocket, service.name)).canary.sessions > 0, 'the canary takes users again');

      const result = await finish(releaseId);
      assert.equal(result.outcome?.result, 'promoted', result.outcome?.reason);
      assert.deepEqual(movedWeights(result).filter((w, i, all) => all.indexOf(w) === i), [0, 10, 50, 100]);
      assert.deepEqual(await router.getRoutes(service.name), STABLE_ONLY);
      assert.deepEqual(await demoDeployer(service, {}).slots(service.name), { stable: next, canary: null });
    } finally {
      if (!running) await restartHaproxy().catch(() => undefined);
      await traffic.stop();
      await rig.releases.command(releaseId, 'abort', { actor: 'chaos', reason: 'cleanup' }).catch(() => undefined);
    }
  });
});
