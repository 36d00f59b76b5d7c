import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ReleaseSpec } from '../../src/spec/release-spec';
import { RollbackRefusedError } from '../../src/temporal/releases';
import { fastSpec } from '../helpers/specs';
import { sha, startRig, uniqueService, waitFor, type TestRig } from '../helpers/temporal';

const ENV = 'production';
const operator = { actor: 'olga', reason: 'v2 corrupts carts' };

function withCommit(spec: ReleaseSpec, time: string): ReleaseSpec {
  return { ...spec, commit: { sha: sha(`${spec.version}-${time}`), time } };
}

describe('rollback of a promoted release to a known-good version, on a real Temporal dev server', () => {
  let rig: TestRig;
  before(async () => {
    rig = await startRig();
  });
  after(async () => {
    await rig?.close();
  });

  const fleetOf = (service: string) => rig.worker.fleet.service(service);

  /** Releases each version to 100% through the lane, one after the other. */
  async function promote(...specs: ReleaseSpec[]): Promise<void> {
    for (const spec of specs) {
      const { releaseId, disposition } = await rig.releases.submit(spec);
      assert.equal(disposition, 'started', spec.version);
      assert.equal((await rig.releases.result(releaseId)).outcome?.result, 'promoted', spec.version);
    }
    // The lane learns of each promotion by signal or by the child's completion: wait until it knows the last.
    const service = specs[0]!.service;
    await waitFor('the lane to know the last promotion', async () => (await rig.releases.lane(service, ENV))?.stable.at(-1)?.version === specs.at(-1)!.version);
  }

  test('after v1 then v2 are promoted, a rollback returns all traffic to v1, retires v2, and keeps the reason in the history', async () => {
    const service = uniqueService('rb');
    const [v1, v2] = [sha(`${service}-1`), sha(`${service}-2`)];
    await promote(fastSpec(service, v1), fastSpec(service, v2));
    const eventsBefore = fleetOf(service).events.length;

    const answer = await rig.releases.rollback(service, ENV, operator);
    assert.equal(answer.disposition, 'started');
    assert.equal(answer.to, v1);
    assert.equal(answer.from, v2);
    assert.match(answer.releaseId!, new RegExp(`^rollback/${service}/${ENV}/${v1}/`));

    const result = await rig.releases.result(answer.releaseId!);
    assert.equal(result.outcome?.result, 'rolled-back-to');
    assert.equal(result.outcome?.actor, 'olga');
    const requested = result.history.find((t) => t.event === 'rollback-requested');
    assert.equal(requested?.actor, 'olga');
    assert.equal(requested?.reason, `${v2} -> ${v1}: ${operator.reason}`);
    assert.ok(!result.history.some((t) => t.event.startsWith('analysis') || t.event.startsWith('load-test')), 'the fast path judges nothing');

    const fleet = fleetOf(service);
    assert.deepEqual(fleet.slots, { stable: v1, canary: null });
    assert.deepEqual(fleet.routes, { canaryWeight: 0, internalAudience: null });
    // v1 took all traffic in the canary slot before it replaced v2 in the stable slot: no moment back on v2 once it had it.
    const moves = fleet.events.slice(eventsBefore).map((e) => `${e.action}:${e.slot ?? ''}:${e.version ?? e.routes?.canaryWeight ?? ''}`);
    assert.deepEqual(moves, [`deploy:canary:${v1}`, 'set-routes::100', `deploy:stable:${v1}`, 'set-routes::0', `stop:canary:${v1}`]);

    const lane = await waitFor('the lane to record v1 stable again', async () => {
      const status = await rig.releases.lane(service, ENV);
      return status?.current === null && status.stable.at(-1)?.version === v1 ? status : null;
    });
    assert.deepEqual(
      lane.stable.map((r) => r.version),
      [v1, v2, v1],
    );
  });

  test('DORA counts the rollback as the recovery from a failed change', async () => {
    const service = uniqueService('dora');
    const [v1, v2] = [sha(`${service}-1`), sha(`${service}-2`)];
    await promote(fastSpec(service, v1), fastSpec(service, v2));
    const answer = await rig.releases.rollback(service, ENV, operator);
    await rig.releases.result(answer.releaseId!);
    // Visibility is eventually consistent: wait for all three records, then read the figures.
    const [figures] = await waitFor('three changes in visibility', async () => {
      const found = await rig.releases.dora({ service });
      return found[0] && found[0].deployments + found[0].failedDeployments === 3 ? found : null;
    });
    assert.equal(figures!.deployments, 2);
    assert.equal(figures!.failedDeployments, 1);
    assert.equal(figures!.changeFailureRate, 0.5);
    assert.equal(figures!.failedDeploymentRecoveryTime?.count, 1);
    assert.ok(figures!.failedDeploymentRecoveryTime!.medianSeconds > 0);
  });

  test("a rollback during v3's canary supersedes v3, which rolls back cleanly, then returns to v1", async () => {
    const service = uniqueService('rb-v3');
    const [v1, v2, v3] = [sha(`${service}-1`), sha(`${service}-2`), sha(`${service}-3`)];
    await promote(fastSpec(service, v1), fastSpec(service, v2));
    const v3Release = await rig.releases.submit(fastSpec(service, v3, { bake: { 'canary-5': '5m' } }));
    await waitFor('v3 baking at 5%', async () => {
      const status = await rig.releases.status(v3Release.releaseId);
      return status.step?.name === 'canary-5' && status.activity === 'baking';
    });

    const answer = await rig.releases.rollback(service, ENV, { actor: 'olga', reason: 'v2 is bad; v3 builds on it' });
    assert.equal(answer.disposition, 'queued');
    assert.equal(answer.supersedes, v3Release.releaseId);
    assert.equal(answer.to, v1);

    const v3Result = await rig.releases.result(v3Release.releaseId);
    assert.equal(v3Result.outcome?.result, 'superseded');
    assert.match(v3Result.outcome!.reason, new RegExp(`superseded by ${v1} \\(rollback/`));
    const result = await waitFor('the rollback to start and finish', async () => rig.releases.result(answer.releaseId!));
    assert.equal(result.outcome?.result, 'rolled-back-to');
    assert.equal(result.stableVersion, v2);
    assert.deepEqual(fleetOf(service).slots, { stable: v1, canary: null });
    assert.deepEqual(fleetOf(service).routes, { canaryWeight: 0, internalAudience: null });
  });

  test('a rollback to a version never stable in the lane is refused with the allowed list, and so is one to the stable version', async () => {
    const service = uniqueService('rb-refused');
    const [v1, v2, v3] = [sha(`${service}-1`), sha(`${service}-2`), sha(`${service}-3`)];
    await promote(fastSpec(service, v1), fastSpec(service, v2), fastSpec(service, v3));
    const never = sha(`${service}-never`);
    await assert.rejects(rig.releases.rollback(service, ENV, { ...operator, to: never }), (error: unknown) => {
      assert.ok(error instanceof RollbackRefusedError, String(error));
      assert.match(error.message, new RegExp(`${never} was never stable here`));
      assert.deepEqual(error.allowed, [v2, v1]);
      return true;
    });
    await assert.rejects(rig.releases.rollback(service, ENV, { ...operator, to: v3 }), /is the stable version already/);
    await assert.rejects(rig.releases.rollback(uniqueService('nothing'), ENV, operator), /nothing was ever released/);
    // Nothing was started: the lane is idle and v3 still serves.
    assert.equal((await rig.releases.lane(service, ENV))?.current, null);
    assert.deepEqual(fleetOf(service).slots, { stable: v3, canary: null });

    // Any version that was stable may be named, not only the last one.
    const answer = await rig.releases.rollback(service, ENV, { ...operator, to: v1 });
    assert.equal(answer.to, v1);
    assert.equal((await rig.releases.result(answer.releaseId!)).outcome?.result, 'rolled-back-to');
    assert.deepEqual(fleetOf(service).slots, { stable: v1, canary: null });
  });

  test('a rollback whose traffic move keeps failing undoes itself: v2 keeps serving, and the lane still counts v2 stable', async () => {
    const service = uniqueService('rb-fail');
    const [v1, v2] = [sha(`${service}-1`), sha(`${service}-2`)];
    await promote(fastSpec(service, v1), fastSpec(service, v2));
    const refusingRouter = fastSpec(service, v1, { health: { [v1]: { trafficFailures: 100 } } }).target;
    const answer = await rig.releases.rollback(service, ENV, { ...operator, target: refusingRouter });
    const result = await rig.releases.result(answer.releaseId!);
    assert.equal(result.outcome?.result, 'rolled-back');
    assert.match(result.outcome!.reason, new RegExp(`the rollback to ${v1} failed and was undone: setRoutes: simulated router refused`));
    assert.deepEqual(
      result.history.filter((t) => t.event === 'undo').map((t) => t.reason),
      ['reset-routes', 'stop-canary'],
    );
    assert.deepEqual(fleetOf(service).slots, { stable: v2, canary: null });
    assert.deepEqual(fleetOf(service).routes, { canaryWeight: 0, internalAudience: null });
    const lane = await waitFor('the lane to be idle', async () => {
      const status = await rig.releases.lane(service, ENV);
      return status?.current === null ? status : null;
    });
    assert.deepEqual(
      lane.stable.map((r) => r.version),
      [v1, v2],
    );
  });

  test('a revert commit that rebuilds v1 takes the rollback path; its redelivery is a duplicate, and an old commit of v1 is not a revert', async () => {
    const service = uniqueService('revert');
    const [v1, v2] = [sha(`${service}-1`), sha(`${service}-2`)];
    await promote(withCommit(fastSpec(service, v1), '2026-03-01T10:00:00Z'), withCommit(fastSpec(service, v2), '2026-03-01T11:00:00Z'));

    // A late redelivery of v1 with its old commit: a duplicate, as before.
    const late = await rig.releases.submit(withCommit(fastSpec(service, v1), '2026-03-01T10:00:00Z'));
    assert.equal(late.disposition, 'duplicate');

    const revert = withCommit(fastSpec(service, v1), '2026-03-01T12:00:00Z');
    const answer = await rig.releases.submit(revert);
    assert.equal(answer.disposition, 'started');
    assert.match(answer.releaseId, new RegExp(`^rollback/${service}/${ENV}/${v1}/`));
    const result = await rig.releases.result(answer.releaseId);
    assert.equal(result.outcome?.result, 'rolled-back-to');
    assert.deepEqual(result.commit, revert.commit);
    assert.match(result.history.find((t) => t.event === 'rollback-requested')!.reason!, new RegExp(`revert: commit ${revert.commit!.sha}`));
    assert.deepEqual(fleetOf(service).slots, { stable: v1, canary: null });

    const again = await rig.releases.submit(revert);
    assert.deepEqual(again, { releaseId: answer.releaseId, disposition: 'duplicate' });
  });
  /** v1 promoted, then v2 promoted keeping v1 warm for `warmWindow`: returns v2's release id once the window has begun. */
  async function promoteKeepingWarm(service: string, v1: string, v2: string, warmWindow: string): Promise<string> {
    await promote(fastSpec(service, v1));
    const { releaseId, disposition } = await rig.releases.submit(fastSpec(service, v2, { warmWindow }));
    assert.equal(disposition, 'started');
    await waitFor('v2 at 100% with v1 warm', async () => {
      const status = await rig.releases.status(releaseId);
      return status.activity === 'warm' && status.warm?.version === v1;
    });
    const lane = await waitFor('the lane to know v1 is warm', async () => {
      const status = await rig.releases.lane(service, ENV);
      return status?.warm?.version === v1 ? status : null;
    });
    assert.equal(lane.warm?.releaseId, releaseId);
    assert.equal(lane.stable.at(-1)?.version, v2, 'v2 counts as stable during its window');
    return releaseId;
  }

  test('inside the warm window a rollback is one weight change back to the warm v1: v2 stopped, v1 never redeployed', async () => {
    const service = uniqueService('rb-warm');
    const [v1, v2] = [sha(`${service}-1`), sha(`${service}-2`)];
    const v2Release = await promoteKeepingWarm(service, v1, v2, '10m');
    const fleet = fleetOf(service);
    assert.deepEqual(fleet.slots, { stable: v1, canary: v2 });
    assert.deepEqual(fleet.routes, { canaryWeight: 100, internalAudience: null });
    const eventsBefore = fleet.events.length;

    const answer = await rig.releases.rollback(service, ENV, operator);
    assert.equal(answer.disposition, 'queued');
    assert.equal(answer.supersedes, v2Release);
    assert.deepEqual([answer.from, answer.to], [v2, v1]);

    const v2Result = await rig.releases.result(v2Release);
    assert.equal(v2Result.outcome?.result, 'promoted');
    assert.ok(v2Result.history.some((t) => t.event === 'switched-to-warm'), 'v2 switched traffic back to its warm instance');
    const result = await waitFor('the rollback to finish', async () => rig.releases.result(answer.releaseId!));
    assert.equal(result.outcome?.result, 'rolled-back-to');
    assert.match(result.outcome!.reason, /warm instance, a route switch/);
    assert.equal(result.history.find((t) => t.event === 'rollback-requested')?.actor, 'olga');

    // One weight change, then v2 stopped: no process started, v1 kept running where it was.
    const moves = fleet.events.slice(eventsBefore).map((e) => `${e.action}:${e.slot ?? ''}:${e.version ?? e.routes?.canaryWeight ?? ''}`);
    assert.deepEqual(moves, ['set-routes::0', `stop:canary:${v2}`]);
    assert.deepEqual(fleet.slots, { stable: v1, canary: null });
    const lane = await waitFor('the lane to record v1 stable again', async () => {
      const status = await rig.releases.lane(service, ENV);
      return status?.current === null && status.stable.at(-1)?.version === v1 ? status : null;
    });
    assert.deepEqual(lane.stable.map((r) => r.version), [v1, v2, v1]);
    assert.equal(lane.warm, null);
  });

  test('when the warm window ends, v2 replaces v1 in the stable slot as a release without a window does', async () => {
    const service = uniqueService('rb-warm-end');
    const [v1, v2] = [sha(`${service}-1`), sha(`${service}-2`)];
    const v2Release = await promoteKeepingWarm(service, v1, v2, '2s');
    const eventsBefore = fleetOf(service).events.length;
    const result = await rig.releases.result(v2Release);
    assert.equal(result.outcome?.result, 'promoted');
    assert.ok(result.history.some((t) => t.event === 'warm-window-ended'));
    const fleet = fleetOf(service);
    const moves = fleet.events.slice(eventsBefore).map((e) => `${e.action}:${e.slot ?? ''}:${e.version ?? e.routes?.canaryWeight ?? ''}`);
    assert.deepEqual(moves, [`deploy:stable:${v2}`, 'set-routes::0', `stop:canary:${v2}`]);
    assert.deepEqual(fleet.slots, { stable: v2, canary: null });
    // After the window a rollback is a cold deploy again.
    const answer = await rig.releases.rollback(service, ENV, operator);
    assert.equal(answer.disposition, 'started');
    assert.equal((await rig.releases.result(answer.releaseId!)).outcome?.result, 'rolled-back-to');
    assert.deepEqual(fleet.slots, { stable: v1, canary: null });
  });

  test('a newer release during the warm window retires the warm v1 first, then starts', async () => {
    const service = uniqueService('rb-warm-new');
    const [v1, v2, v3] = [sha(`${service}-1`), sha(`${service}-2`), sha(`${service}-3`)];
    const v2Release = await promoteKeepingWarm(service, v1, v2, '10m');
    const v3Release = await rig.releases.submit(fastSpec(service, v3));
    assert.equal(v3Release.disposition, 'queued');
    assert.equal(v3Release.supersedes, v2Release);
    const v2Result = await rig.releases.result(v2Release);
    assert.equal(v2Result.outcome?.result, 'promoted');
    assert.match(v2Result.history.find((t) => t.event === 'warm-window-ended')?.reason ?? '', new RegExp(`superseded by ${v3}`));
    const v3Result = await waitFor('v3 to start and finish', async () => rig.releases.result(v3Release.releaseId));
    assert.equal(v3Result.outcome?.result, 'promoted');
    assert.equal(v3Result.stableVersion, v2);
    assert.deepEqual(fleetOf(service).slots, { stable: v3, canary: null });
  });
});
