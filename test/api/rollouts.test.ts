// Rollouts across regions over real HTTP against a real worker and Temporal dev server: a spec with
// regions starts a rollout, its status lists waves and regions, commands act on the rollout or one
// region, alerts with a region label steer that region, and /regions shows what runs where.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EXIT } from '../../src/cli/client';
import type { ReleaseStatus } from '../../src/engine/release-state';
import type { RolloutStatus } from '../../workflows/definitions';
import { sha, uniqueService, waitFor } from '../helpers/temporal';
import { ALERTMANAGER_TOKEN, alertmanagerNotification, assertProblem, call, startApiRig, TOKENS, type ApiRig, runCli } from './helpers';

let api: ApiRig;
const operator = TOKENS.operator.token;
const viewer = TOKENS.viewer.token;

before(async () => {
  api = await startApiRig();
});
after(async () => {
  await api?.close();
});

const quick = { steps: [{ name: 'canary', phase: 'canary', weight: 10, bake: 0 }, { name: 'full', phase: 'full', weight: 100 }] };
const held = { steps: [{ name: 'canary', phase: 'canary', weight: 10, bake: '60s' }, { name: 'full', phase: 'full', weight: 100 }] };

/** Two regions: r1 goes through at once, r2 bakes its canary for a minute (time enough to steer it). */
function regionedBody(service: string, version: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    service,
    version,
    strategy: quick,
    analysis: { interval: '200ms' },
    regions: { r1: {}, r2: { strategy: held } },
    waves: [['r1'], ['r2']],
    ...extra,
  };
}

const rampart = (args: string[]) => runCli(api.url, args);

const rolloutUrl = (id: string) => `/v1/rollouts/${encodeURIComponent(id)}`;

async function startHeldRollout(): Promise<{ service: string; version: string; rolloutId: string; r2: string }> {
  const service = uniqueService('rollout-api');
  const version = sha(`${service}-1`);
  const answer = await call<{ releaseId: string; rolloutId: string; disposition: string }>(api.url, 'POST', '/v1/releases', { token: operator, body: regionedBody(service, version) });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  const rolloutId = `rollout/${service}/production/${version}`;
  assert.deepEqual(answer.body, { releaseId: rolloutId, rolloutId, disposition: 'started' });
  assert.equal(answer.headers.get('location'), rolloutUrl(rolloutId));
  const r2 = await waitFor('r2 baking its canary', async () => {
    const status = await api.rig.releases.rolloutStatus(rolloutId);
    const id = status.regions[1]?.releaseId;
    return id && (await api.rig.releases.status(id)).routes.canaryWeight > 0 ? id : null;
  }, 60_000);
  return { service, version, rolloutId, r2 };
}

describe('rollouts over the API', () => {
  test('bad input is refused with 4xx naming the field', async () => {
    const service = uniqueService('rollout-bad');
    const version = sha(service);
    const bad = assertProblem(
      await call(api.url, 'POST', '/v1/releases', { token: operator, body: regionedBody(service, version, { waves: [['r1'], ['r2', 'r9'], []] }) }),
      400,
    );
    assert.deepEqual(bad.errors?.map((e) => e.field).sort(), ['body.waves.1.1', 'body.waves.2']);
    const local = assertProblem(
      await call(api.url, 'POST', '/v1/releases', {
        token: operator,
        body: regionedBody(service, version, { regions: { r1: {}, r2: { target: { type: 'local', command: ['sh'], stablePort: 1, canaryPort: 2, haproxySocket: 'x:1', prometheusUrl: 'http://x' } } } }),
      }),
      400,
    );
    assert.deepEqual(local.errors?.map((e) => e.field), ['body.regions.r2.target.type']);
    assert.equal(await api.rig.releases.lane(service, 'production', 'r1'), null, 'nothing started');

    assertProblem(await call(api.url, 'GET', '/v1/rollouts/nonsense', { token: viewer }), 400);
    const missing = assertProblem(await call(api.url, 'GET', rolloutUrl(`rollout/${service}/production/${version}`), { token: viewer }), 404);
    assert.match(missing.detail, /no rollout/);
    assertProblem(await call(api.url, 'POST', `${rolloutUrl(`rollout/${service}/production/${version}`)}/pause`, { token: operator, body: {} }), 400);
    const none = assertProblem(await call(api.url, 'GET', `/v1/services/${service}/production/regions`, { token: viewer }), 404);
    assert.equal(none.errors?.[0]?.field, 'params.service');
    assertProblem(await call(api.url, 'POST', `${rolloutUrl(`rollout/${service}/production/${version}`)}/pause`, { token: viewer, body: { reason: 'x' } }), 403);
  });

  test('status, where, commands on the rollout and on one region', async () => {
    const { service, version, rolloutId, r2 } = await startHeldRollout();
    assert.equal(r2, `release/${service}/production@r2/${version}`);

    const status = await call<RolloutStatus>(api.url, 'GET', rolloutUrl(rolloutId), { token: viewer });
    assert.equal(status.status, 200);
    assert.deepEqual(status.body.waves.map((w) => [w.regions, w.state]), [[['r1'], 'promoted'], [['r2'], 'running']]);
    assert.deepEqual(status.body.regions.map((r) => [r.region, r.state]), [['r1', 'promoted'], ['r2', 'running']]);
    const byName = await call<RolloutStatus>(api.url, 'GET', `/v1/rollouts/${service}/production/${version}`, { token: viewer });
    assert.equal(byName.body.rolloutId, rolloutId);

    const where = await call<{ regions: { region: string; stable: string | null; inFlight: { releaseId: string; step: string | null } | null; lastChange: string | null }[] }>(
      api.url,
      'GET',
      `/v1/services/${service}/production/regions`,
      { token: viewer },
    );
    assert.equal(where.status, 200);
    assert.deepEqual(where.body.regions.map((r) => [r.region, r.stable, r.inFlight?.releaseId ?? null, r.inFlight?.step ?? null]), [
      ['r1', version, null, null],
      ['r2', null, r2, 'canary'],
    ]);
    assert.ok(where.body.regions[0]!.lastChange);

    const notPaused = assertProblem(await call(api.url, 'POST', `${rolloutUrl(rolloutId)}/resume`, { token: operator, body: { reason: 'go' } }), 409);
    assert.match(notPaused.detail, /not paused/);
    const paused = await call<RolloutStatus>(api.url, 'POST', `${rolloutUrl(rolloutId)}/pause`, { token: operator, body: { reason: 'hold on' } });
    assert.equal(paused.status, 200, JSON.stringify(paused.body));
    assert.equal(paused.body.paused?.actor, TOKENS.operator.name);
    await waitFor('r2 paused', async () => (await api.rig.releases.status(r2)).state === 'paused');
    const resumed = await call<RolloutStatus>(api.url, 'POST', `${rolloutUrl(rolloutId)}/resume`, { token: operator, body: { reason: 'carry on' } });
    assert.equal(resumed.status, 200);
    await waitFor('r2 running', async () => (await api.rig.releases.status(r2)).state === 'running');

    const unknown = assertProblem(await call(api.url, 'POST', `${rolloutUrl(rolloutId)}/regions/r7/promote`, { token: operator, body: { reason: 'x' } }), 404);
    assert.match(unknown.detail, /its regions are r1, r2/);
    const promoted = await call<ReleaseStatus>(api.url, 'POST', `${rolloutUrl(rolloutId)}/regions/r2/promote`, { token: operator, body: { reason: 'seen enough' } });
    assert.equal(promoted.status, 200, JSON.stringify(promoted.body));
    const done = await api.rig.releases.rolloutResult(rolloutId);
    assert.equal(done.state, 'promoted');
    const finished = assertProblem(await call(api.url, 'POST', `${rolloutUrl(rolloutId)}/abort`, { token: operator, body: { reason: 'late' } }), 409);
    assert.match(finished.detail, /finished/);

    // A rollback by hand names its region: that region's lane answers (here: nothing stable before this version).
    const rollback = (region: string) => call(api.url, 'POST', `/v1/services/${service}/production/rollback`, { token: operator, body: { reason: 'by hand', region } });
    const refused = assertProblem(await rollback('r1'), 409);
    assert.equal(refused.errors?.[0]?.field, 'params.service');
    assert.doesNotMatch(refused.detail, /nothing was ever released/, 'r1 has a lane');
    const elsewhere = assertProblem(await rollback('zz'), 409);
    assert.match(elsewhere.detail, /production@zz/);
    assertProblem(await rollback('Not-A-Region'), 400);
  });

  test("an alert with a region label steers that region's release only", async () => {
    const { service, rolloutId, r2 } = await startHeldRollout();
    const body = alertmanagerNotification('firing', [
      {
        labels: { alertname: 'RampartCanaryErrorRateAboveStable', service, environment: 'production', region: 'r2', rampart_action: 'abort' },
        annotations: { summary: 'r2 canary fails' },
        startsAt: new Date().toISOString(),
        endsAt: '0001-01-01T00:00:00Z',
        fingerprint: `fp-${service}-r2`,
      },
      { labels: { alertname: 'Odd', service, environment: 'production', region: 'Not A Region' }, startsAt: new Date().toISOString(), fingerprint: `fp-${service}-odd` },
    ]);
    const answer = await call<{ actions: { releaseId: string | null; action: string; detail: string }[] }>(api.url, 'POST', '/v1/alerts/alertmanager', { token: ALERTMANAGER_TOKEN, body });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(answer.body.actions.map((a) => [a.releaseId, a.action]), [[r2, 'aborting'], [null, 'none']]);
    assert.match(answer.body.actions[1]!.detail, /region label "Not A Region" is not a region name/);
    // halt (the default): r2 rolled back, r1 keeps the version.
    const done = await api.rig.releases.rolloutResult(rolloutId);
    assert.equal(done.state, 'halted');
    assert.deepEqual(done.regions.map((r) => [r.region, r.state, r.outcome]), [['r1', 'promoted', 'promoted'], ['r2', 'failed', 'aborted']]);
  });

  test("an alert without a region label steers every region's release in flight", async () => {
    const { service, rolloutId, r2 } = await startHeldRollout();
    // A rule written before the service had regions: no region label.
    const body = alertmanagerNotification(
      'firing',
      [{ labels: { alertname: 'CheckoutErrors', service, environment: 'production' }, annotations: { summary: 'checkout fails' }, startsAt: new Date().toISOString(), endsAt: '0001-01-01T00:00:00Z', fingerprint: `fp-${service}-any` }],
      '{}:{alertname="CheckoutErrors"}',
    );
    const answer = await call<{ actions: { releaseId: string | null; action: string; detail: string }[] }>(api.url, 'POST', '/v1/alerts/alertmanager', { token: ALERTMANAGER_TOKEN, body });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(answer.body.actions.map((a) => [a.releaseId, a.action]), [[r2, 'paused']], 'r1 is done; r2, in flight, pauses');
    const paused = await waitFor('r2 paused by the alert', async () => {
      const status = (await call<ReleaseStatus>(api.url, 'GET', `/v1/releases/${encodeURIComponent(r2)}`, { token: viewer })).body;
      return status.pause?.cause === 'alert' && status;
    }, 30_000);
    assert.equal(paused.state, 'paused');
    const aborted = await call(api.url, 'POST', `${rolloutUrl(rolloutId)}/abort`, { token: operator, body: { reason: 'test over' } });
    assert.ok(aborted.status < 300, JSON.stringify(aborted.body));
    await api.rig.releases.rolloutResult(rolloutId);
  });

  test('the CLI: where, rollout status, a command on one region, and exit codes', async () => {
    const { service, version, rolloutId, r2 } = await startHeldRollout();
    const where = await rampart(['where', service, '--env', 'production']);
    assert.equal(where.code, 0, where.stderr);
    const lines = where.stdout.trim().split('\n');
    assert.match(lines[0]!, /^REGION\s+STABLE\s+IN FLIGHT\s+STATE\/STEP\s+LAST CHANGE$/);
    assert.match(lines[1]!, new RegExp(`^r1\\s+${version.slice(0, 12)}…\\s+-\\s+-\\s+\\d{4}-`));
    assert.match(lines[2]!, new RegExp(`^r2\\s+-\\s+${version.slice(0, 12)}…\\s+running canary\\s+-$`));

    const status = await rampart(['rollout', 'status', `${service}/production/${version}`]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /wave 1 +promoted +r1/);
    assert.match(status.stdout, /wave 2 +running +r2/);

    const needsRegion = await rampart(['rollout', 'promote', rolloutId, '-r', 'go']);
    assert.equal(needsRegion.code, EXIT.usage);
    assert.match(needsRegion.stderr, /--region/);
    const aborted = await rampart(['rollout', 'abort', rolloutId, '--region', 'r2', '-r', 'r2 looks wrong', '--json']);
    assert.equal(aborted.code, 0, aborted.stderr);
    assert.equal((JSON.parse(aborted.stdout) as ReleaseStatus).releaseId, r2);
    const done = await api.rig.releases.rolloutResult(rolloutId);
    assert.equal(done.state, 'halted');
    const late = await rampart(['rollout', 'pause', rolloutId, '-r', 'late']);
    assert.equal(late.code, EXIT.rejected);
    const none = await rampart(['where', uniqueService('nowhere')]);
    assert.equal(none.code, EXIT.notFound);
    const after = await rampart(['where', service, '--json']);
    const regions = (JSON.parse(after.stdout) as { regions: { region: string; stable: string | null; inFlight: unknown }[] }).regions;
    assert.deepEqual(regions.map((r) => [r.region, r.stable, r.inFlight]), [['r1', version, null], ['r2', null, null]]);
  });
});
