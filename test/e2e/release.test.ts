import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildApp } from '../../src/api/app';
import { listen } from '../../src/api/server';
import { isTerminal, type ReleaseStatus } from '../../src/engine/release-state';
import { HaproxyRouter } from '../../src/providers/traffic/haproxy';
import { sameRoutes, STABLE_ONLY } from '../../src/providers/traffic/router';
import { freePort } from '../../src/net';
import type { LocalStack, StackService } from '../../src/stack/local-stack';
import { sha, waitFor, type TestRig } from '../helpers/temporal';
import {
  allocateService,
  Cleanups,
  demoDeployer,
  HEALTHY,
  INTERNAL,
  localSpec,
  movedWeights,
  observeRoutes,
  portOpen,
  probe,
  removeService,
  serverCounters,
  SLOW,
  startRigAndStack,
  SYNTHETIC_P99_LIMIT_MS,
  TrafficLoop,
  type Behaviour,
  type LocalSpecOptions,
  type TrafficTally,
} from './helpers';

// The issue-4 scenarios end to end: a Temporal dev server and an in-process worker release the demo service
// through the local target, on the real stack (HAProxy, Prometheus scraping every second, Alertmanager posting to
// the API), while the test drives user traffic through HAProxy's frontend and reads HAProxy's runtime API itself.
// Each scenario has its own service (HAProxy backend, ports, series), so none sees another's traffic.

/** How far the canary's share of real requests may stray from its weight, in percentage points. */
const SHARE_TOLERANCE = 5;
/** Requests per proportion probe; the probe runs in well under a step's bake. */
const PROBE_REQUESTS = 200;
/** Background user traffic, so the analysis has data: 100 requests per second, a 5% canary sees five. */
const TRAFFIC_RATE = 100;

const cleanups = new Cleanups();
let rig: TestRig;
let stack: LocalStack;
let router: HaproxyRouter;
let apiPort: number;
const services = {} as Record<'healthy' | 'faulty' | 'slow' | 'alert' | 'fullBake' | 'metricsDown', Required<StackService>>;

before(async () => {
  const workDir = await mkdtemp(path.join(tmpdir(), 'rampart-release-e2e-'));
  cleanups.add('work dir', () => rm(workDir, { recursive: true, force: true }));
  for (const key of ['healthy', 'faulty', 'slow', 'alert', 'fullBake', 'metricsDown'] as const) services[key] = await allocateService(`e2e-${key.toLowerCase()}`);
  for (const service of Object.values(services)) cleanups.add(`instances of ${service.name}`, () => removeService(service));
  apiPort = await freePort();

  // Cleanups run newest first: the worker stops before the stack, and the instances after both.
  ({ rig, stack } = await startRigAndStack(cleanups, {
    dir: path.join(workDir, 'stack'),
    services: Object.values(services),
    alertWebhookUrl: `http://127.0.0.1:${apiPort}/v1/alerts/alertmanager`,
  }));
  router = new HaproxyRouter({ socket: stack.haproxySocket });
});

after(() => cleanups.run());

interface Scenario {
  service: Required<StackService>;
  stable: string;
  traffic: TrafficLoop;
  spec(version: string, options?: Omit<LocalSpecOptions, 'behaviour'>): ReturnType<typeof localSpec>;
  /** Stops the user traffic once, whoever asks first (the test or its finally block); the tally of it all. */
  end(): Promise<TrafficTally>;
}

/** A service with its stable version deployed, HAProxy sending it everything, and user traffic flowing. */
async function scenario(key: keyof typeof services, behaviour: (stable: string) => Record<string, Behaviour>): Promise<Scenario> {
  const service = services[key];
  const stable = sha(`${service.name}-stable`);
  const behaviours = behaviour(stable);
  await demoDeployer(service, behaviours).deploy(service.name, 'stable', stable);
  await router.waitUntilUp(service.name, ['stable']);
  const traffic = new TrafficLoop(stack.frontendUrl, service.name, { rate: TRAFFIC_RATE, concurrency: 8, maxMs: 150_000 }).start();
  let ended: Promise<TrafficTally> | undefined;
  return {
    service,
    stable,
    traffic,
    spec: (version, options = {}) => localSpec(stack, service, version, { behaviour: behaviours, ...options }),
    end: () => (ended ??= traffic.stop()),
  };
}

async function abortIfRunning(releaseId: string): Promise<void> {
  const status = await rig.releases.status(releaseId).catch(() => null);
  if (status && !isTerminal(status.state)) await rig.releases.command(releaseId, 'abort', { actor: 'e2e', reason: 'test cleanup' }).catch(() => undefined);
}

function lastTransition(status: ReleaseStatus, event: string) {
  return [...status.history].reverse().find((t) => t.event === event);
}

test(
  'a healthy version walks synthetic, 5%, 10%, 50% and 100%: HAProxy holds the weights the workflow reports, and requests split in proportion',
  { timeout: 120_000 },
  async (t) => {
    const next = sha(`${services.healthy.name}-next`);
    const s = await scenario('healthy', (stable) => ({ [stable]: HEALTHY, [next]: HEALTHY }));
    const { releaseId } = await rig.releases.submit(s.spec(next));
    try {
      const compared: Record<string, { agreed: number; disagreed: string[] }> = {};
      const shares: Record<string, { weight: number; canaryShare: number; tally: TrafficTally; internal?: TrafficTally }> = {};
      let final: ReleaseStatus | undefined;
      const deadline = Date.now() + 90_000;
      while (!final && Date.now() < deadline) {
        const seen = await observeRoutes(rig.releases, rig.client, releaseId, () => router.getRoutes(s.service.name));
        if (seen?.status.step) {
          const step = seen.status.step.name;
          const entry = (compared[step] ??= { agreed: 0, disagreed: [] });
          if (sameRoutes(seen.status.routes, seen.haproxy)) entry.agreed++;
          else entry.disagreed.push(`workflow ${JSON.stringify(seen.status.routes)}, HAProxy ${JSON.stringify(seen.haproxy)}`);

          // Once per step, while its routes hold: real requests through the frontend, counted by who answered.
          if (!shares[step] && !isTerminal(seen.status.state) && sameRoutes(seen.status.routes, seen.haproxy)) {
            const tally = await probe(stack.frontendUrl, s.service.name, PROBE_REQUESTS, {}, 16);
            const internal = seen.status.routes.internalAudience ? await probe(stack.frontendUrl, s.service.name, 40, { [INTERNAL.header]: INTERNAL.value }, 8) : undefined;
            const still = await observeRoutes(rig.releases, rig.client, releaseId, () => router.getRoutes(s.service.name));
            if (still && still.status.step?.name === step && still.status.history.length === seen.status.history.length) {
              shares[step] = { weight: seen.status.routes.canaryWeight, canaryShare: (100 * (tally.byVersion[next] ?? 0)) / tally.total, tally, ...(internal ? { internal } : {}) };
            }
          }
          if (isTerminal(seen.status.state)) final = seen.status;
        }
        await sleep(100);
      }
      assert.ok(final, 'the release finished within 90 s');
      assert.equal(final.outcome?.result, 'promoted', final.outcome?.reason);
      assert.deepEqual(movedWeights(final), [0, 5, 10, 50, 100], 'traffic moved once per step, in order');

      for (const step of ['synthetic', 'canary-5', 'ramp-10', 'ramp-50', 'full']) {
        const entry = compared[step];
        assert.ok(entry && entry.agreed > 0, `${step}: the weights were compared at least once (${JSON.stringify(compared)})`);
        assert.deepEqual(entry.disagreed, [], `${step}: HAProxy's routes are the workflow's`);
        const share = shares[step];
        assert.ok(share, `${step}: requests were sent through HAProxy while its routes held (${Object.keys(shares).join(', ')})`);
        assert.equal(share.tally.failures, 0, `${step}: every probe request answered (${JSON.stringify(share.tally)})`);
        assert.ok(
          Math.abs(share.canaryShare - share.weight) <= SHARE_TOLERANCE,
          `${step}: the canary answered ${share.canaryShare.toFixed(1)}% of ${share.tally.total} requests at weight ${share.weight}% (± ${SHARE_TOLERANCE} points)`,
        );
      }
      assert.deepEqual(shares['canary-5']!.internal?.byVersion, { [next]: 40 }, 'internal users reach the canary first');
      t.diagnostic(`canary share of ${PROBE_REQUESTS} requests per step: ${Object.entries(shares).map(([step, v]) => `${step} ${v.canaryShare.toFixed(1)}% at ${v.weight}%`).join(', ')}`);

      // Done: the new version is the stable one, everything goes to the stable slot, the canary slot is empty.
      assert.deepEqual(final.routes, STABLE_ONLY);
      assert.deepEqual(await router.getRoutes(s.service.name), STABLE_ONLY);
      assert.deepEqual(await demoDeployer(s.service, {}).slots(s.service.name), { stable: next, canary: null });
      assert.equal(await portOpen(s.service.canaryPort), false, 'the canary slot is empty');
      const before = await serverCounters(stack.haproxySocket, s.service.name);
      const after = await probe(stack.frontendUrl, s.service.name, 50);
      assert.deepEqual(after.byVersion, { [next]: 50 });
      assert.equal((await serverCounters(stack.haproxySocket, s.service.name)).canary.sessions, before.canary.sessions, 'nothing reaches the canary server');

      const traffic = await s.end();
      assert.ok(traffic.total > 500, `background traffic flowed (${traffic.total} requests)`);
      assert.equal(traffic.failures, 0, `no user request failed during the whole release: ${JSON.stringify(traffic)}`);
    } finally {
      await s.end();
      await abortIfRunning(releaseId);
    }
  },
);

test(
  'a version failing 10% of requests is rolled back in the canary: HAProxy sends everything to stable, the canary is stopped, the status says why',
  { timeout: 90_000 },
  async (t) => {
    const faulty = sha(`${services.faulty.name}-faulty`);
    const s = await scenario('faulty', (stable) => ({ [stable]: HEALTHY, [faulty]: { errorRate: 0.1, latencyMs: HEALTHY.latencyMs } }));
    // The synthetic gate here checks latency only, so the fault meets users and the canary analysis must catch it.
    const { releaseId } = await rig.releases.submit(s.spec(faulty, { load: { maxErrorRate: 0.5 }, bake: { 'canary-5': '20s' } }));
    try {
      const result = await waitFor('the release to finish', async () => {
        const status = await rig.releases.status(releaseId);
        return isTerminal(status.state) && status;
      }, 60_000, 200);

      assert.equal(result.outcome?.result, 'rolled-back');
      assert.match(result.outcome!.reason, /analysis failed .*error-rate: canary [\d.]+ (is above the maximum 0\.05|exceeds stable)/);
      assert.equal(result.step?.name, 'canary-5', 'caught during the canary');
      assert.equal(result.phase, 'canary');
      const failed = result.analysis.filter((run) => run.phase === 'Failed');
      assert.equal(failed.length, 1, 'the first failed analysis rolled it back');
      assert.equal(failed[0]!.step, 'canary-5');
      assert.ok(failed[0]!.measurements[0]!.canary! > 0.02, `canary error rate ${failed[0]!.measurements[0]!.canary}`);
      assert.deepEqual(
        result.history.filter((t) => t.event === 'undo').map((t) => t.reason),
        ['reset-routes', 'stop-canary'],
        'traffic back on stable first, then the canary stopped',
      );

      assert.deepEqual(result.routes, STABLE_ONLY);
      assert.deepEqual(await router.getRoutes(s.service.name), STABLE_ONLY, 'HAProxy sends everything to stable, internal users too');
      assert.deepEqual(await demoDeployer(s.service, {}).slots(s.service.name), { stable: s.stable, canary: null });
      assert.equal(await portOpen(s.service.canaryPort), false, 'the faulty instance is stopped');
      assert.deepEqual((await probe(stack.frontendUrl, s.service.name, 50, { [INTERNAL.header]: INTERNAL.value })).byVersion, { [s.stable]: 50 });
      const traffic = await s.end();
      assert.ok((traffic.byVersion[faulty] ?? 0) > 0, 'the faulty version did take user traffic before it was caught');
      const exposed = Date.parse(result.history.find((e) => e.event === 'undo' && e.reason === 'reset-routes')!.at) - Date.parse(lastTransition(result, 'traffic-moved')!.at);
      t.diagnostic(`canary at 5% to traffic back on stable: ${exposed} ms; ${traffic.byVersion[faulty]} user requests reached the faulty version`);
    } finally {
      await s.end();
      await abortIfRunning(releaseId);
    }
  },
);

test('a version 5x slower fails its synthetic load test and is stopped before any user request reaches it', { timeout: 90_000 }, async () => {
  const slow = sha(`${services.slow.name}-slow`);
  const s = await scenario('slow', (stable) => ({ [stable]: HEALTHY, [slow]: SLOW }));
  const { releaseId } = await rig.releases.submit(s.spec(slow));
  try {
    // Watched all along: the canary never gets a weight, and HAProxy never sends it a request.
    let result: ReleaseStatus | undefined;
    const weights = new Set<number>();
    const deadline = Date.now() + 60_000;
    while (!result && Date.now() < deadline) {
      weights.add((await router.getRoutes(s.service.name)).canaryWeight);
      const status = await rig.releases.status(releaseId);
      if (isTerminal(status.state)) result = status;
      else await sleep(100);
    }
    assert.ok(result, 'the release finished within 60 s');
    assert.equal(result.outcome?.result, 'rolled-back');
    assert.match(result.outcome!.reason, new RegExp(`load test failed in synthetic: p99 [\\d.]+ ms above ${SYNTHETIC_P99_LIMIT_MS} ms`));
    assert.equal(result.step?.name, 'synthetic');
    const [load] = result.loadTests;
    assert.ok(load && !load.passed, 'the load test is in the status, failed');
    // Four connections at 200 ms a request: about 20 a second reach it, whatever the rate asked for.
    assert.ok(load.result.requests >= 20, `the load reached the new version (${load.result.requests} requests)`);
    assert.ok(load.result.latencyMs.p99 >= SLOW.latencyMs, `p99 ${load.result.latencyMs.p99} ms reflects the ${SLOW.latencyMs} ms version`);

    assert.deepEqual(movedWeights(result), [], 'the release never moved traffic');
    assert.deepEqual([...weights], [0], 'HAProxy never gave the canary a weight');
    const counters = await serverCounters(stack.haproxySocket, s.service.name);
    assert.equal(counters.canary.sessions, 0, 'HAProxy never sent a user request to the slow version');
    assert.equal((await s.end()).byVersion[slow], undefined, 'no user saw the slow version');
    assert.deepEqual(await demoDeployer(s.service, {}).slots(s.service.name), { stable: s.stable, canary: null });
    assert.equal(await portOpen(s.service.canaryPort), false, 'the slow instance is stopped');
  } finally {
    await s.end();
    await abortIfRunning(releaseId);
  }
});

test('a firing Alertmanager alert pauses the release through the API webhook, and the pause holds past the bake', { timeout: 90_000 }, async () => {
  // The API, in process, where the stack's Alertmanager posts. It listens for this scenario only: the shipped rule
  // fires for the faulty scenario's canary too, and that release must be judged by its analysis alone.
  const app = await buildApp({
    releases: rig.releases,
    ping: async () => {
      await rig.client.workflowService.getSystemInfo({});
    },
    settings: { alertmanagerToken: stack.alertWebhookToken, rateLimit: { max: 0, windowMs: 60_000 } },
  });
  const api = await listen(app, { host: '127.0.0.1', port: apiPort, graceMs: 2_000 });
  const next = sha(`${services.alert.name}-next`);
  const s = await scenario('alert', (stable) => ({ [stable]: HEALTHY, [next]: HEALTHY }));
  const { releaseId } = await rig.releases.submit(s.spec(next, { bake: { 'canary-5': '8s' } }));
  try {
    const baking = await waitFor('the canary at 5%', async () => {
      const status = await rig.releases.status(releaseId);
      return status.step?.name === 'canary-5' && status.routes.canaryWeight === 5 && status;
    }, 60_000, 100);
    assert.equal(baking.state, 'running');

    const alert = { alertname: 'RampartE2eCheckoutErrors', service: s.service.name, severity: 'critical' };
    const posted = await fetch(`${stack.alertmanagerUrl}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ labels: alert, annotations: { summary: 'checkout errors above budget' }, startsAt: new Date().toISOString() }]),
    });
    assert.equal(posted.status, 200, await posted.text());

    const paused = await waitFor('the alert to pause the release', async () => {
      const status = await rig.releases.status(releaseId);
      return status.state === 'paused' && status;
    }, 20_000, 100);
    assert.equal(paused.pause?.cause, 'alert');
    assert.equal(paused.pause?.actor, 'alertmanager', 'it came through the webhook with Alertmanager’s token');
    assert.match(paused.pause!.reason, /RampartE2eCheckoutErrors firing: checkout errors above budget/);
    assert.equal(paused.step?.name, 'canary-5');

    // Held well past the 8 s bake: no step, no weight change, no analysis.
    const stepStarted = Date.parse(lastTransition(paused, 'step-started')!.at);
    const holdUntil = Math.max(Date.now() + 4_000, stepStarted + 8_000 + 4_000);
    while (Date.now() < holdUntil) {
      const status = await rig.releases.status(releaseId);
      assert.equal(status.state, 'paused');
      assert.equal(status.step?.name, 'canary-5');
      assert.equal(status.analysis.length, paused.analysis.length, 'no analysis runs while paused');
      assert.deepEqual(await router.getRoutes(s.service.name), { canaryWeight: 5, internalAudience: INTERNAL }, 'HAProxy holds the canary at 5%');
      await sleep(500);
    }
    assert.deepEqual(movedWeights(await rig.releases.status(releaseId)), [0, 5]);

    const aborted = await rig.releases.command(releaseId, 'abort', { actor: 'e2e', reason: 'alert investigated' });
    assert.equal(aborted.outcome?.result, 'aborted');
    assert.deepEqual(await router.getRoutes(s.service.name), STABLE_ONLY);
  } finally {
    await s.end();
    await abortIfRunning(releaseId);
    await api.close();
  }
});

test(
  'a full step baking longer than the analysis window still promotes, though stable takes no traffic at 100%',
  { timeout: 90_000 },
  async () => {
    const next = sha(`${services.fullBake.name}-next`);
    const s = await scenario('fullBake', (stable) => ({ [stable]: HEALTHY, [next]: HEALTHY }));
    const { releaseId } = await rig.releases.submit(s.spec(next, { bake: { 'canary-5': '2s', 'ramp-10': '2s', 'ramp-50': '2s', full: '12s' } }));
    try {
      const ended = await waitFor('the release to finish or pause', async () => {
        const status = await rig.releases.status(releaseId);
        return (isTerminal(status.state) || status.state === 'paused') && status;
      }, 60_000, 200);
      assert.equal(ended.state, 'promoted', `${ended.state} in ${ended.step?.name}: ${ended.pause?.reason ?? ended.outcome?.reason}`);
    } finally {
      await s.end();
      await abortIfRunning(releaseId);
    }
  },
);

// Last: it stops the stack's Prometheus.
test('Prometheus unreachable during a bake gives inconclusive analysis and a pause, never a promotion', { timeout: 90_000 }, async () => {
  const next = sha(`${services.metricsDown.name}-next`);
  const s = await scenario('metricsDown', (stable) => ({ [stable]: HEALTHY, [next]: HEALTHY }));
  const { releaseId } = await rig.releases.submit(s.spec(next, { bake: { 'canary-5': '10s' } }));
  try {
    const measured = await waitFor('a successful analysis at 5%', async () => {
      const status = await rig.releases.status(releaseId);
      return status.analysis.some((run) => run.step === 'canary-5' && run.phase === 'Successful') && status;
    }, 60_000, 100);
    assert.equal(measured.step?.name, 'canary-5');
    await stack.stop('prometheus');
    const stoppedAt = Date.now();

    const paused = await waitFor('an inconclusive pause', async () => {
      const status = await rig.releases.status(releaseId);
      return status.state === 'paused' && status;
    }, 30_000, 100);
    assert.equal(paused.pause?.cause, 'inconclusive');
    assert.match(paused.pause!.reason, /analysis inconclusive 4 time\(s\), limit 3: error-rate: query failed: Prometheus .* could not answer/);
    // Every run since the last success met the stopped Prometheus (one may predate stoppedAt); an early
    // no-data run of the step, before any traffic was scraped, counts towards the limit as well.
    const phases = paused.analysis.filter((run) => run.step === 'canary-5').map((run) => run.phase);
    const trailing = phases.slice(phases.lastIndexOf('Successful') + 1);
    assert.ok(trailing.length >= 1 && trailing.every((phase) => phase === 'Error'), `runs after the last success: ${trailing.join(', ')}`);
    assert.ok(phases.filter((phase) => phase === 'Error' || phase === 'Inconclusive').length >= 4, `runs of the step: ${phases.join(', ')}`);
    assert.ok(paused.analysis.every((run) => run.phase !== 'Successful' || Date.parse(run.at) <= stoppedAt), 'no success once Prometheus was down');
    assert.equal(paused.step?.name, 'canary-5');

    // The bake's 10 s run out while paused: nothing advances.
    const stepStarted = Date.parse(lastTransition(paused, 'step-started')!.at);
    while (Date.now() < stepStarted + 10_000 + 3_000) {
      const status = await rig.releases.status(releaseId);
      assert.equal(status.state, 'paused');
      assert.equal(status.step?.name, 'canary-5');
      assert.deepEqual(await router.getRoutes(s.service.name), { canaryWeight: 5, internalAudience: INTERNAL });
      await sleep(500);
    }

    // A person resumes with Prometheus still away: more missing data, paused again, still no promotion.
    const resumed = await rig.releases.command(releaseId, 'resume', { actor: 'e2e', reason: 'try again' });
    assert.equal(resumed.state, 'running');
    const pausedAgain = await waitFor('a second inconclusive pause', async () => {
      const status = await rig.releases.status(releaseId);
      return status.state === 'paused' && status.history.filter((t) => t.event === 'paused').length === 2 && status;
    }, 30_000, 100);
    assert.equal(pausedAgain.pause?.cause, 'inconclusive');
    assert.equal(pausedAgain.step?.name, 'canary-5');
    assert.deepEqual(movedWeights(pausedAgain), [0, 5], 'the release never went past 5%');
    assert.ok(pausedAgain.analysis.every((run) => run.step !== 'canary-5' || Date.parse(run.at) <= stoppedAt || run.phase !== 'Successful'));
    assert.deepEqual(await router.getRoutes(s.service.name), { canaryWeight: 5, internalAudience: INTERNAL });

    const aborted = await rig.releases.command(releaseId, 'abort', { actor: 'e2e', reason: 'metrics are down' });
    assert.equal(aborted.outcome?.result, 'aborted');
    assert.deepEqual(await router.getRoutes(s.service.name), STABLE_ONLY);
    assert.deepEqual(await demoDeployer(s.service, {}).slots(s.service.name), { stable: s.stable, canary: null });
  } finally {
    await s.end();
    await abortIfRunning(releaseId);
  }
});
