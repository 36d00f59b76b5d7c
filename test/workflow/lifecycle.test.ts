// The release workflow over long and busy lives (issue 12): continue-as-new with the saga carried,
// the point of no return, commands bound to their step, per-hook activity options, drill safety.
// A real dev server whose continue-as-new suggestion comes early, so generations are seconds long.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@temporalio/client';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { OutboundAllowlist } from '../../src/providers/outbound';
import { CommandRejectedError } from '../../src/temporal/releases';
import { fastSpec } from '../helpers/specs';
import { sha, startRig, uniqueService, waitFor, type TestRig } from '../helpers/temporal';

const operator = { actor: 'alice', reason: 'testing' };

/** Every run of a workflow id, newest first, with the events of each: continue-as-new makes a chain. */
async function runsOf(client: Client, workflowId: string): Promise<Array<{ runId: string; status: string }>> {
  const runs: Array<{ runId: string; status: string }> = [];
  for await (const run of client.workflow.list({ query: `WorkflowId = '${workflowId.replace(/'/g, "\\'")}'` })) runs.push({ runId: run.runId, status: run.status.name });
  return runs;
}

async function activitiesOf(client: Client, workflowId: string, runId?: string) {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  return (history.events ?? []).flatMap((event) => {
    const scheduled = event.activityTaskScheduledEventAttributes;
    return scheduled ? [{ type: scheduled.activityType?.name ?? '', input: scheduled, id: scheduled.activityId ?? '' }] : [];
  });
}

describe('release lifecycle on a real dev server (continue-as-new suggested after 100 events)', () => {
  let rig: TestRig;
  before(async () => {
    // Hooks may call this machine only (the tests' own listeners).
    rig = await startRig({ outbound: new OutboundAllowlist(['127.0.0.1']) }, { dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 100 } });
  });
  after(async () => {
    await rig?.close();
  });

  const fleetOf = (service: string) => rig.worker.fleet.service(service);

  test('a release baking through three continue-as-new generations promotes, keeping its status', async () => {
    const service = uniqueService('long');
    const version = sha('long-bake');
    // The server fires 100 ms timers about a second apart: some 60 looks, about 7 history events each (local activities).
    const { releaseId } = await rig.releases.submit(fastSpec(service, version, { bake: { 'ramp-10': '60s' }, analysis: { interval: '100ms' } }));
    const result = await rig.releases.result(releaseId);
    assert.equal(result.outcome?.result, 'promoted', result.outcome?.reason);
    assert.ok(result.generation >= 3, `generations: ${result.generation}`);
    assert.equal(result.history.filter((t) => t.event === 'continued-as-new').length, result.generation);
    // One canary deploy and one load test across all runs: nothing was done twice by a new run.
    assert.equal(fleetOf(service).events.filter((e) => e.action === 'deploy' && e.slot === 'canary').length, 1);
    assert.equal(result.loadTests.length, 1);
    assert.deepEqual(fleetOf(service).slots, { stable: version, canary: null });
    // Visibility lags behind: poll until it lists the runs the status already counts.
    await waitFor('three continued runs in visibility', async () => (await runsOf(rig.client, releaseId)).filter((r) => r.status === 'CONTINUED_AS_NEW').length >= 3);
  });

  test('a release aborted in its third generation rolls back everything its first generation did', async () => {
    const service = uniqueService('long-abort');
    const version = sha('long-abort');
    const { releaseId } = await rig.releases.submit(fastSpec(service, version, { bake: { 'ramp-10': '10m' }, analysis: { interval: '100ms' } }));
    await waitFor('the third generation', async () => (await rig.releases.status(releaseId)).generation >= 2, 120_000, 200);
    assert.equal(fleetOf(service).slots.canary, version, 'the first generation deployed the canary');
    assert.equal(fleetOf(service).routes.canaryWeight, 10);

    const aborted = await rig.releases.command(releaseId, 'abort', operator);
    assert.equal(aborted.outcome?.result, 'aborted');
    assert.deepEqual(fleetOf(service).routes, { canaryWeight: 0, internalAudience: null });
    assert.equal(fleetOf(service).slots.canary, null, 'the canary the first generation deployed is stopped');
    assert.deepEqual(
      aborted.history.filter((t) => t.event === 'undo').map((t) => t.reason),
      ['reset-routes', 'stop-canary'],
    );
    // The undos ran in the last run: the saga crossed the generations as data.
    const last = await activitiesOf(rig.client, releaseId);
    assert.deepEqual(last.filter((a) => a.type === 'resetRoutes' || a.type === 'stopCanary').map((a) => a.type), ['resetRoutes', 'stopCanary']);
    assert.equal(last.filter((a) => a.type === 'deployCanary').length, 0, 'the last run deployed nothing');
  });

  test('an abort racing finalize is either honoured or refused, and its answer matches the outcome', async () => {
    // Every provider call takes 400 ms, so finalize spans seconds of distinct moments to abort in.
    for (const [i, waitForActivity] of (['finalizing', 'finalizing-late'] as const).entries()) {
      const service = uniqueService('race');
      const version = sha(`race-${i}`);
      const { releaseId } = await rig.releases.submit(fastSpec(service, version, { providerLatencyMs: 400 }));
      await waitFor('finalize', async () => (await rig.releases.status(releaseId)).activity === 'finalizing', 120_000, 20);
      if (waitForActivity === 'finalizing-late') {
        await waitFor('the point of no return', async () => (await rig.releases.status(releaseId)).pointOfNoReturn === true, 30_000, 20);
      }
      let answer: 'aborted' | 'refused';
      try {
        const status = await rig.releases.command(releaseId, 'abort', operator);
        assert.equal(status.outcome?.result, 'aborted', `an accepted abort answers aborted, got ${status.outcome?.result}`);
        answer = 'aborted';
      } catch (error) {
        assert.ok(error instanceof CommandRejectedError, String(error));
        assert.match(error.message, /point of no return|has finished/);
        answer = 'refused';
      }
      const result = await rig.releases.result(releaseId);
      if (answer === 'aborted') {
        assert.equal(result.outcome?.result, 'aborted');
        assert.deepEqual(fleetOf(service).routes, { canaryWeight: 0, internalAudience: null });
        assert.notEqual(fleetOf(service).slots.stable, version, 'the old version is back in the stable slot');
      } else {
        assert.equal(result.outcome?.result, 'promoted');
        assert.equal(fleetOf(service).slots.stable, version);
      }
      if (waitForActivity === 'finalizing-late') assert.equal(answer, 'refused', 'past the point of no return an abort is refused');
    }
  });

  test('a promote sent while traffic moves is refused and the next bake is not skipped', async () => {
    const service = uniqueService('promote-move');
    const { releaseId } = await rig.releases.submit(
      fastSpec(service, sha('promote-move'), { providerLatencyMs: 600, bake: { 'ramp-10': '2s' }, analysis: { interval: '200ms' } }),
    );
    await waitFor('traffic moving to ramp-10', async () => {
      const status = await rig.releases.status(releaseId);
      return status.step?.name === 'ramp-10' && status.activity === 'moving-traffic';
    }, 120_000, 20);
    await assert.rejects(rig.releases.command(releaseId, 'promote', operator), (error: Error) => error instanceof CommandRejectedError && /not baking/.test(error.message));
    const result = await rig.releases.result(releaseId);
    assert.equal(result.outcome?.result, 'promoted');
    assert.ok(!result.history.some((t) => t.event === 'bake-skipped'), 'no bake was skipped');
    assert.ok(result.history.some((t) => t.event === 'analysis-passed' && t.step === 'ramp-10'), 'ramp-10 baked and was judged');
  });

  test('a promote during an approval gate is refused; a promote named for an earlier step is refused', async () => {
    const service = uniqueService('promote-gate');
    const { releaseId } = await rig.releases.submit(fastSpec(service, sha('promote-gate'), { approval: ['ramp-10'], bake: { 'ramp-10': '2s' }, analysis: { interval: '200ms' } }));
    await waitFor('the gate', async () => (await rig.releases.status(releaseId)).state === 'awaiting-approval', 60_000);
    await assert.rejects(rig.releases.command(releaseId, 'promote', operator), /approve it instead/);
    await rig.releases.command(releaseId, 'approve', operator);
    await assert.rejects(rig.releases.command(releaseId, 'promote', { ...operator, step: 'canary-5' }), /meant for step canary-5/);
    const result = await rig.releases.result(releaseId);
    assert.equal(result.outcome?.result, 'promoted');
    assert.ok(result.history.some((t) => t.event === 'analysis-passed' && t.step === 'ramp-10'), 'ramp-10 baked after the gate');
  });

  test('a drill whose fault goes unnoticed never passes the canary phase', async () => {
    const service = uniqueService('drill');
    const version = sha('quiet-fault');
    const { releaseId } = await rig.releases.submit(fastSpec(service, version, { drill: true, bake: { 'canary-5': '1s' } }));
    const result = await rig.releases.result(releaseId);
    assert.equal(result.outcome?.result, 'rolled-back');
    assert.match(result.outcome?.reason ?? '', /drill fault went undetected/);
    assert.ok(!result.history.some((t) => t.event === 'step-started' && (t.step === 'ramp-10' || t.step === 'ramp-50' || t.step === 'full')));
    assert.deepEqual(fleetOf(service).routes, { canaryWeight: 0, internalAudience: null });
    assert.equal(fleetOf(service).slots.canary, null);
  });

  test('a drill whose canary cannot tell its fault apart fails the drill and rolls back, never waiting for a person', async () => {
    const service = uniqueService('drill-undecided');
    const version = sha('undecided-fault');
    // One request a second, 5% of it on the canary: far too little to tell, however faulty the build.
    const spec = fastSpec(service, version, { drill: true, bake: { 'canary-5': '1s' }, health: { [version]: { errorRate: 0.5 } }, load: { maxIncreaseOverStable: 1 }, trafficPerSecond: 1 });
    const { releaseId } = await rig.releases.submit(spec);
    const result = await rig.releases.result(releaseId);
    assert.equal(result.outcome?.result, 'rolled-back');
    assert.match(result.outcome?.reason ?? '', /drill fault not caught in canary-5: not enough evidence/);
    assert.ok(result.history.some((t) => t.event === 'drill-fault-undetected'));
    assert.ok(!result.history.some((t) => t.event === 'paused'), 'never paused');
    assert.deepEqual(fleetOf(service).routes, { canaryWeight: 0, internalAudience: null });
  });

  test('each hook gets the activity timeout and the retries it declares', async () => {
    const service = uniqueService('hooks');
    const hooks = { 'ramp-10': { before: [{ name: 'migrate', url: 'http://127.0.0.1:9/never', timeout: '3m', retries: 0 }] } };
    const { releaseId } = await rig.releases.submit(fastSpec(service, sha('hooks'), { hooks }));
    const result = await rig.releases.result(releaseId);
    assert.equal(result.outcome?.result, 'rolled-back');
    const calls = (await activitiesOf(rig.client, releaseId)).filter((a) => a.type === 'runHook');
    assert.equal(calls.length, 1, 'scheduled once');
    const timeout = calls[0]!.input.startToCloseTimeout;
    assert.equal(Number(timeout?.seconds ?? 0), 185, 'the hook timeout (3m) plus 5 s');
    assert.equal(calls[0]!.input.retryPolicy?.maximumAttempts, 1, 'retries 0: one attempt');
  });

  test('a slow hook is called once, with the same idempotency key on every attempt, and the release goes on', async () => {
    const calls: Array<{ key: string | undefined; body: string }> = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        calls.push({ key: req.headers['idempotency-key'] as string | undefined, body });
        // Slower than a short activity attempt would allow, well inside the hook's own 3 minutes.
        setTimeout(() => res.end('migrated'), 1_500);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const service = uniqueService('hook-key');
      const hooks = { 'ramp-10': { before: [{ name: 'migrate', url: `http://127.0.0.1:${port}/migrate`, timeout: '3m', retries: 2 }] } };
      const { releaseId } = await rig.releases.submit(fastSpec(service, sha('hook-key'), { hooks }));
      const result = await rig.releases.result(releaseId);
      assert.equal(result.outcome?.result, 'promoted', result.outcome?.reason);
      assert.equal(calls.length, 1, 'called once');
      assert.equal(calls[0]!.key, `${releaseId}/ramp-10/before/migrate`);
      assert.equal(JSON.parse(calls[0]!.body).idempotencyKey, calls[0]!.key, 'the key is in the body too');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
