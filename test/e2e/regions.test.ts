import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { buildApp } from '../../src/api/app';
import { listen } from '../../src/api/server';
import { SpecRegistry } from '../../src/api/spec-registry';
import type { ReleaseStatus } from '../../src/engine/release-state';
import { freePort } from '../../src/net';
import { PROJECT_ROOT } from '../../src/paths';
import { LocalDeployer } from '../../src/providers/deploy/local';
import { HaproxyRouter } from '../../src/providers/traffic/haproxy';
import { STABLE_ONLY } from '../../src/providers/traffic/router';
import { freeStackPorts, regionTarget, startLocalStack, type LocalStack, type StackService } from '../../src/stack/local-stack';
import type { DevServer } from '../../src/temporal/dev-server';
import { ReleaseClient, ReleaseNotFoundError, type RegionView } from '../../src/temporal/releases';
import type { RolloutStatus } from '../../workflows/definitions';
import { call, TEST_SETTINGS, TOKENS } from '../api/helpers';
import { quietSdkLogs, sha, spawnWorkerProcess, startTestServer, waitFor } from '../helpers/temporal';
import { allocateService, canaryWeight, Cleanups, DEMO_COMMAND, DEPLOY_STATE_DIR, freeRegionPorts, HEALTHY, portOpen, probe, TrafficLoop, type Behaviour } from './helpers';

// Issue 15 end to end: one service in three regions, waves [r1] then [r2, r3], on the local stack with regions (a
// HAProxy per region, one Prometheus labelling every series with its region, the demo service in each region's
// slots), a Temporal dev server, a worker in its own process (so it can be SIGKILLed), the API in process and the
// CLI as an operator runs it. The service's spec is registered with the API (a local target is never sent inline);
// each scenario registers the spec it needs and restarts the API on the same port, as a reviewed spec change is
// deployed, and starts its rollout with POST /v1/releases. User traffic flows through every region's frontend the whole time; each region's
// canary is judged against that region's stable by the default checks. Every end state is read from HAProxy's
// runtime API, from the demo's own answers through each region's frontend and from the instances running, and
// `rampart where` must say the same.

const REGIONS = ['r1', 'r2', 'r3'] as const;
type Region = (typeof REGIONS)[number];
const ENVIRONMENT = 'production';
const FAULTY: Behaviour = { errorRate: 0.5, latencyMs: HEALTHY.latencyMs };

const cleanups = new Cleanups();
let stack: LocalStack;
let server: DevServer;
let releases: ReleaseClient;
let client: Client;
let apiPort: number;
let apiUrl: string;
let api: { close(): Promise<void> } | null = null;
let workDir: string;
let dataDir: string;
let worker: ChildProcess;
let service: Required<StackService>;
/** Versions in the order they are released; v0 is what each region runs before any rollout. */
const v = Array.from({ length: 6 }, (_, i) => sha(`regions-e2e-${process.pid}-v${i}`));

function deployer(region: Region, behaviour: Record<string, Behaviour> = {}): LocalDeployer {
  // The worker's records: same state dir (the default), same region.
  const slots = regionTarget(stack, region, service.name);
  return new LocalDeployer({ command: DEMO_COMMAND, stablePort: slots.stablePort, canaryPort: slots.canaryPort, env: { DEMO_BEHAVIOUR: JSON.stringify(behaviour) }, region });
}

function router(region: Region): HaproxyRouter {
  return new HaproxyRouter({ socket: regionTarget(stack, region, service.name).haproxySocket });
}

function startWorker(): ChildProcess {
  const child = spawnWorkerProcess(server.address, dataDir);
  cleanups.add(`worker ${child.pid}`, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

before(async () => {
  quietSdkLogs();
  workDir = await mkdtemp(path.join(tmpdir(), 'rampart-regions-e2e-'));
  cleanups.add('work dir', () => rm(workDir, { recursive: true, force: true }));
  dataDir = path.join(workDir, 'data');
  service = await allocateService('e2e-regions');
  apiPort = await freePort();
  apiUrl = `http://127.0.0.1:${apiPort}`;

  const regions = await freeRegionPorts(REGIONS, service.name);
  const [stackStarted, serverStarted] = await Promise.allSettled([
    (async () =>
      startLocalStack({
        dir: path.join(workDir, 'stack'),
        services: [service],
        regions,
        ports: await freeStackPorts(),
        environment: ENVIRONMENT,
        alertWebhookUrl: `http://127.0.0.1:${apiPort}/v1/alerts/alertmanager`,
        alertWebhookToken: TEST_SETTINGS.alertmanagerToken!,
      }))(),
    startTestServer(),
  ]);
  if (stackStarted.status === 'fulfilled') cleanups.add('stack', () => stackStarted.value.stop());
  if (serverStarted.status === 'fulfilled') cleanups.add('temporal', () => serverStarted.value.stop());
  if (stackStarted.status === 'rejected') throw stackStarted.reason;
  if (serverStarted.status === 'rejected') throw serverStarted.reason;
  stack = stackStarted.value;
  server = serverStarted.value;

  const connection = await Connection.connect({ address: server.address });
  cleanups.add('connection', () => connection.close());
  client = new Client({ connection });
  releases = new ReleaseClient(client);
  cleanups.add('api', () => api?.close());

  // Each region runs v0 before any rollout (deployed by hand, as an earlier release would have left it).
  for (const region of REGIONS) {
    cleanups.add(`instances in ${region}`, async () => {
      const regional = deployer(region);
      await Promise.allSettled([regional.stop(service.name, 'stable'), regional.stop(service.name, 'canary')]);
      await rm(path.join(DEPLOY_STATE_DIR, `${service.name}@${region}`), { recursive: true, force: true });
    });
  }
  await Promise.all(
    REGIONS.map(async (region) => {
      await deployer(region, { [v[0]!]: HEALTHY }).deploy(service.name, 'stable', v[0]!);
      await router(region).waitUntilUp(service.name, ['stable']);
    }),
  );
  worker = startWorker();

  // Users in every region, all along: the analysis judges each region's canary on its own region's traffic.
  for (const region of REGIONS) {
    const traffic = new TrafficLoop(regionTarget(stack, region, service.name).frontendUrl, service.name, { rate: 30, concurrency: 6, maxMs: 900_000 }).start();
    cleanups.add(`traffic in ${region}`, () => traffic.stop());
  }
});

after(() => cleanups.run(60_000));
afterEach(() => settle(lastRollout));

interface RolloutOptions {
  onFailure?: 'halt' | 'rollback-all';
  soak?: string;
  /** A region whose instances get a DEMO_BEHAVIOUR of their own, where the versions in `faulty` fail half their requests. */
  faultyIn?: Region;
  faulty?: Record<string, Behaviour>;
  /** Canary bakes of their own in some regions (a region still baking when another fails, or when the test acts). */
  canaryBake?: Partial<Record<Region, string>>;
  /** How long a promoted region keeps its previous version warm; default none, so a promotion ends with one version in the stable slot. */
  warmWindow?: string;
}

/**
 * The service's spec with regions: the base target is r1's slots and HAProxy, each other region overrides them with
 * its own; waves [r1], [r2, r3]. Each region: canary at 50% for a short bake, judged by the default checks against
 * that region's stable, then full. A version faulty in one region is so through that region's environment only.
 */
function rolloutSpec(options: RolloutOptions = {}): Record<string, unknown> {
  const healthy = Object.fromEntries(v.map((each) => [each, HEALTHY]));
  const env = (region: Region) => ({ DEMO_BEHAVIOUR: JSON.stringify(region === options.faultyIn ? { ...healthy, ...options.faulty } : healthy) });
  const steps = (bake: string) => [
    { name: 'canary-50', phase: 'canary', weight: 50, bake },
    { name: 'full', phase: 'full', weight: 100, analysis: false },
  ];
  const regionBlock = (region: Region) => {
    const { stablePort, canaryPort, haproxySocket } = regionTarget(stack, region, service.name);
    const bake = options.canaryBake?.[region];
    return { target: { stablePort, canaryPort, haproxySocket, env: env(region) }, ...(bake ? { strategy: { steps: steps(bake) } } : {}) };
  };
  const base = regionTarget(stack, 'r1', service.name);
  return {
    service: service.name,
    environment: ENVIRONMENT,
    target: { type: 'local', command: DEMO_COMMAND, stablePort: base.stablePort, canaryPort: base.canaryPort, haproxySocket: base.haproxySocket, prometheusUrl: base.prometheusUrl, env: env('r1') },
    strategy: { steps: steps('4s') },
    analysis: { interval: '1s', maxBakeFactor: 10 },
    regions: { r1: regionBlock('r1'), r2: regionBlock('r2'), r3: regionBlock('r3') },
    waves: [['r1'], ['r2', 'r3']],
    rollout: { soak: options.soak ?? '0s', onFailure: options.onFailure ?? 'halt' },
    rollback: { warmWindow: options.warmWindow ?? '0s' },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The rollout through the API, and what runs where through the CLI

let registrations = 0;
/** The rollout the running test started: one it leaves running is aborted after it. */
let lastRollout: string | undefined;

/** Registers the service's spec (a file in a specs folder of its own) and (re)starts the API on its port with it. */
async function serveApi(spec: Record<string, unknown>): Promise<void> {
  const dir = path.join(workDir, 'specs', String(++registrations));
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, `${service.name}.yaml`), JSON.stringify({ spec }, null, 2));
  await api?.close();
  const app = await buildApp({
    releases,
    ping: async () => {
      await client.workflowService.getSystemInfo({});
    },
    settings: { ...TEST_SETTINGS, commandWaitMs: 30_000 },
    specs: SpecRegistry.load(dir),
  });
  api = await listen(app, { host: '127.0.0.1', port: apiPort, graceMs: 2_000 });
}

const rolloutPath = (rolloutId: string) => `/v1/rollouts/${encodeURIComponent(rolloutId)}`;

/** The registered service's version, started over the API: a spec with regions answers with its rollout. */
async function startRollout(version: string, options: RolloutOptions = {}): Promise<string> {
  await serveApi(rolloutSpec(options));
  const answer = await call<{ rolloutId?: string; disposition: string }>(apiUrl, 'POST', '/v1/releases', { token: TOKENS.operator.token, body: { service: service.name, environment: ENVIRONMENT, version } });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  assert.equal(answer.body.disposition, 'started');
  const rolloutId = answer.body.rolloutId!;
  assert.equal(rolloutId, `rollout/${service.name}/${ENVIRONMENT}/${version}`);
  assert.equal(answer.headers.get('location'), rolloutPath(rolloutId));
  lastRollout = rolloutId;
  return rolloutId;
}

async function rolloutStatus(rolloutId: string): Promise<RolloutStatus> {
  const answer = await call<RolloutStatus>(apiUrl, 'GET', rolloutPath(rolloutId), { token: TOKENS.viewer.token });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

async function rolloutEnd(rolloutId: string, timeoutMs = 240_000): Promise<RolloutStatus> {
  return waitFor(`${rolloutId} to finish`, async () => {
    const status = await rolloutStatus(rolloutId);
    return status.state !== 'running' && status;
  }, timeoutMs, 500);
}

const CLI = path.join(PROJECT_ROOT, 'src', 'cli', 'main.ts');

/** `rampart where <service> --json`, a process of its own over HTTP, as an operator runs it. */
async function where(): Promise<RegionView[]> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', CLI, 'where', service.name, '--env', ENVIRONMENT, '--json'], {
    env: { ...process.env, RAMPART_API_URL: apiUrl, RAMPART_TOKEN: TOKENS.viewer.token },
    timeout: 60_000,
  });
  const answer = JSON.parse(stdout) as RegionView[] | { regions: RegionView[] };
  return Array.isArray(answer) ? answer : answer.regions;
}

/** After a test: a rollout it left running (it failed half-way) is aborted and waited for, so the next starts clean. */
async function settle(rolloutId: string | undefined): Promise<void> {
  if (!rolloutId) return;
  const status = await releases.rolloutStatus(rolloutId).catch(() => null);
  if (!status || status.state !== 'running') return;
  await releases.rolloutCommand(rolloutId, 'abort', { actor: 'e2e', reason: 'test cleanup' }).catch(() => undefined);
  await rolloutEnd(rolloutId).catch((error: unknown) => console.error(`${rolloutId} did not settle: ${(error as Error).message}`));
}

// ---------------------------------------------------------------------------------------------------------------
// The truth, from HAProxy, the instances and the users' answers

/** A region at rest on `version`: HAProxy sends everyone to stable, stable runs `version` and answers every user, the canary slot is empty. */
async function assertRegionOn(region: Region, version: string): Promise<void> {
  assert.deepEqual(await router(region).getRoutes(service.name), STABLE_ONLY, `${region}: HAProxy sends everything to stable`);
  assert.equal(await canaryWeight(regionTarget(stack, region, service.name).haproxySocket, service.name), 0, `${region}: canary weight 0 in HAProxy`);
  assert.deepEqual(await deployer(region).slots(service.name), { stable: version, canary: null }, `${region}: ${version} in the stable slot, the canary slot empty`);
  assert.equal(await portOpen(regionTarget(stack, region, service.name).canaryPort), false, `${region}: nothing listens on the canary port`);
  const answers = await probe(regionTarget(stack, region, service.name).frontendUrl, service.name, 30);
  assert.deepEqual(answers.byVersion, { [version]: 30 }, `${region}: every user gets ${version}`);
}

/** Every region at rest, and `rampart where` saying exactly that. */
async function assertAtRest(expected: Record<Region, string>): Promise<void> {
  for (const region of REGIONS) await assertRegionOn(region, expected[region]);
  const shown = await where();
  assert.deepEqual(
    shown.map((row) => [row.region, row.stable, row.inFlight]),
    REGIONS.map((region) => [region, expected[region], null]),
    'rampart where shows what HAProxy and the instances show',
  );
  assert.ok(shown.every((row) => row.lastChange !== null), 'and when each region last changed');
}

function regionOf(status: RolloutStatus, region: Region) {
  return status.regions.find((r) => r.region === region)!;
}

async function releaseOf(status: RolloutStatus, region: Region): Promise<ReleaseStatus> {
  return releases.status(regionOf(status, region).releaseId!);
}

/** Waits until r2 and r3 both bake their canary at 50% in HAProxy, and checks `rampart where` against it. */
async function waitWaveTwoBaking(rolloutId: string): Promise<RolloutStatus> {
  const status = await waitFor('wave 2 baking its canaries', async () => {
    const current = await rolloutStatus(rolloutId);
    if (current.currentWave !== 1) return null;
    for (const region of ['r2', 'r3'] as const) {
      const releaseId = regionOf(current, region).releaseId;
      if (!releaseId) return null;
      const release = await releases.status(releaseId);
      if (release.step?.name !== 'canary-50' || release.routes.canaryWeight !== 50 || release.state !== 'running') return null;
    }
    return current;
  }, 120_000, 250);
  for (const region of ['r2', 'r3'] as const) {
    assert.equal(await canaryWeight(regionTarget(stack, region, service.name).haproxySocket, service.name), 50, `${region}: HAProxy at 50%`);
  }
  return status;
}

// ---------------------------------------------------------------------------------------------------------------

/** How long each region's release took, and how many looks its canary needed: for the test's output. */
function timings(releasesOfRegions: ReleaseStatus[]): string {
  return releasesOfRegions
    .map((release) => {
      const looks = release.analysis.filter((run) => run.step === 'canary-50').length;
      return `${release.releaseId}: ${((Date.parse(release.finishedAt ?? '') - Date.parse(release.startedAt)) / 1000).toFixed(1)} s, ${looks} looks at canary-50`;
    })
    .join('; ');
}

test('a healthy version reaches 100% in every region in wave order: r2 and r3 start only after r1 promoted and the soak', { timeout: 300_000 }, async (t) => {
  await assertRegionOn('r1', v[0]!);
  const rolloutId = await startRollout(v[1]!, { soak: '5s' });

  // While r1 runs, HAProxy in r2 and r3 never moves: looked at until r1's release ends.
  const r1Release = await waitFor('r1 submitted', async () => regionOf(await rolloutStatus(rolloutId), 'r1').releaseId, 60_000);
  let looks = 0;
  let shownDuringWaveOne: RegionView[] | null = null;
  for (;;) {
    // The rollout names r1's release before r1's lane has started it.
    const r1 = await releases.status(r1Release).catch((error: unknown) => {
      if (error instanceof ReleaseNotFoundError) return null;
      throw error;
    });
    if (!r1) {
      for (const region of REGIONS) assert.equal(await canaryWeight(regionTarget(stack, region, service.name).haproxySocket, service.name), 0, `${region} moved before r1's release started`);
      await new Promise((resolve) => setTimeout(resolve, 250));
      continue;
    }
    for (const region of ['r2', 'r3'] as const) {
      assert.equal(await canaryWeight(regionTarget(stack, region, service.name).haproxySocket, service.name), 0, `${region} moved while r1 was ${r1.state}`);
    }
    looks++;
    if (r1.outcome) break;
    const baking = (release: ReleaseStatus) => release.state === 'running' && release.step?.name === 'canary-50' && release.routes.canaryWeight === 50;
    if (!shownDuringWaveOne && baking(r1)) {
      // What the operator sees while r1 bakes, read between two looks at the release that agree.
      const shown = await where();
      if (baking(await releases.status(r1Release))) {
        shownDuringWaveOne = shown;
        assert.equal(await canaryWeight(regionTarget(stack, 'r1', service.name).haproxySocket, service.name), 50, 'r1: HAProxy at 50%');
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  assert.ok(looks > 5, `looked ${looks} times`);
  assert.ok(shownDuringWaveOne, 'rampart where was read while r1 baked its canary');
  // Nothing was ever promoted through Rampart in any region yet (v0 was put there by hand): no stable version to show.
  assert.deepEqual(
    shownDuringWaveOne.map((row) => [row.region, row.stable, row.inFlight?.version ?? null, row.inFlight?.step ?? null]),
    [['r1', null, v[1], 'canary-50'], ['r2', null, null, null], ['r3', null, null, null]],
    'rampart where during wave 1',
  );

  const status = await rolloutEnd(rolloutId);
  assert.equal(status.state, 'promoted', status.reason ?? '');
  const [r1, r2, r3] = await Promise.all(REGIONS.map((region) => releaseOf(status, region)));
  assert.equal(r1!.outcome?.result, 'promoted');
  for (const later of [r2!, r3!]) {
    assert.equal(later.outcome?.result, 'promoted', `${later.releaseId}: ${later.outcome?.reason}`);
    const gap = Date.parse(later.startedAt) - Date.parse(r1!.finishedAt!);
    assert.ok(gap >= 5_000, `${later.releaseId} started ${gap} ms after r1 was promoted; the soak is 5 s`);
    // Each region was judged on its own series: the canary-50 evidence is that region's traffic.
    assert.ok(later.analysis.some((run) => run.step === 'canary-50' && run.outcome === 'pass'), `${later.releaseId} passed its own analysis`);
  }
  t.diagnostic(timings([r1!, r2!, r3!]));
  await assertAtRest({ r1: v[1]!, r2: v[1]!, r3: v[1]! });
});

test('halt: a version faulty only in r2 is rolled back there; r1 stays promoted, r3 stays on its version', { timeout: 300_000 }, async () => {
  const rolloutId = await startRollout(v[2]!, { onFailure: 'halt', faultyIn: 'r2', faulty: { [v[2]!]: FAULTY }, canaryBake: { r3: '60s' } });
  const status = await rolloutEnd(rolloutId);
  assert.equal(status.state, 'halted', status.reason ?? '');
  const r2 = await releaseOf(status, 'r2');
  assert.equal(r2.outcome?.result, 'rolled-back', r2.outcome?.reason);
  assert.match(r2.outcome!.reason, /analysis failed in canary-50: .*error-rate/);
  assert.equal(regionOf(status, 'r1').state, 'promoted');
  assert.notEqual(regionOf(status, 'r3').outcome, 'promoted', 'r3 never reached its full step');
  await assertAtRest({ r1: v[2]!, r2: v[1]!, r3: v[1]! });
});

test('rollback-all: the same fault in r2 also returns r1, already promoted and keeping its previous version warm, to that version', { timeout: 300_000 }, async () => {
  // r1 keeps its previous version warm, as the local target does by default: its rollback is the route switch back.
  const rolloutId = await startRollout(v[3]!, { onFailure: 'rollback-all', faultyIn: 'r2', faulty: { [v[3]!]: FAULTY }, canaryBake: { r3: '60s' }, warmWindow: '5m' });
  const status = await rolloutEnd(rolloutId);
  assert.equal(status.state, 'rolled-back', status.reason ?? '');
  const r1 = regionOf(status, 'r1');
  assert.equal(r1.outcome, 'promoted', 'r1 was promoted first');
  assert.equal(r1.state, 'rolled-back', r1.detail ?? '');
  assert.equal(r1.previousStable, v[2]);
  const rollback = await releases.status(r1.rollbackId!);
  assert.equal(rollback.outcome?.result, 'rolled-back-to');
  assert.equal((await releaseOf(status, 'r2')).outcome?.result, 'rolled-back');
  await assertAtRest({ r1: v[2]!, r2: v[1]!, r3: v[1]! });
});

test('abort during wave 2 leaves every region on its previous version; rampart where shows wave 2 in flight first', { timeout: 300_000 }, async () => {
  const rolloutId = await startRollout(v[4]!, { canaryBake: { r2: '120s', r3: '120s' } });
  const baking = await waitWaveTwoBaking(rolloutId);
  const shown = await where();
  assert.deepEqual(
    shown.map((row) => [row.region, row.stable, row.inFlight?.version ?? null, row.inFlight?.step ?? null]),
    [['r1', v[4], null, null], ['r2', v[1], v[4], 'canary-50'], ['r3', v[1], v[4], 'canary-50']],
    'rampart where during wave 2',
  );
  for (const region of ['r2', 'r3'] as const) {
    assert.equal(shown.find((row) => row.region === region)!.inFlight!.releaseId, regionOf(baking, region).releaseId);
    const answers = await probe(regionTarget(stack, region, service.name).frontendUrl, service.name, 40);
    assert.deepEqual(Object.keys(answers.byVersion).sort(), [v[1], v[4]].sort(), `${region}: users get both versions at 50%`);
  }
  await assertRegionOn('r1', v[4]!);

  const aborted = await call<RolloutStatus>(apiUrl, 'POST', `${rolloutPath(rolloutId)}/abort`, { token: TOKENS.operator.token, body: { reason: 'wrong build' } });
  assert.equal(aborted.status, 200, JSON.stringify(aborted.body));
  assert.ok(aborted.body.history.some((event) => event.event === 'abort' && event.actor === TOKENS.operator.name), 'the operator’s abort is in the history');
  const status = await rolloutEnd(rolloutId);
  assert.equal(status.state, 'aborted', status.reason ?? '');
  assert.equal(regionOf(status, 'r1').state, 'rolled-back', regionOf(status, 'r1').detail ?? '');
  for (const region of ['r2', 'r3'] as const) assert.equal(regionOf(status, region).outcome, 'aborted');
  await assertAtRest({ r1: v[2]!, r2: v[1]!, r3: v[1]! });
});

test('a worker SIGKILLed during wave 2 changes nothing in the end state: another worker finishes the rollout', { timeout: 300_000 }, async () => {
  const rolloutId = await startRollout(v[5]!, { canaryBake: { r2: '10s', r3: '10s' } });
  await waitWaveTwoBaking(rolloutId);
  worker.kill('SIGKILL');
  await waitFor('the worker to die', async () => worker.signalCode === 'SIGKILL', 10_000);
  worker = startWorker();

  const status = await rolloutEnd(rolloutId);
  assert.equal(status.state, 'promoted', status.reason ?? '');
  for (const region of REGIONS) assert.equal(regionOf(status, region).state, 'promoted');
  await assertAtRest({ r1: v[5]!, r2: v[5]!, r3: v[5]! });
});
