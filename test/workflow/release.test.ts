import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@temporalio/client';
import { CommandRejectedError } from '../../src/temporal/releases';
import { abortSignal, promoteSignal } from '../../workflows/definitions';
import { fastSpec, STABLE } from '../helpers/specs';
import { sha, startRig, uniqueService, waitFor, type TestRig } from '../helpers/temporal';

/** How often each activity type was scheduled in a release's history: the proof that an undo ran once. */
async function activityCounts(client: Client, releaseId: string): Promise<Record<string, number>> {
  const history = await client.workflow.getHandle(releaseId).fetchHistory();
  const counts: Record<string, number> = {};
  for (const event of history.events ?? []) {
    const name = event.activityTaskScheduledEventAttributes?.activityType?.name;
    if (name) counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

const operator = { actor: 'alice', reason: 'testing' };

describe('release workflow on a real Temporal dev server', () => {
  let rig: TestRig;
  before(async () => {
    rig = await startRig();
  });
  after(async () => {
    await rig?.close();
  });

  function fleetOf(service: string) {
    return rig.worker.fleet.service(service);
  }

  test('a release walks all four phases to 100% and retires the old version', async () => {
    const service = uniqueService();
    const version = sha('walk');
    const { releaseId, disposition } = await rig.releases.submit(fastSpec(service, version));
    assert.equal(disposition, 'started');
    const result = await rig.releases.result(releaseId);

    assert.equal(result.state, 'promoted');
    assert.equal(result.outcome?.result, 'promoted');
    assert.deepEqual(
      result.history.filter((t) => t.event === 'step-started').map((t) => t.step),
      ['synthetic', 'canary-internal', 'canary-5', 'ramp-10', 'ramp-50', 'full'],
    );
    const weights = result.history.filter((t) => t.event === 'traffic-moved').map((t) => t.reason);
    assert.deepEqual(weights, ['canary 0%', 'canary 0%, internal users first', 'canary 5%, internal users first', 'canary 10%', 'canary 50%', 'canary 100%']);
    assert.equal(result.loadTests.length, 1);
    assert.equal(result.loadTests[0]!.outcome, 'pass');
    assert.ok(result.loadTests[0]!.stable, 'the load test compared the new version with stable under the same load');
    assert.equal(result.stableVersion, STABLE);
    // The old version is retired: the new one holds the stable slot, the canary slot is empty, all traffic on stable.
    const fleet = fleetOf(service);
    assert.deepEqual(fleet.slots, { stable: version, canary: null });
    assert.deepEqual(fleet.routes, { canaryWeight: 0, internalAudience: null });
    assert.ok(fleet.events.some((e) => e.action === 'deploy' && e.slot === 'stable' && e.version === version));
  });

  test('pause holds the weight through a bake that would otherwise have advanced; resume continues', async () => {
    const service = uniqueService();
    const { releaseId } = await rig.releases.submit(fastSpec(service, sha('pause'), { bake: { 'ramp-10': '1500ms' } }));
    await waitFor('ramp-10', async () => (await rig.releases.status(releaseId)).step?.name === 'ramp-10');
    const paused = await rig.releases.command(releaseId, 'pause', operator);
    assert.equal(paused.state, 'paused');
    assert.equal(paused.pause?.cause, 'operator');

    await new Promise((r) => setTimeout(r, 3_000)); // twice the bake
    const held = await rig.releases.status(releaseId);
    assert.equal(held.state, 'paused');
    assert.equal(held.step?.name, 'ramp-10');
    assert.equal(held.routes.canaryWeight, 10);
    assert.equal(fleetOf(service).routes.canaryWeight, 10);

    const resumed = await rig.releases.command(releaseId, 'resume', { actor: 'bob', reason: 'looks fine' });
    assert.equal(resumed.state, 'running');
    const result = await rig.releases.result(releaseId);
    assert.equal(result.outcome?.result, 'promoted');
    const resumedBy = result.history.find((t) => t.event === 'resumed');
    assert.equal(resumedBy?.actor, 'bob');
    assert.equal(resumedBy?.reason, 'looks fine');
  });

  for (const step of ['synthetic', 'canary-internal', 'canary-5', 'ramp-10', 'ramp-50', 'full']) {
    test(`abort during ${step} returns traffic to stable and runs every undo exactly once`, async () => {
      const service = uniqueService();
      const version = sha(`abort-${step}`);
      const spec = fastSpec(service, version, { bake: { [step]: '1m' } });
      const { releaseId } = await rig.releases.submit(spec);
      await waitFor(`bake of ${step}`, async () => {
        const s = await rig.releases.status(releaseId);
        return s.step?.name === step && s.history.some((t) => t.event === 'traffic-moved' && t.step === step);
      });

      const aborted = await rig.releases.command(releaseId, 'abort', { actor: 'carol', reason: `abort in ${step}` });
      assert.equal(aborted.state, 'aborted');
      assert.equal(aborted.outcome?.actor, 'carol');
      assert.deepEqual(aborted.routes, { canaryWeight: 0, internalAudience: null });

      const fleet = fleetOf(service);
      assert.deepEqual(fleet.routes, { canaryWeight: 0, internalAudience: null });
      assert.deepEqual(fleet.slots, { stable: STABLE, canary: null });
      const counts = await activityCounts(rig.client, releaseId);
      assert.equal(counts.resetRoutes, 1, 'resetRoutes ran once');
      assert.equal(counts.stopCanary, 1, 'stopCanary ran once');
      assert.equal(counts.restoreStable, undefined, 'nothing to restore before full rollout');
      assert.deepEqual(
        aborted.history.filter((t) => t.event === 'undo').map((t) => t.reason),
        ['reset-routes', 'stop-canary'],
      );
    });
  }

  // The judge on noisy simulated traffic (Poisson arrivals, binomial errors, log-normal latency): a
  // healthy version with the same 1% errors as stable promotes; a worse one rolls back on evidence.
  const judged = { 'canary-internal': '2s', 'canary-5': '2s', 'ramp-10': '2s', 'ramp-50': '2s', full: '2s' };

  test('a version as healthy as stable, noise and all, is promoted on evidence', async () => {
    const service = uniqueService();
    const version = sha('healthy-noisy');
    const health = { [STABLE]: { errorRate: 0.01, latencyMs: 40 }, [version]: { errorRate: 0.01, latencyMs: 40 } };
    const { releaseId } = await rig.releases.submit(fastSpec(service, version, { health, bake: judged, analysis: { interval: '500ms' } }));
    const result = await rig.releases.result(releaseId);
    assert.equal(result.outcome?.result, 'promoted', result.outcome?.reason);
    for (const step of Object.keys(judged)) {
      assert.ok(result.history.some((t) => t.event === 'analysis-passed' && t.step === step), `${step} passed on evidence`);
    }
    const errors = result.analysis.at(-1)!.verdicts.find((v) => v.check === 'error-rate')!;
    assert.ok(errors.canary!.events > 0, 'the canary really had errors, like stable');
  });

  test('+5 points of errors over stable rolls back in the first judged step, with the evidence', async () => {
    const service = uniqueService();
    const version = sha('errors-plus-5');
    const health = { [STABLE]: { errorRate: 0.01 }, [version]: { errorRate: 0.06 } };
    const { releaseId } = await rig.releases.submit(fastSpec(service, version, { health, bake: judged, load: { maxIncreaseOverStable: 0.5 }, analysis: { interval: '500ms' } }));
    const result = await rig.releases.result(releaseId);
    assert.equal(result.outcome?.result, 'rolled-back');
    assert.match(result.outcome!.reason, /analysis failed in canary-internal: error-rate: canary \d+(\.\d+)?% \(\d+\/\d+\) exceeds stable \d(\.\d+)?% \(\d+\/\d+\) by more than 2%/);
    const verdict = result.analysis.at(-1)!.verdicts.find((v) => v.check === 'error-rate')!;
    assert.equal(verdict.outcome, 'fail');
    assert.ok(verdict.interval![0] > 0.02, 'the lower bound of the difference is above the margin');
    assert.equal(result.step?.name, 'canary-internal');
    assert.deepEqual(fleetOf(service).slots, { stable: STABLE, canary: null });
    assert.deepEqual(fleetOf(service).routes, { canaryWeight: 0, internalAudience: null });
  });

  test('a version twice as slow as stable rolls back on latency, not errors', async () => {
    const service = uniqueService();
    const version = sha('twice-slow');
    const health = { [STABLE]: { latencyMs: 40 }, [version]: { latencyMs: 80 } };
    const { releaseId } = await rig.releases.submit(
      fastSpec(service, version, { health, bake: judged, load: { maxLatencyRatioOverStable: 100 }, analysis: { interval: '500ms' } }),
    );
    const result = await rig.releases.result(releaseId);
    assert.equal(result.outcome?.result, 'rolled-back');
    assert.match(result.outcome!.reason, /latency-p95: canary p95 \d+ ms: .* slower than \d+ ms \(1\.25x stable's p95/);
    assert.ok(!result.history.some((t) => t.event === 'step-started' && t.step === 'ramp-50'), 'caught before ramp-50');
  });

  test('low traffic extends the bake up to its limit, then pauses with the reason; it never promotes or rolls back', async () => {
    const service = uniqueService();
    const version = sha('trickle');
    // 2 requests a second, 5% internal: a handful of canary requests in the whole bake.
    const { releaseId } = await rig.releases.submit(
      fastSpec(service, version, { trafficPerSecond: 2, bake: judged, load: { rate: 5_000 }, analysis: { interval: '500ms', maxBakeFactor: 2 } }),
    );
    const paused = await waitFor('a pause for insufficient evidence', async () => {
      const s = await rig.releases.status(releaseId);
      return s.pause?.cause === 'inconclusive' ? s : null;
    }, 60_000);
    assert.equal(paused.step?.name, 'canary-internal');
    assert.match(paused.pause!.reason, /not enough evidence after 4(\.\d)? s \(bake 2 s, extended up to 4 s\)/);
    // At 2 requests a second, 5% of them internal, the canary sees none or a handful: the reason says which.
    assert.match(
      paused.pause!.reason,
      /error-rate: (insufficient traffic: \d+ canary requests \(only internal users reach the canary in this step\); about \d+ needed|no canary traffic: no internal users reached the canary yet)/,
    );
    assert.ok(paused.analysis.every((run) => run.outcome === 'inconclusive'), 'never a pass, never a failure');
    assert.equal(fleetOf(service).routes.canaryWeight, 0);
    // A resume gives a fresh allowance; still too little traffic, so it pauses again rather than advancing.
    await rig.releases.command(releaseId, 'resume', operator);
    await waitFor('second pause', async () => (await rig.releases.status(releaseId)).history.filter((t) => t.event === 'paused').length === 2, 60_000);
    const again = await rig.releases.status(releaseId);
    assert.equal(again.step?.name, 'canary-internal');
    assert.equal(again.outcome, null);
    await rig.releases.command(releaseId, 'abort', operator);
  });

  test('no data is never a pass: the release pauses and the reason says no data', async () => {
    const service = uniqueService();
    const version = sha('nodata');
    const { releaseId } = await rig.releases.submit(fastSpec(service, version, { health: { [version]: { noData: true } }, bake: judged, analysis: { interval: '500ms', maxBakeFactor: 1 } }));
    const paused = await waitFor('inconclusive pause', async () => {
      const s = await rig.releases.status(releaseId);
      return s.pause?.cause === 'inconclusive' ? s : null;
    }, 60_000);
    assert.equal(paused.step?.name, 'canary-internal');
    assert.match(paused.pause!.reason, /no (latency )?data for the canary|no canary traffic/);
    await rig.releases.command(releaseId, 'abort', operator);
  });

  test('a step that keeps failing exhausts its retries and compensates', async () => {
    const service = uniqueService();
    const version = sha('broken-deploy');
    const { releaseId } = await rig.releases.submit(fastSpec(service, version, { health: { [version]: { deployFailures: 100 } } }));
    const result = await rig.releases.result(releaseId);
    assert.equal(result.outcome?.result, 'rolled-back');
    assert.match(result.outcome!.reason, /step synthetic failed after retries: deployCanary: simulated deploy/);
    assert.equal(fleetOf(service).deployAttempts[version], 5, 'five attempts, the retry policy');
    const counts = await activityCounts(rig.client, releaseId);
    assert.equal(counts.stopCanary, 1);
    assert.deepEqual(fleetOf(service).slots, { stable: STABLE, canary: null });
  });

  test('a load test that shows the new version slower than stable stops the release before any user traffic reaches it', async () => {
    const service = uniqueService();
    const version = sha('slow');
    const { releaseId } = await rig.releases.submit(fastSpec(service, version, { health: { [STABLE]: { latencyMs: 20 }, [version]: { latencyMs: 200 } } }));
    const result = await rig.releases.result(releaseId);
    assert.equal(result.outcome?.result, 'rolled-back');
    assert.match(result.outcome!.reason, /load test failed in synthetic: load-latency-p95: canary p95 \d+ ms/);
    assert.equal(result.loadTests[0]?.outcome, 'fail');
    assert.ok(!fleetOf(service).events.some((e) => e.action === 'set-routes' && (e.routes?.canaryWeight ?? 0) > 0));
  });

  test('abort signals racing promote signals: the abort wins', async () => {
    const service = uniqueService();
    const { releaseId } = await rig.releases.submit(fastSpec(service, sha('race'), { bake: { 'canary-5': '1m' } }));
    await waitFor('canary-5', async () => (await rig.releases.status(releaseId)).step?.name === 'canary-5');
    const handle = rig.client.workflow.getHandle(releaseId);
    await Promise.all([handle.signal(promoteSignal, operator), handle.signal(abortSignal, operator), handle.signal(promoteSignal, operator)]);
    const result = await rig.releases.result(releaseId);
    assert.equal(result.outcome?.result, 'aborted');
    assert.deepEqual(fleetOf(service).slots, { stable: STABLE, canary: null });
    await assert.rejects(rig.releases.command(releaseId, 'promote', operator), CommandRejectedError);
  });

  test('a command that makes no sense now is refused with the reason', async () => {
    const service = uniqueService();
    const { releaseId } = await rig.releases.submit(fastSpec(service, sha('refuse'), { bake: { 'ramp-10': '1m' } }));
    await waitFor('ramp-10', async () => (await rig.releases.status(releaseId)).step?.name === 'ramp-10');
    await assert.rejects(rig.releases.command(releaseId, 'resume', operator), /not paused \(it is running\)/);
    await assert.rejects(rig.releases.command(releaseId, 'approve', operator), /not waiting for approval/);
    await rig.releases.command(releaseId, 'pause', operator);
    await assert.rejects(rig.releases.command(releaseId, 'pause', operator), /already paused/);
    const promoted = await rig.releases.command(releaseId, 'promote', operator);
    assert.equal(promoted.state, 'running', 'promote lifts the pause');
    const result = await rig.releases.result(releaseId);
    assert.equal(result.outcome?.result, 'promoted');
    assert.ok(result.history.some((t) => t.event === 'bake-skipped' && t.step === 'ramp-10'));
    await assert.rejects(rig.releases.command(releaseId, 'abort', operator), /has finished/);
  });

  test('a manual approval gate holds the traffic until approved', async () => {
    const service = uniqueService();
    const { releaseId } = await rig.releases.submit(fastSpec(service, sha('gate'), { approval: ['ramp-50'] }));
    const waiting = await waitFor('the gate', async () => {
      const s = await rig.releases.status(releaseId);
      return s.state === 'awaiting-approval' ? s : null;
    });
    assert.equal(waiting.step?.name, 'ramp-50');
    assert.equal(waiting.routes.canaryWeight, 10);
    await assert.rejects(rig.releases.command(releaseId, 'promote', operator), /approve it instead/);
    await rig.releases.command(releaseId, 'approve', { actor: 'dba', reason: 'migration checked' });
    const result = await rig.releases.result(releaseId);
    assert.equal(result.outcome?.result, 'promoted');
    assert.equal(result.history.find((t) => t.event === 'approved')?.actor, 'dba');
  });

  test('cancelling the workflow compensates like an abort', async () => {
    const service = uniqueService();
    const { releaseId } = await rig.releases.submit(fastSpec(service, sha('cancel'), { bake: { 'ramp-50': '1m' } }));
    await waitFor('ramp-50', async () => (await rig.releases.status(releaseId)).routes.canaryWeight === 50);
    await rig.client.workflow.getHandle(releaseId).cancel();
    const result = await rig.releases.result(releaseId);
    assert.equal(result.outcome?.result, 'cancelled');
    assert.deepEqual(fleetOf(service).routes, { canaryWeight: 0, internalAudience: null });
    assert.deepEqual(fleetOf(service).slots, { stable: STABLE, canary: null });
  });

  test('a new version mid-release supersedes the one in flight, which rolls back cleanly first', async () => {
    const service = uniqueService();
    const first = sha('first');
    const second = sha('second');
    const a = await rig.releases.submit(fastSpec(service, first, { bake: { 'ramp-10': '1m' } }));
    await waitFor('first at ramp-10', async () => (await rig.releases.status(a.releaseId)).routes.canaryWeight === 10);

    const b = await rig.releases.submit(fastSpec(service, second));
    assert.equal(b.disposition, 'queued');
    assert.equal(b.supersedes, a.releaseId);

    const firstResult = await rig.releases.result(a.releaseId);
    assert.equal(firstResult.outcome?.result, 'superseded');
    assert.match(firstResult.outcome!.reason, new RegExp(`superseded by ${second}`));
    const secondResult = await waitFor('second release', async () => rig.releases.result(b.releaseId));
    assert.equal(secondResult.outcome?.result, 'promoted');
    // The second started only after the first had rolled back: its deploy comes after the first's stop.
    const events = fleetOf(service).events;
    const firstStopped = events.findIndex((e) => e.action === 'stop' && e.version === first);
    const secondDeployed = events.findIndex((e) => e.action === 'deploy' && e.slot === 'canary' && e.version === second);
    assert.ok(firstStopped >= 0 && secondDeployed > firstStopped, 'second deployed after first stopped');
    assert.deepEqual(fleetOf(service).slots, { stable: second, canary: null });
  });

  test('a new version arriving as the previous release finishes starts without harm to the lane', async () => {
    const service = uniqueService();
    const first = await rig.releases.submit(fastSpec(service, sha('just-done')));
    await rig.releases.result(first.releaseId);
    // The release is over, but its completion may not have reached the lane yet: the lane must cope.
    const second = await rig.releases.submit(fastSpec(service, sha('right-after')));
    assert.notEqual(second.disposition, 'duplicate');
    const result = await waitFor('second release', async () => rig.releases.result(second.releaseId));
    assert.equal(result.outcome?.result, 'promoted');
    const lane = await rig.releases.lane(service, 'production');
    assert.ok(lane, 'the lane is still running');
    assert.deepEqual(lane.recent.map((r) => r.releaseId), [first.releaseId, second.releaseId]);
  });

  test('a duplicate request returns the existing release and never starts a second', async () => {
    const service = uniqueService();
    const version = sha('dup');
    const spec = fastSpec(service, version, { bake: { 'canary-5': '1m' } });
    const answers = await Promise.all([rig.releases.submit(spec), rig.releases.submit(spec), rig.releases.submit(spec)]);
    assert.equal(new Set(answers.map((a) => a.releaseId)).size, 1);
    assert.deepEqual(answers.map((a) => a.disposition).sort(), ['duplicate', 'duplicate', 'started']);
    await rig.releases.command(answers[0]!.releaseId, 'abort', operator);
    // Even after the release ended, the same version is a duplicate.
    const later = await rig.releases.submit(spec);
    assert.equal(later.disposition, 'duplicate');
    const runs = await waitFor('visibility', async () => {
      const list = await rig.releases.list({ service });
      return list.length > 0 && list.every((r) => r.status !== 'RUNNING') ? list : null;
    });
    assert.equal(runs.length, 1);
    assert.equal(runs[0]!.outcome, 'aborted');
  });
});
