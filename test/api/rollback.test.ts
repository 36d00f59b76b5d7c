// The rollback command over real HTTP against a real worker and Temporal dev server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EXIT } from '../../src/cli/client';
import type { ReleaseStatus } from '../../src/engine/release-state';
import { sha, uniqueService, waitFor } from '../helpers/temporal';
import { assertProblem, call, releaseUrl, signedHeaders, startApiRig, TOKENS, type ApiRig, runCli } from './helpers';

let api: ApiRig;
const operator = TOKENS.operator.token;

before(async () => {
  api = await startApiRig();
});
after(async () => {
  await api?.close();
});

/** A zero-bake release on the simulated target, straight to 100%. */
function quickSpec(service: string, version: string): Record<string, unknown> {
  return {
    service,
    version,
    strategy: { steps: [{ name: 'full', phase: 'full', weight: 100, analysis: false }] },
    rollback: { warmWindow: 0 },
  };
}

async function promoted(service: string, ...versions: string[]): Promise<void> {
  for (const version of versions) {
    const answer = await call<{ releaseId: string }>(api.url, 'POST', '/v1/releases', { token: operator, body: quickSpec(service, version) });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    assert.equal((await api.rig.releases.result(answer.body.releaseId)).outcome?.result, 'promoted');
  }
  await waitFor('the lane to know the last promotion', async () => (await api.rig.releases.lane(service, 'production'))?.stable.at(-1)?.version === versions.at(-1));
}

/** A signed CI delivery of a version built from a commit, with the same zero-bake inline spec. */
async function ciDelivery(service: string, version: string, commitTime: string) {
  const body = JSON.stringify({
    service,
    version,
    commit: { sha: sha(`${version}-${commitTime}`), time: commitTime },
    spec: { strategy: { steps: [{ name: 'full', phase: 'full', weight: 100, analysis: false }] }, rollback: { warmWindow: 0 } },
  });
  return call<{ releaseId: string; disposition: string }>(api.url, 'POST', '/v1/webhooks/ci', { raw: body, headers: signedHeaders(body) });
}

const rollbackPath = (service: string) => `/v1/services/${service}/production/rollback`;

describe('POST /v1/services/:service/:environment/rollback', () => {
  test('rolls back to the previous stable version: 201 with the rollback id, the token name as actor, the reason in the history', async () => {
    const service = uniqueService('api-rb');
    const [v1, v2] = [sha(`${service}-1`), sha(`${service}-2`)];
    await promoted(service, v1, v2);

    const answer = await call<{ releaseId: string; disposition: string; from: string; to: string; allowed: string[] }>(api.url, 'POST', rollbackPath(service), {
      token: operator,
      body: { reason: 'v2 corrupts carts' },
    });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    assert.equal(answer.body.disposition, 'started');
    assert.deepEqual([answer.body.from, answer.body.to, answer.body.allowed], [v2, v1, [v1]]);
    assert.equal(answer.headers.get('location'), releaseUrl(answer.body.releaseId));

    await api.rig.releases.result(answer.body.releaseId);
    const status = await call<ReleaseStatus>(api.url, 'GET', releaseUrl(answer.body.releaseId), { token: TOKENS.viewer.token });
    assert.equal(status.body.outcome?.result, 'rolled-back-to', JSON.stringify(status.body));
    const requested = status.body.history.find((t) => t.event === 'rollback-requested');
    assert.deepEqual([requested?.actor, requested?.reason], [TOKENS.operator.name, `${v2} -> ${v1}: v2 corrupts carts`]);

    const lane = await waitFor('the lane to show v1 stable again', async () => {
      const answer = await call<{ stable: { version: string }[] }>(api.url, 'GET', `/v1/services/${service}/production/lane`, { token: TOKENS.viewer.token });
      return answer.body.stable?.length === 3 ? answer.body : null;
    });
    assert.deepEqual(
      lane.stable.map((r) => r.version),
      [v1, v2, v1],
    );
  });

  test('the lane view shows the warm window, and a rollback inside it is answered queued, then switches back to v1', async () => {
    const service = uniqueService('api-warm');
    const [v1, v2] = [sha(`${service}-1`), sha(`${service}-2`)];
    await promoted(service, v1);
    const started = await call<{ releaseId: string }>(api.url, 'POST', '/v1/releases', { token: operator, body: { ...quickSpec(service, v2), rollback: { warmWindow: '10m' } } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    type LaneView = { stable: { version: string }[]; warm: { releaseId: string; version: string; until: string } | null };
    const lane = () => call<LaneView>(api.url, 'GET', `/v1/services/${service}/production/lane`, { token: TOKENS.viewer.token });
    const warm = await waitFor('the lane view to show v1 warm', async () => ((await lane()).body.warm?.version === v1 ? (await lane()).body : null));
    assert.equal(warm.warm?.releaseId, started.body.releaseId);
    assert.ok(Date.parse(warm.warm!.until) > Date.now() + 5 * 60_000, 'kept warm for the window the spec set');
    const release = await call<ReleaseStatus>(api.url, 'GET', releaseUrl(started.body.releaseId), { token: TOKENS.viewer.token });
    assert.equal(release.body.activity, 'warm');
    assert.equal(release.body.warm?.version, v1);

    const answer = await call<{ releaseId: string; disposition: string; supersedes: string; to: string }>(api.url, 'POST', rollbackPath(service), { token: operator, body: { reason: 'v2 is bad' } });
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    assert.deepEqual([answer.body.disposition, answer.body.supersedes, answer.body.to], ['queued', started.body.releaseId, v1]);
    const result = await waitFor('the rollback to finish', async () => api.rig.releases.result(answer.body.releaseId));
    assert.equal(result.outcome?.result, 'rolled-back-to');
    assert.deepEqual(api.rig.worker.fleet.service(service).slots, { stable: v1, canary: null });
    const after = await waitFor('the window to be over', async () => ((await lane()).body.warm === null ? (await lane()).body : null));
    assert.deepEqual(after.stable.map((r) => r.version), [v1, v2, v1]);
  });

  test('a revert commit that rebuilds v1, delivered through the CI webhook, takes the rollback path', async () => {
    const service = uniqueService('api-revert');
    const [v1, v2] = [sha(`${service}-1`), sha(`${service}-2`)];
    for (const [version, time] of [[v1, '2026-03-01T10:00:00Z'], [v2, '2026-03-01T11:00:00Z']] as const) {
      const answer = await ciDelivery(service, version, time);
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      assert.equal((await api.rig.releases.result(answer.body.releaseId)).outcome?.result, 'promoted');
    }
    await waitFor('the lane to know v2 stable', async () => (await api.rig.releases.lane(service, 'production'))?.stable.at(-1)?.version === v2);

    const revert = await ciDelivery(service, v1, '2026-03-01T12:00:00Z');
    assert.equal(revert.status, 201, JSON.stringify(revert.body));
    assert.match(revert.body.releaseId, new RegExp(`^rollback/${service}/production/${v1}/[0-9a-f]{8}$`));
    assert.equal((await api.rig.releases.result(revert.body.releaseId)).outcome?.result, 'rolled-back-to');
    assert.deepEqual(api.rig.worker.fleet.service(service).slots, { stable: v1, canary: null });
  });

  test('a version never stable in the lane: 409 naming body.to, with the allowed list', async () => {
    const service = uniqueService('api-rb');
    const [v1, v2] = [sha(`${service}-1`), sha(`${service}-2`)];
    await promoted(service, v1, v2);
    const never = sha(`${service}-never`);
    const problem = assertProblem(await call(api.url, 'POST', rollbackPath(service), { token: operator, body: { to: never, reason: 'try' } }), 409);
    assert.deepEqual(problem.allowed, [v1]);
    assert.equal(problem.errors?.[0]?.field, 'body.to');
    assert.match(problem.detail, new RegExp(`${never} was never stable here; a rollback may return to: ${v1}`));
    // A lane that never released anything refuses too, with an empty list.
    const empty = assertProblem(await call(api.url, 'POST', rollbackPath(uniqueService('none')), { token: operator, body: { reason: 'try' } }), 409);
    assert.deepEqual(empty.allowed, []);
  });

  test('bad input is a 400 naming the field; a viewer is refused; nothing starts', async () => {
    const service = uniqueService('api-rb');
    const cases: Array<[unknown, string]> = [
      [{}, 'body.reason'],
      [{ reason: '   ' }, 'body.reason'],
      [{ reason: 'x', to: 'latest' }, 'body.to'],
      [{ reason: 'x', extra: 1 }, 'body.extra'],
    ];
    for (const [body, field] of cases) {
      const problem = assertProblem(await call(api.url, 'POST', rollbackPath(service), { token: operator, body }), 400);
      assert.ok(problem.errors?.some((e) => e.field === field), `${JSON.stringify(body)}: ${JSON.stringify(problem.errors)}`);
    }
    assertProblem(await call(api.url, 'POST', `/v1/services/${'x'.repeat(300)}/production/rollback`, { token: operator, body: { reason: 'x' } }), 400);
    assertProblem(await call(api.url, 'POST', rollbackPath(service), { token: TOKENS.viewer.token, body: { reason: 'x' } }), 403);
    assert.equal(await api.rig.releases.lane(service, 'production'), null, 'no lane was started');
  });
});

const rampart = (args: string[]) => runCli(api.url, args);

test('rampart rollback: refused with the allowed list (exit 3), then rolls back; the rollback is followed by its id', async () => {
  const service = uniqueService('cli-rb');
  const [v1, v2] = [sha(`${service}-1`), sha(`${service}-2`)];
  await promoted(service, v1, v2);

  const refused = await rampart(['rollback', service, '--to', sha('never'), '--reason', 'try']);
  assert.equal(refused.code, EXIT.rejected, refused.stderr);
  assert.match(refused.stderr, new RegExp(`a rollback may return to: ${v1}`));

  const done = await rampart(['rollback', service, '--env', 'production', '--reason', 'v2 is bad']);
  assert.equal(done.code, 0, done.stderr);
  const match = new RegExp(`^(rollback/${service}/production/${v1}/[0-9a-f]{8}) started: ${v2} -> ${v1}$`, 'm').exec(done.stdout);
  assert.ok(match, done.stdout);
  await api.rig.releases.result(match[1]!);
  const status = await rampart(['status', match[1]!, '--json']);
  assert.equal(status.code, 0, status.stderr);
  assert.equal((JSON.parse(status.stdout) as ReleaseStatus).outcome?.result, 'rolled-back-to');
});
