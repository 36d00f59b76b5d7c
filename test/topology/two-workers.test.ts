import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { temporal } from '@temporalio/proto';
import { PROJECT_ROOT } from '../../src/paths';
import { SimulatedFleet } from '../../src/providers/simulated/fleet';
import { TASK_QUEUE } from '../../workflows/definitions';
import { fastSpec } from '../helpers/specs';
import { sha, uniqueService, waitFor, workerOutput, workerProcessRig } from '../helpers/temporal';

/*
 * Scaling out is Temporal's job: workers are processes polling one task queue. Two worker processes
 * against one server, as in docker-compose.yml's `worker` service, share the releases; one is killed
 * with SIGKILL midway and the other finishes every release.
 */

// Both workers share one data folder, as real workers share the real machines they deploy to.
const rig = workerProcessRig('two-workers');

/** The SDK's default worker identity: pid@hostname, distinct per process. */
function identityOf(child: ChildProcess): string {
  return `${child.pid}@${hostname()}`;
}

async function pollerIdentities(queue = TASK_QUEUE): Promise<Set<string>> {
  const { pollers } = await rig.connection.workflowService.describeTaskQueue({
    namespace: 'default',
    taskQueue: { name: queue },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  return new Set(pollers.map((p) => p.identity ?? ''));
}

/** Waits until Temporal lists every one of these workers as a poller; fails at once if one exits. */
async function untilPolling(children: ChildProcess[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const child of children) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`worker ${child.pid} exited before polling:\n${workerOutput(child)}`);
    }
    const seen = await pollerIdentities();
    if (children.every((child) => seen.has(identityOf(child)))) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`workers not polling after ${timeoutMs} ms:\n${children.map((child) => workerOutput(child)).join('\n')}`);
}

interface WorkDone {
  /** Identity of each completed workflow task, in history order. */
  workflowTasks: string[];
  /** Identity of each started activity, in history order. */
  activities: string[];
}

async function workDone(workflowId: string): Promise<WorkDone> {
  const history = await rig.client.workflow.getHandle(workflowId).fetchHistory();
  const done: WorkDone = { workflowTasks: [], activities: [] };
  for (const event of history.events ?? []) {
    const completed = event.workflowTaskCompletedEventAttributes?.identity;
    if (completed) done.workflowTasks.push(completed);
    const started = event.activityTaskStartedEventAttributes?.identity;
    if (started) done.activities.push(started);
  }
  return done;
}

test('releases spread over two worker processes, and all finish promoted when one is killed with SIGKILL midway', { timeout: 120_000 }, async (t) => {
  const doomed = rig.startWorker();
  const survivor = rig.startWorker();
  const [doomedId, survivorId] = [identityOf(doomed), identityOf(survivor)];
  // Both poll before the first release, so neither takes everything by being first.
  await untilPolling([doomed, survivor]);

  const bake = { 'canary-internal': '500ms', 'canary-5': '500ms', 'ramp-10': '500ms', 'ramp-50': '500ms', full: '500ms' };
  const started = await Promise.all(
    Array.from({ length: 8 }, async (_, i) => {
      const service = uniqueService('spread');
      const version = sha(`spread-${i}`);
      const { releaseId } = await rig.releases.submit(fastSpec(service, version, { bake, analysis: { interval: '500ms' } }));
      return { service, version, releaseId };
    }),
  );

  // Midway: every release has begun, and at least half are into their canary or beyond.
  await waitFor('the releases midway', async () => {
    const steps = await Promise.all(started.map(async ({ releaseId }) => (await rig.releases.status(releaseId)).step?.name));
    return steps.every((s) => s !== undefined) && steps.filter((s) => s !== 'synthetic' && s !== 'canary-internal').length >= 4;
  }, 60_000, 50);
  const doneBeforeKill = await Promise.all(started.map(({ releaseId }) => workDone(releaseId)));
  doomed.kill('SIGKILL');
  await new Promise((resolve) => doomed.once('exit', resolve));
  assert.equal(doomed.signalCode, 'SIGKILL');

  for (const { releaseId } of started) {
    const result = await rig.releases.result(releaseId);
    assert.equal(result.outcome?.result, 'promoted', `${releaseId}: ${JSON.stringify(result.outcome)}`);
  }

  const doneBefore = new Set(doneBeforeKill.flatMap((d) => [...d.workflowTasks, ...d.activities]));
  assert.ok(doneBefore.has(doomedId), `the worker to be killed had done work before the kill (identities: ${[...doneBefore].join(', ')})`);
  assert.ok(doneBefore.has(survivorId), `the other worker had done work before the kill (identities: ${[...doneBefore].join(', ')})`);

  const done = await Promise.all(started.map(({ releaseId }) => workDone(releaseId)));
  const activitiesBy = (id: string) => done.reduce((n, d) => n + d.activities.filter((a) => a === id).length, 0);
  assert.ok(activitiesBy(doomedId) > 0 && activitiesBy(survivorId) > 0, `activities: killed ${activitiesBy(doomedId)}, survivor ${activitiesBy(survivorId)}`);
  for (const [i, d] of done.entries()) {
    assert.deepEqual(new Set([...d.workflowTasks, ...d.activities].filter((id) => id !== doomedId && id !== survivorId)), new Set(), 'no third worker');
    assert.equal(d.workflowTasks.at(-1), survivorId, `${started[i]!.releaseId} was finished by the surviving worker`);
  }
  const handedOver = done.filter((d) => d.workflowTasks.includes(doomedId) && d.workflowTasks.includes(survivorId)).length;
  assert.ok(handedOver >= 1, 'at least one release was carried on by the other worker after its first one died');
  const tasksBy = (id: string) => done.reduce((n, d) => n + d.workflowTasks.filter((w) => w === id).length, 0);
  t.diagnostic(`killed worker: ${tasksBy(doomedId)} workflow tasks, ${activitiesBy(doomedId)} activities; survivor: ${tasksBy(survivorId)} workflow tasks, ${activitiesBy(survivorId)} activities; ${handedOver} of 8 releases handed over`);

  // The shared fleet ends as each workflow says: the new version in the stable slot, the canary slot empty, no canary traffic.
  for (const { service, version } of started) {
    const fleet = new SimulatedFleet({ stateDir: join(rig.dataDir, 'simulated') }).reload(service)!;
    assert.deepEqual(fleet.slots, { stable: version, canary: null }, service);
    assert.equal(fleet.routes.canaryWeight, 0, service);
    assert.equal(fleet.events.filter((e) => e.action === 'deploy' && e.slot === 'canary').length, 1, `${service}: the canary was started once`);
  }
  survivor.kill('SIGTERM');
  await new Promise((resolve) => survivor.once('exit', resolve));
});

test("the image's worker health check passes while this host's worker polls, and fails for a queue nobody polls", async () => {
  // The very script the Dockerfile writes to /app/healthcheck.cjs.
  const dockerfile = readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8');
  const script = /^COPY <<'EOF' \/app\/healthcheck\.cjs\n([\s\S]*?)^EOF$/m.exec(dockerfile)?.[1];
  assert.ok(script, 'the Dockerfile writes /app/healthcheck.cjs from a heredoc');
  const file = join(rig.dataDir, 'healthcheck.cjs');
  writeFileSync(file, script);

  const worker = rig.startWorker();
  await untilPolling([worker]);
  const check = (queue: string) =>
    spawnSync(process.execPath, [file], {
      env: { PATH: process.env.PATH ?? '', NODE_PATH: join(PROJECT_ROOT, 'node_modules'), RAMPART_ROLE: 'worker', TEMPORAL_ADDRESS: rig.server.address, RAMPART_TASK_QUEUE: queue },
      encoding: 'utf8',
      timeout: 15_000,
    });
  const healthy = check(TASK_QUEUE);
  assert.equal(healthy.status, 0, healthy.stderr);
  const unhealthy = check('nobody-polls-this-queue');
  assert.equal(unhealthy.status, 1);
  assert.match(unhealthy.stderr, /worker unhealthy: no poller@.* on task queue nobody-polls-this-queue/);
  worker.kill('SIGTERM');
  await new Promise((resolve) => worker.once('exit', resolve));
});
