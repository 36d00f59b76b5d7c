import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SimulatedFleet } from '../../src/providers/simulated/fleet';
import { validateReleaseSpec } from '../../src/spec/parse';
import type { ReleaseSpec } from '../../src/spec/release-spec';
import type { RolloutStatus } from '../../workflows/definitions';
import { fastSpec } from '../helpers/specs';
import { sha, startRig, uniqueService, waitFor, type TestRig } from '../helpers/temporal';

let rig: TestRig;
let dataDir: string;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'rampart-rollout-'));
  rig = await startRig({ simulatedStateDir: join(dataDir, 'simulated') });
});

after(async () => {
  await rig?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

interface RolloutOptions {
  soak?: string;
  onFailure?: 'halt' | 'rollback-all';
  /** Per region, the simulated health of versions there (a version faulty only in one region). */
  health?: Record<string, Record<string, Record<string, unknown>>>;
  /** Per region, bakes of its own (a region that is still baking when another fails). */
  bake?: Record<string, Record<string, string>>;
}

/** Three regions in waves [r1], [r2, r3] on the simulated target, each region a fleet of its own. */
function rolloutSpec(service: string, version: string, options: RolloutOptions = {}): ReleaseSpec {
  const base = fastSpec(service, version);
  const region = (name: string) => ({
    ...(options.health?.[name] ? { target: { health: options.health[name] } } : {}),
    ...(options.bake?.[name] ? { strategy: { steps: fastSpec(service, version, { bake: options.bake[name] }).strategy.steps } } : {}),
  });
  return validateReleaseSpec({
    ...base,
    regions: { r1: region('r1'), r2: region('r2'), r3: region('r3') },
    waves: [['r1'], ['r2', 'r3']],
    rollout: { soak: options.soak ?? 0, onFailure: options.onFailure ?? 'halt' },
  });
}

async function rollOut(spec: ReleaseSpec): Promise<RolloutStatus> {
  const { rolloutId, disposition } = await rig.releases.startRollout(spec);
  assert.equal(disposition, 'started');
  return rig.releases.rolloutResult(rolloutId);
}

function fleetOf(service: string, region: string) {
  return new SimulatedFleet({ stateDir: join(dataDir, 'simulated') }).reload(`${service}@${region}`)!;
}

const region = (status: RolloutStatus, name: string) => status.regions.find((r) => r.region === name)!;

async function stableIn(service: string, name: string): Promise<string | null> {
  return (await rig.releases.lane(service, 'production', name))?.stable.at(-1)?.version ?? null;
}

describe('rollout across regions', () => {
  test('a healthy version reaches every region in wave order, with the soak between waves', async () => {
    const service = uniqueService('waves');
    const version = sha(`${service}-v1`);
    const status = await rollOut(rolloutSpec(service, version, { soak: '2s' }));
    assert.equal(status.state, 'promoted', status.reason ?? '');
    assert.deepEqual(status.regions.map((r) => [r.region, r.state]), [['r1', 'promoted'], ['r2', 'promoted'], ['r3', 'promoted']]);

    // The releases' own records (each is its own workflow) prove the order: r2 and r3 start only after r1 promoted, plus the soak.
    const [r1, r2, r3] = await Promise.all(['r1', 'r2', 'r3'].map((name) => rig.releases.status(region(status, name).releaseId!)));
    assert.equal(r1!.releaseId, `release/${service}/production@r1/${version}`);
    for (const later of [r2!, r3!]) {
      assert.equal(later.outcome?.result, 'promoted');
      const gap = Date.parse(later.startedAt) - Date.parse(r1!.finishedAt!);
      assert.ok(gap >= 2_000, `${later.releaseId} started ${gap} ms after r1 finished; the soak is 2 s`);
    }
    for (const name of ['r1', 'r2', 'r3']) {
      assert.equal(await stableIn(service, name), version);
      assert.deepEqual(fleetOf(service, name).slots, { stable: version, canary: null });
    }
    const where = await rig.releases.where(service, 'production');
    assert.deepEqual(where.map((w) => [w.region, w.stable, w.inFlight]), [['r1', version, null], ['r2', version, null], ['r3', version, null]]);
    assert.ok(where.every((w) => w.lastChange !== null));
    // A second start of the same version is the same rollout.
    assert.deepEqual(await rig.releases.startRollout(rolloutSpec(service, version)), { rolloutId: status.rolloutId, disposition: 'duplicate' });
  });

  test('halt: a version faulty only in r2 is rolled back there, r1 stays promoted, r3 stays on its version', async () => {
    const service = uniqueService('halt');
    const [v1, v2] = [sha(`${service}-v1`), sha(`${service}-v2`)];
    assert.equal((await rollOut(rolloutSpec(service, v1))).state, 'promoted');

    const status = await rollOut(
      rolloutSpec(service, v2, { onFailure: 'halt', health: { r2: { [v2]: { errorRate: 0.5 } } }, bake: { r3: { 'ramp-10': '60s' } } }),
    );
    assert.equal(status.state, 'halted', status.reason ?? '');
    assert.equal(region(status, 'r1').state, 'promoted');
    assert.equal(region(status, 'r2').state, 'failed');
    assert.equal(region(status, 'r2').outcome, 'rolled-back');
    assert.equal(region(status, 'r3').state, 'failed');
    assert.equal(region(status, 'r3').outcome, 'aborted', 'the rest of the failing wave is stopped');
    assert.equal(await stableIn(service, 'r1'), v2);
    assert.equal(await stableIn(service, 'r2'), v1);
    assert.equal(await stableIn(service, 'r3'), v1);
    assert.deepEqual(fleetOf(service, 'r1').slots, { stable: v2, canary: null });
    assert.deepEqual(fleetOf(service, 'r2').slots, { stable: v1, canary: null });
    assert.deepEqual(fleetOf(service, 'r3').slots, { stable: v1, canary: null });
  });

  test('rollback-all: r1, already promoted, returns to its previous version too', async () => {
    const service = uniqueService('all');
    const [v1, v2] = [sha(`${service}-v1`), sha(`${service}-v2`)];
    assert.equal((await rollOut(rolloutSpec(service, v1))).state, 'promoted');

    const status = await rollOut(rolloutSpec(service, v2, { onFailure: 'rollback-all', health: { r2: { [v2]: { errorRate: 0.5 } } }, bake: { r3: { 'ramp-10': '60s' } } }));
    assert.equal(status.state, 'rolled-back', status.reason ?? '');
    const r1 = region(status, 'r1');
    assert.equal(r1.state, 'rolled-back', r1.detail ?? '');
    assert.equal(r1.previousStable, v1);
    const rollback = await rig.releases.status(r1.rollbackId!);
    assert.equal(rollback.outcome?.result, 'rolled-back-to');
    assert.match(rollback.releaseId, new RegExp(`^rollback/${service}/production@r1/${v1}/`));
    assert.equal(region(status, 'r2').state, 'failed');
    for (const name of ['r1', 'r2', 'r3']) {
      assert.equal(await stableIn(service, name), v1, name);
      assert.deepEqual(fleetOf(service, name).slots, { stable: v1, canary: null }, name);
    }
  });

  test('abort during wave 2 leaves every region on its previous version; pause holds and resume lets go', async () => {
    const service = uniqueService('abort');
    const [v1, v2] = [sha(`${service}-v1`), sha(`${service}-v2`)];
    assert.equal((await rollOut(rolloutSpec(service, v1))).state, 'promoted');

    const long = { 'ramp-10': '120s' };
    const { rolloutId } = await rig.releases.startRollout(rolloutSpec(service, v2, { bake: { r2: long, r3: long } }));
    await waitFor('wave 2 baking', async () => {
      const status = await rig.releases.rolloutStatus(rolloutId);
      return status.currentWave === 1 && status.regions.filter((r) => r.state === 'running').length === 2;
    }, 60_000);
    const r2Release = (await rig.releases.rolloutStatus(rolloutId)).regions[1]!.releaseId!;
    await waitFor('r2 at ramp-10', async () => (await rig.releases.status(r2Release)).step?.name === 'ramp-10', 60_000);

    const paused = await rig.releases.rolloutCommand(rolloutId, 'pause', { actor: 'ops', reason: 'look first' });
    assert.equal(paused.paused?.actor, 'ops');
    await waitFor('r2 paused', async () => (await rig.releases.status(r2Release)).state === 'paused');
    await assert.rejects(rig.releases.rolloutCommand(rolloutId, 'pause', { actor: 'ops', reason: 'again' }), /paused already/);
    await rig.releases.rolloutCommand(rolloutId, 'resume', { actor: 'ops', reason: 'fine' });
    await waitFor('r2 running again', async () => (await rig.releases.status(r2Release)).state === 'running');

    await rig.releases.rolloutCommand(rolloutId, 'abort', { actor: 'ops', reason: 'bad idea' });
    const status = await rig.releases.rolloutResult(rolloutId);
    assert.equal(status.state, 'aborted', status.reason ?? '');
    assert.equal(region(status, 'r1').state, 'rolled-back');
    assert.equal(region(status, 'r2').outcome, 'aborted');
    for (const name of ['r1', 'r2', 'r3']) {
      assert.equal(await stableIn(service, name), v1, name);
      assert.deepEqual(fleetOf(service, name).slots, { stable: v1, canary: null }, name);
    }
    await assert.rejects(rig.releases.rolloutCommand(rolloutId, 'resume', { actor: 'ops', reason: 'late' }), /finished/);
    const where = await rig.releases.where(service, 'production');
    assert.deepEqual(where.map((w) => [w.region, w.stable, w.inFlight]), [['r1', v1, null], ['r2', v1, null], ['r3', v1, null]]);
  });

  test('a newer version superseding a region ends the older rollout as superseded, with nothing rolled back', async () => {
    const service = uniqueService('newer');
    const [v1, v2, v3] = [sha(`${service}-v1`), sha(`${service}-v2`), sha(`${service}-v3`)];
    assert.equal((await rollOut(rolloutSpec(service, v1))).state, 'promoted');
    const long = { 'ramp-10': '120s' };
    const older = await rig.releases.startRollout(rolloutSpec(service, v2, { onFailure: 'rollback-all', bake: { r2: long, r3: long } }));
    await waitFor('v2 baking in wave 2', async () => (await rig.releases.rolloutStatus(older.rolloutId)).regions.filter((r) => r.state === 'running').length === 2, 60_000);

    const newer = await rollOut(rolloutSpec(service, v3));
    assert.equal(newer.state, 'promoted', newer.reason ?? '');
    const old = await rig.releases.rolloutResult(older.rolloutId);
    assert.equal(old.state, 'superseded', old.reason ?? '');
    assert.ok(old.regions.every((r) => r.rollbackId === null), 'rollback-all did not undo what the newer rollout brought');
    for (const name of ['r1', 'r2', 'r3']) assert.equal(await stableIn(service, name), v3, name);
  });
});
