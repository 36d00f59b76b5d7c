import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { SimulatedFleet } from '../../src/providers/simulated/fleet';
import { validateReleaseSpec } from '../../src/spec/parse';
import type { ReleaseSpec } from '../../src/spec/release-spec';
import { sha, uniqueService, waitFor, workerProcessRig } from '../helpers/temporal';

const rig = workerProcessRig('rollback-kill');

/** Straight to 100%, nothing judged; every fleet call takes a second, so a rollback runs long enough to be hit. */
function slowSpec(service: string, version: string, warmWindow = '0s'): ReleaseSpec {
  return validateReleaseSpec({
    service,
    version,
    requestedBy: 'kill-test',
    target: { type: 'simulated', latencyMs: 1_000 },
    strategy: { steps: [{ name: 'full', phase: 'full', weight: 100, analysis: false }] },
    rollback: { warmWindow },
  });
}

test('a worker SIGKILLed mid-rollback leaves all traffic on v1, and the rollback finishes on another worker', async () => {
  const { releases } = rig;
  const service = uniqueService('rb-kill');
  const [v1, v2] = [sha(`${service}-1`), sha(`${service}-2`)];
  const first = rig.startWorker();
  for (const version of [v1, v2]) {
    const { releaseId } = await releases.submit(slowSpec(service, version));
    assert.equal((await releases.result(releaseId)).outcome?.result, 'promoted');
  }
  await waitFor('the lane to know v2 stable', async () => (await releases.lane(service, 'production'))?.stable.at(-1)?.version === v2, 30_000);

  const answer = await releases.rollback(service, 'production', { actor: 'olga', reason: 'v2 is bad' });
  // Kill while v1 replaces v2 in the stable slot: all traffic is on v1 in the canary slot by then.
  const handle = rig.client.workflow.getHandle(answer.releaseId!);
  await waitFor('promoteStable running on the first worker', async () => {
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    return pending.some((a) => a.activityType?.name === 'promoteStable' && a.lastStartedTime);
  }, 60_000, 20);
  first.kill('SIGKILL');
  await new Promise((resolve) => first.once('exit', resolve));

  rig.startWorker();
  const result = await releases.result(answer.releaseId!);
  assert.equal(result.outcome?.result, 'rolled-back-to');

  const fleet = new SimulatedFleet({ stateDir: join(rig.dataDir, 'simulated') }).reload(service)!;
  assert.deepEqual(fleet.slots, { stable: v1, canary: null });
  assert.deepEqual(fleet.routes, { canaryWeight: 0, internalAudience: null });
  // From the moment v1 took all traffic, users only ever reached v1, across the kill.
  const timeline = fleet.timeline ?? [];
  // The last such moment: v1's own release went through the canary slot at 100% too.
  const switched = timeline.length - 1 - [...timeline].reverse().findIndex((e) => e.canary === v1 && e.canaryWeight === 100);
  assert.ok(switched < timeline.length, 'v1 took all traffic in the canary slot');
  for (const entry of timeline.slice(switched)) {
    const serving = entry.canaryWeight === 100 ? entry.canary : entry.canaryWeight === 0 ? entry.stable : `${entry.stable}+${entry.canary}`;
    assert.equal(serving, v1, `at ${new Date(entry.at).toISOString()}: ${JSON.stringify(entry)}`);
  }
  // Where the kill landed: the promoteStable attempt lost with the worker was retried on the new one.
  const history = await handle.fetchHistory();
  const scheduled = new Map<string, string>();
  for (const e of history.events ?? []) {
    if (e.activityTaskScheduledEventAttributes) scheduled.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '');
  }
  const retried = (history.events ?? []).filter(
    (e) => e.activityTaskStartedEventAttributes && (e.activityTaskStartedEventAttributes.attempt ?? 1) >= 2 && scheduled.get(String(e.activityTaskStartedEventAttributes.scheduledEventId)) === 'promoteStable',
  );
  assert.equal(retried.length, 1, 'promoteStable was retried once');
});

test('a worker SIGKILLed while a release switches back to its warm instance leaves traffic on a serving version, and the rollback arrives', async () => {
  const { releases } = rig;
  const service = uniqueService('rb-kill-warm');
  const [v1, v2] = [sha(`${service}-1`), sha(`${service}-2`)];
  for (const worker of rig.workers) if (worker.exitCode === null) worker.kill('SIGKILL');
  const first = rig.startWorker();
  const { releaseId: v1Release } = await releases.submit(slowSpec(service, v1));
  assert.equal((await releases.result(v1Release)).outcome?.result, 'promoted');
  const { releaseId: v2Release } = await releases.submit(slowSpec(service, v2, '10m'));
  await waitFor('v2 at 100% with v1 warm', async () => (await releases.status(v2Release)).activity === 'warm', 60_000);

  const answer = await releases.rollback(service, 'production', { actor: 'olga', reason: 'v2 is bad' });
  // Kill while the release moves traffic back to the warm v1 (each fleet call takes a second).
  const handle = rig.client.workflow.getHandle(v2Release);
  await waitFor('the switch back running on the first worker', async () => {
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    return pending.some((a) => a.activityType?.name === 'setRoutes' && a.lastStartedTime);
  }, 60_000, 20);
  first.kill('SIGKILL');
  await new Promise((resolve) => first.once('exit', resolve));

  rig.startWorker();
  const v2Result = await releases.result(v2Release);
  assert.ok(v2Result.history.some((t) => t.event === 'switched-to-warm'));
  const result = await waitFor('the rollback to arrive', async () => releases.result(answer.releaseId!), 60_000);
  assert.equal(result.outcome?.result, 'rolled-back-to');

  const fleet = new SimulatedFleet({ stateDir: join(rig.dataDir, 'simulated') }).reload(service)!;
  assert.deepEqual(fleet.slots, { stable: v1, canary: null });
  assert.deepEqual(fleet.routes, { canaryWeight: 0, internalAudience: null });
  // From v2 taking all traffic on, every moment served v2 alone or v1 alone: never a slot with nothing in it.
  const timeline = fleet.timeline ?? [];
  const promoted = timeline.findIndex((e) => e.canary === v2 && e.canaryWeight === 100);
  assert.ok(promoted >= 0, 'v2 took all traffic in the canary slot');
  for (const entry of timeline.slice(promoted)) {
    const serving = entry.canaryWeight === 100 ? entry.canary : entry.canaryWeight === 0 ? entry.stable : null;
    assert.ok(serving === v2 || serving === v1, `at ${new Date(entry.at).toISOString()}: ${JSON.stringify(entry)}`);
  }
  assert.equal(timeline.at(-1)?.stable, v1);
});
