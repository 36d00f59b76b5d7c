import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { SimulatedFleet } from '../../src/providers/simulated/fleet';
import { validateReleaseSpec } from '../../src/spec/parse';
import { fastSpec } from '../helpers/specs';
import { sha, uniqueService, waitFor, workerProcessRig } from '../helpers/temporal';

const rig = workerProcessRig('rollout-kill');

test('a worker SIGKILLed during wave 2 changes nothing in the end state', async () => {
  const service = uniqueService('rollout-kill');
  const version = sha(`${service}-v`);
  const { releases, dataDir } = rig;
  const first = rig.startWorker();
  const baking = fastSpec(service, version, { bake: { 'ramp-10': '4s' } }).strategy;
  const spec = validateReleaseSpec({
    ...fastSpec(service, version),
    regions: { r1: {}, r2: { strategy: baking }, r3: { strategy: baking } },
    waves: [['r1'], ['r2', 'r3']],
    rollout: { soak: '1s' },
  });
  const { rolloutId } = await releases.startRollout(spec);
  const r2 = await waitFor('wave 2 baking in r2', async () => {
    const status = await releases.rolloutStatus(rolloutId);
    const releaseId = status.regions.find((r) => r.region === 'r2')?.releaseId;
    return releaseId && (await releases.status(releaseId)).step?.name === 'ramp-10' ? releaseId : null;
  }, 120_000);
  first.kill('SIGKILL');
  await new Promise((resolve) => first.once('exit', resolve));
  assert.equal(first.signalCode, 'SIGKILL');
  assert.equal((await releases.inspect(r2))?.running, true, 'the kill landed while r2 was still in flight');

  rig.startWorker();
  const status = await releases.rolloutResult(rolloutId);
  assert.equal(status.state, 'promoted', status.reason ?? '');
  assert.deepEqual(status.regions.map((r) => [r.region, r.state, r.outcome]), [['r1', 'promoted', 'promoted'], ['r2', 'promoted', 'promoted'], ['r3', 'promoted', 'promoted']]);
  for (const region of ['r1', 'r2', 'r3']) {
    const fleet = new SimulatedFleet({ stateDir: join(dataDir, 'simulated') }).reload(`${service}@${region}`)!;
    assert.deepEqual(fleet.slots, { stable: version, canary: null }, region);
    assert.deepEqual(fleet.routes, { canaryWeight: 0, internalAudience: null }, region);
    const lane = await releases.lane(service, 'production', region);
    assert.equal(lane?.stable.at(-1)?.version, version, region);
  }
  // One release per region, each submitted once: the lane answered any repeated submission as a duplicate.
  const listed = await releases.list({ service });
  assert.equal(listed.length, 3);
});
