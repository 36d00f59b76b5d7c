import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { HaproxyRouter } from '../../src/providers/traffic/haproxy';
import { STABLE_ONLY } from '../../src/providers/traffic/router';
import type { LocalStack, StackService } from '../../src/stack/local-stack';
import { sha, waitFor, type TestRig } from '../helpers/temporal';
import { allocateService, Cleanups, demoDeployer, portOpen, probe, removeService, startRigAndStack, straightSpec } from './helpers';

// Issue 13's instant rollback on the real stack: the demo service behind a real HAProxy, released by a real
// worker on a Temporal dev server. After v1 then v2 are promoted with a warm window, a rollback inside it is a
// route switch: the very process that served v1 before v2 serves it again, and v2's process is stopped.

const cleanups = new Cleanups();
let rig: TestRig;
let stack: LocalStack;
let service: Required<StackService>;

before(async () => {
  const workDir = await mkdtemp(path.join(tmpdir(), 'rampart-rollback-e2e-'));
  cleanups.add('work dir', () => rm(workDir, { recursive: true, force: true }));
  service = await allocateService('e2e-warm');
  cleanups.add(`instances of ${service.name}`, () => removeService(service));
  ({ rig, stack } = await startRigAndStack(cleanups, { dir: path.join(workDir, 'stack'), services: [service], components: ['haproxy'] }));
});

after(() => cleanups.run());

/** Which versions answered `requests` requests through HAProxy's frontend. */
async function versionsServing(requests = 40): Promise<string[]> {
  return Object.keys((await probe(stack.frontendUrl, service.name, requests)).byVersion).sort();
}

test('after v1 then v2 are promoted, a rollback inside the warm window is a route switch: the same v1 process serves again', { timeout: 120_000 }, async () => {
  const [v1, v2] = [sha(`${service.name}-v1`), sha(`${service.name}-v2`)];
  const deployer = demoDeployer(service, {});
  const router = new HaproxyRouter({ socket: stack.haproxySocket });

  const first = await rig.releases.submit(straightSpec(stack, service, v1, { warmWindow: '10m' }));
  assert.equal((await rig.releases.result(first.releaseId)).outcome?.result, 'promoted', 'v1, the first version, has nothing to keep warm');
  const v1Process = await deployer.instance(service.name, 'stable');
  assert.equal(v1Process?.version, v1);

  const second = await rig.releases.submit(straightSpec(stack, service, v2, { warmWindow: '10m' }));
  await waitFor('v2 at 100% with v1 warm', async () => (await rig.releases.status(second.releaseId)).activity === 'warm', 60_000);
  assert.deepEqual(await versionsServing(), [v2], 'users reach v2 only');
  assert.deepEqual(await router.getRoutes(service.name), { canaryWeight: 100, internalAudience: null });
  assert.equal((await deployer.instance(service.name, 'stable'))?.pid, v1Process!.pid, 'v1 still runs, warm, at weight 0');
  const v2Process = await deployer.instance(service.name, 'canary');
  assert.equal(v2Process?.version, v2);

  const answer = await rig.releases.rollback(service.name, stack.environment, { actor: 'e2e', reason: 'v2 is bad' });
  assert.equal(answer.to, v1);
  const result = await waitFor('the rollback to finish', async () => rig.releases.result(answer.releaseId!), 60_000);
  assert.equal(result.outcome?.result, 'rolled-back-to');

  const v1After = await deployer.instance(service.name, 'stable');
  assert.equal(v1After?.pid, v1Process!.pid, 'the same v1 process: no process started');
  assert.equal(v1After?.startedAt, v1Process!.startedAt);
  assert.equal(await deployer.instance(service.name, 'canary'), null, 'v2 stopped');
  assert.equal(await portOpen(service.canaryPort), false);
  assert.deepEqual(await router.getRoutes(service.name), STABLE_ONLY);
  assert.deepEqual(await versionsServing(), [v1], 'users reach v1 only');
});
