import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { SimulatedFleet } from '../../src/providers/simulated/fleet';
import { fastSpec, STABLE } from '../helpers/specs';
import { sha, uniqueService, waitFor, workerProcessRig } from '../helpers/temporal';

const rig = workerProcessRig('kill');

test('a worker killed with SIGKILL mid-release is replaced and the release finishes with the right end state', async () => {
  const { releases, dataDir } = rig;
  const service = uniqueService('kill');
  const version = sha('survivor');
  const first = rig.startWorker();
  const bake = { 'canary-internal': '1s', 'canary-5': '1s', 'ramp-10': '2s', 'ramp-50': '1s', full: '1s' };
  const { releaseId } = await releases.submit(fastSpec(service, version, { bake, analysis: { interval: '200ms' } }));

  await waitFor('the release at ramp-10', async () => (await releases.status(releaseId)).step?.name === 'ramp-10', 60_000);
  first.kill('SIGKILL');
  await new Promise((resolve) => first.once('exit', resolve));
  assert.equal(first.signalCode, 'SIGKILL');

  rig.startWorker();
  const result = await releases.result(releaseId);
  assert.equal(result.outcome?.result, 'promoted');

  // The fleet as the workers left it (its state lives in the data folder, like real machines would).
  const fleet = new SimulatedFleet({ stateDir: join(dataDir, 'simulated') }).reload(service)!;
  assert.deepEqual(fleet.slots, { stable: version, canary: null });
  assert.deepEqual(fleet.routes, { canaryWeight: 0, internalAudience: null });
  const canaryDeploys = fleet.events.filter((e) => e.action === 'deploy' && e.slot === 'canary');
  assert.equal(canaryDeploys.length, 1, 'the canary was started once');
  // Weights only ever went up until the final move back to the (new) stable slot.
  const weights = fleet.events.filter((e) => e.action === 'set-routes').map((e) => e.routes!.canaryWeight);
  const forward = weights.slice(0, -1);
  assert.deepEqual(forward, [...forward].sort((a, b) => a - b), `weights in order: ${weights.join(',')}`);
  assert.equal(weights.at(-1), 0);
  assert.notEqual(result.stableVersion, null);
  assert.equal(result.stableVersion, STABLE);
});

test('a worker SIGKILLed during a rollback is replaced and traffic is back on stable within 30 s', async () => {
  const { releases, dataDir } = rig;
  const service = uniqueService('kill-undo');
  const version = sha('faulty-undo');
  // Only the worker this test kills may run the undo: stop the ones earlier tests left polling.
  for (const worker of rig.workers.filter((w) => w.exitCode === null && w.signalCode === null)) {
    worker.kill('SIGKILL');
    await new Promise((resolve) => worker.once('exit', resolve));
  }
  const first = rig.startWorker();
  // Every fleet call takes 2 s, so an undo is in flight for a while: the kill lands inside one.
  const health = { [version]: { errorRate: 0.3 } };
  const spec = fastSpec(service, version, { health, providerLatencyMs: 2_000, bake: { 'canary-internal': '30s' }, load: { maxIncreaseOverStable: 1 }, analysis: { interval: '1s' } });
  const { releaseId } = await releases.submit(spec);
  // Kill while an undo is running on the first worker: the server lists it as a started pending activity.
  const handle = rig.client.workflow.getHandle(releaseId);
  const running = await waitFor('an undo running on the first worker', async () => {
    const description = await handle.describe();
    const pending = description.raw.pendingActivities ?? [];
    // Started less than a second ago by the worker's clock: well inside its 2 s call, not about to complete.
    const started = (a: (typeof pending)[number]) => Number(a.lastStartedTime?.seconds ?? 0) * 1_000 + Math.round((a.lastStartedTime?.nanos ?? 0) / 1e6);
    return pending.find((a) => ['resetRoutes', 'stopCanary'].includes(a.activityType?.name ?? '') && String(a.state) !== '1' && a.lastStartedTime && Date.now() - started(a) < 1_000)?.activityType?.name;
  }, 120_000, 20);
  first.kill('SIGKILL');
  await new Promise((resolve) => first.once('exit', resolve));
  const killedAt = Date.now();

  rig.startWorker();
  const fleetFile = () => new SimulatedFleet({ stateDir: join(dataDir, 'simulated') }).reload(service);
  await waitFor('traffic back on stable', async () => {
    const fleet = fleetFile();
    return fleet && fleet.routes.canaryWeight === 0 && fleet.routes.internalAudience === null && fleet.slots.canary === null;
  }, 30_000, 100);
  const safeAfterMs = Date.now() - killedAt;
  assert.ok(safeAfterMs < 30_000, `safe ${safeAfterMs} ms after the kill`);

  const result = await releases.result(releaseId);
  assert.equal(result.outcome?.result, 'rolled-back');
  // Where the kill landed: an undo attempt was lost with the worker and retried on the new one.
  const history = await rig.client.workflow.getHandle(releaseId).fetchHistory();
  const undoAttempts = (history.events ?? [])
    .filter((e) => e.activityTaskStartedEventAttributes)
    .map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 1);
  assert.ok(undoAttempts.some((attempt) => attempt >= 2), `the ${running} attempt lost with the worker was retried (attempts ${undoAttempts.join(',')})`);
});
