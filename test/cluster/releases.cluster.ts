// Rampart on a real Temporal cluster: PostgreSQL, the four Temporal services as separate processes, two workers and
// two API replicas behind HAProxy, brought up once by src/cluster (what `scripts/cluster.ts up` runs).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { status as clusterStatus } from '../../src/cluster/cluster';
import { HaproxyRouter } from '../../src/providers/traffic/haproxy';
import { STABLE_ONLY } from '../../src/providers/traffic/router';
import { freeStackPorts, startLocalStack, type LocalStack, type StackService } from '../../src/stack/local-stack';
import type { DoraFigures } from '../../src/engine/dora';
import type { DrillResult } from '../../src/engine/drill';
import { call, TOKENS } from '../api/helpers';
import { allocateService, Cleanups, DEMO_COMMAND, demoDeployer, HEALTHY, INTERNAL, movedWeights, removeService, TrafficLoop } from '../e2e/helpers';
import { sha, uniqueService, waitFor } from '../helpers/temporal';
import { finished, releaseStatus, simulatedRelease, startClusterRig, submit, type ClusterRig } from './helpers';

const cleanups = new Cleanups();
let rig: ClusterRig;
let stack: LocalStack;
let demo: Required<StackService>;
/** The demo's stable and next versions, both as healthy (no errors, 40 ms). */
let versions: { stable: string; next: string };
const behaviour = () => ({ [versions.stable]: HEALTHY, [versions.next]: HEALTHY });

before(async () => {
  // The real local stack (HAProxy, Prometheus, Alertmanager) for one demo service, registered in a specs folder the
  // cluster's workers and API replicas read at start: the e2e release goes through them like any other.
  const work = mkdtempSync(join(tmpdir(), 'rampart-cluster-e2e-'));
  cleanups.add('work dir', () => rmSync(work, { recursive: true, force: true }));
  demo = await allocateService('cle2e');
  cleanups.add('demo instances', () => removeService(demo));
  versions = { stable: sha(`${demo.name}-stable`), next: sha(`${demo.name}-next`) };
  stack = await startLocalStack({ dir: join(work, 'stack'), services: [demo], ports: await freeStackPorts(), alertWebhookToken: randomBytes(16).toString('hex'), scrapeInterval: '1s' });
  cleanups.add('stack', () => stack.stop());
  const specs = join(work, 'specs');
  mkdirSync(specs);
  writeFileSync(
    join(specs, `${demo.name}.yaml`),
    stringify({
      spec: {
        environment: stack.environment,
        target: {
          type: 'local',
          command: DEMO_COMMAND,
          stablePort: demo.stablePort,
          canaryPort: demo.canaryPort,
          haproxySocket: stack.haproxySocket,
          prometheusUrl: stack.prometheusUrl,
          env: { DEMO_BEHAVIOUR: JSON.stringify(behaviour()) },
        },
        strategy: {
          steps: [
            { name: 'synthetic', phase: 'synthetic', weight: 0, analysis: false, load: { rate: 40, connections: 4, duration: '2s', paths: ['/'] } },
            { name: 'canary-20', phase: 'canary', weight: 20, bake: '3s', internalAudience: INTERNAL },
            { name: 'ramp-50', phase: 'ramp', weight: 50, bake: '3s' },
            { name: 'full', phase: 'full', weight: 100, bake: '2s' },
          ],
        },
        analysis: { interval: '1s', maxBakeFactor: 30 },
        // No warm window: the test checks the layout a finished promotion leaves (one version, in the stable slot).
        rollback: { warmWindow: 0 },
      },
    }),
  );
  rig = await startClusterRig({ env: { RAMPART_SPECS_DIR: specs } });
  cleanups.add('cluster', () => rig.close());
});
after(() => cleanups.run(120_000));

describe('the cluster', () => {
  test('status shows every process ready, each Temporal service in a process of its own', async () => {
    const list = await clusterStatus(rig.cluster.dir);
    assert.deepEqual(
      list.map((s) => s.name),
      ['postgres', 'temporal-frontend', 'temporal-history', 'temporal-matching', 'temporal-worker', 'worker-1', 'worker-2', 'api-1', 'api-2', 'api-lb'],
    );
    for (const s of list) assert.ok(s.ready, `${s.name} is not ready (running: ${s.running})`);
    assert.equal(new Set(list.map((s) => s.pid)).size, list.length, 'one process each');
    const system = await rig.connection.workflowService.getSystemInfo({});
    assert.equal(system.serverVersion, '1.32.0');
    const shards = await rig.connection.workflowService.getClusterInfo({});
    assert.equal(shards.historyShardCount, rig.cluster.state.shards);
    assert.match(shards.persistenceStore ?? '', /postgres/);
  });
});

describe('releases through the API replicas', () => {
  test('a release started through HAProxy is seen by both replicas and is promoted', async () => {
    const service = uniqueService('cl');
    const version = sha(`${service}-1`);
    const started = await submit(rig.cluster.apiUrl, simulatedRelease(service, version));
    assert.equal(started.status, 201, JSON.stringify(started.body));
    assert.equal(started.body.disposition, 'started');
    for (const replica of rig.cluster.apiReplicaUrls) assert.equal((await releaseStatus(replica, started.body.releaseId)).version, version);
    const done = await finished(rig.cluster.apiUrl, started.body.releaseId);
    assert.equal(done.outcome?.result, 'promoted', done.outcome?.reason);
    const listed = await waitFor('the release in SQL visibility', async () => {
      const answer = await call<{ releases: { releaseId: string }[] }>(rig.cluster.apiUrl, 'GET', `/v1/releases?service=${service}`, { token: TOKENS.viewer.token });
      return answer.body.releases.length === 1 ? answer.body.releases : null;
    });
    assert.equal(listed[0]!.releaseId, started.body.releaseId);
  });

  test('duplicates and supersede across replicas: one lane decides, whichever replica is asked', async () => {
    const [a, b] = rig.cluster.apiReplicaUrls as [string, string];
    const service = uniqueService('cl');
    const v1 = sha(`${service}-1`);
    const first = await submit(a, simulatedRelease(service, v1, { bake: '60s' }));
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const again = await submit(b, simulatedRelease(service, v1, { bake: '60s' }));
    assert.equal(again.status, 200);
    assert.deepEqual([again.body.disposition, again.body.releaseId], ['duplicate', first.body.releaseId]);

    const v2 = sha(`${service}-2`);
    const second = await submit(b, simulatedRelease(service, v2, { bake: '1s' }));
    assert.equal(second.status, 202, JSON.stringify(second.body));
    assert.deepEqual([second.body.disposition, second.body.supersedes], ['queued', first.body.releaseId]);

    // The same new version sent to both replicas at once is started (or queued) once, and a duplicate once.
    const v3 = sha(`${service}-3`);
    const both = await Promise.all([submit(a, simulatedRelease(service, v3, { bake: '1s' })), submit(b, simulatedRelease(service, v3, { bake: '1s' }))]);
    const dispositions = both.map((s) => s.body.disposition).sort();
    assert.equal(dispositions.filter((d) => d === 'duplicate').length, 1, JSON.stringify(both.map((s) => s.body)));
    assert.equal(both[0]!.body.releaseId, both[1]!.body.releaseId);

    assert.equal((await finished(a, first.body.releaseId)).outcome?.result, 'superseded');
    // v2 was queued and then replaced in the queue by v3, which runs to the end.
    const last = await finished(b, both[0]!.body.releaseId);
    assert.equal(last.outcome?.result, 'promoted', last.outcome?.reason);
    const runs = await rig.releases.list({ service });
    assert.deepEqual(runs.filter((r) => r.version === v3).length, 1, 'v3 ran once');
    assert.ok(runs.every((r) => r.version !== v2) || runs.filter((r) => r.version === v2).length === 1, 'v2 ran at most once');
  });
});

describe('drills and DORA on the cluster', () => {
  test('a drill schedule fires from the Temporal worker service and its result is a pass', async () => {
    const service = uniqueService('cldrill');
    const created = await call(rig.cluster.apiUrl, 'POST', '/v1/drills', {
      token: TOKENS.operator.token,
      body: {
        service,
        spec: { target: { type: 'simulated' }, strategy: { steps: [{ name: 'canary', phase: 'canary', weight: 20, bake: '2s' }, { name: 'full', phase: 'full', weight: 100 }] }, analysis: { interval: '200ms' } },
        fault: { errorRate: 0.5 },
        every: '2s',
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    try {
      const [result] = await waitFor(
        'a drill result',
        async () => {
          const answer = await call<{ results: DrillResult[] }>(rig.cluster.apiUrl, 'GET', `/v1/drills/results?service=${service}&limit=5`, { token: TOKENS.viewer.token });
          return answer.status === 200 && answer.body.results.length > 0 ? answer.body.results : null;
        },
        60_000,
        500,
      );
      assert.equal(result!.result, 'passed', result!.reason);
      assert.equal(result!.outcome, 'rolled-back');
    } finally {
      await call(rig.cluster.apiUrl, 'DELETE', `/v1/drills/${service}/production`, { token: TOKENS.admin.token });
    }
  });

  test('DORA is computed from PostgreSQL visibility: two promoted, one rolled back', async () => {
    const service = uniqueService('cldora');
    const faulty = sha(`${service}-faulty`);
    const plan = [
      { version: sha(`${service}-a`), commitTime: '2026-11-01T10:00:00.000Z' },
      { version: faulty, commitTime: '2026-11-02T10:00:00.000Z' },
      { version: sha(`${service}-b`), commitTime: '2026-11-03T10:00:00.000Z' },
    ];
    const outcomes: string[] = [];
    for (const { version, commitTime } of plan) {
      const started = await submit(rig.cluster.apiUrl, simulatedRelease(service, version, { commitTime, health: { [faulty]: { errorRate: 0.3 } } }));
      assert.ok(started.status === 201, JSON.stringify(started.body));
      outcomes.push((await finished(rig.cluster.apiUrl, started.body.releaseId)).outcome!.result);
    }
    assert.deepEqual(outcomes, ['promoted', 'rolled-back', 'promoted']);
    const [figures] = await waitFor('visibility to hold the three releases', async () => {
      const answer = await call<{ figures: DoraFigures[] }>(rig.cluster.apiUrl, 'GET', `/v1/dora?service=${service}&days=30`, { token: TOKENS.viewer.token });
      const found = answer.body.figures;
      return found?.[0]?.deployments === 2 && found[0].failedDeployments === 1 ? found : null;
    });
    assert.equal(figures!.changeFailureRate, 1 / 3);
    assert.equal(figures!.leadTimeForChanges!.count, 2);
    assert.equal(figures!.failedDeploymentRecoveryTime!.count, 1);
  });
});

describe('the e2e release on the real local stack, through the cluster', () => {
  test('a healthy version of the demo service is released through HAProxy, judged by Prometheus, and promoted', { timeout: 300_000 }, async () => {
    const { stable, next } = versions;
    await demoDeployer(demo, behaviour()).deploy(demo.name, 'stable', stable);
    const router = new HaproxyRouter({ socket: stack.haproxySocket });
    await router.waitUntilUp(demo.name, ['stable']);
    const traffic = new TrafficLoop(stack.frontendUrl, demo.name, { rate: 40, concurrency: 8, maxMs: 280_000 }).start();
    try {
      const started = await submit(rig.cluster.apiUrl, { service: demo.name, version: next });
      assert.equal(started.status, 201, JSON.stringify(started.body));
      // A pause is an answer too: its reason shows in the assertion that fails.
      const done = await waitFor('the release to finish or pause', async () => {
        const status = await releaseStatus(rig.cluster.apiUrl, started.body.releaseId);
        return (status.outcome || status.state === 'paused') && status;
      }, 240_000, 250);
      assert.equal(done.outcome?.result, 'promoted', `${done.state} in ${done.step?.name}: ${done.pause?.reason ?? done.outcome?.reason}`);
      assert.deepEqual(movedWeights(done), [0, 20, 50, 100], 'traffic moved once per step, in order');
      assert.deepEqual(await router.getRoutes(demo.name), STABLE_ONLY);
      assert.deepEqual(await demoDeployer(demo, {}).slots(demo.name), { stable: next, canary: null });
    } finally {
      const tally = await traffic.stop();
      assert.ok(tally.total - tally.failures > 0, `user traffic was served: ${JSON.stringify(tally)}`);
    }
  });
});
