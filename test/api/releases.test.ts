// Operators steer releases over real HTTP against a real worker and Temporal dev server: each
// command changes the state as documented and is recorded with the token's name as its actor.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildApp } from '../../src/api/app';
import type { ReleaseStatus } from '../../src/engine/release-state';
import { sha, uniqueService, waitFor } from '../helpers/temporal';
import { assertProblem, call, heldSpec, releaseUrl, startApiRig, startApp, TOKENS, type ApiRig } from './helpers';

let api: ApiRig;
const operator = TOKENS.operator.token;

before(async () => {
  api = await startApiRig();
});
after(async () => {
  await api?.close();
});

async function startHeld(extra: Record<string, unknown> = {}): Promise<{ service: string; version: string; releaseId: string }> {
  const service = uniqueService('api');
  const version = sha(`${service}-1`);
  const answer = await call<{ releaseId: string; disposition: string }>(api.url, 'POST', '/v1/releases', { token: operator, body: heldSpec(service, version, extra) });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  const releaseId = answer.body.releaseId;
  // Wait until traffic has moved, so the release is baking when the test steers it.
  await waitFor('the canary to take traffic', async () => {
    const status = await api.rig.releases.status(releaseId);
    return status.routes.canaryWeight > 0 || status.state === 'awaiting-approval';
  });
  return { service, version, releaseId };
}

async function command(releaseId: string, name: string, reason: string, token: string = operator) {
  return call<ReleaseStatus>(api.url, 'POST', `${releaseUrl(releaseId)}/${name}`, { token, body: { reason } });
}

function lastEvent(status: ReleaseStatus, event: string) {
  return [...status.history].reverse().find((t) => t.event === event);
}

describe('releases', () => {
  test('a start answers 201 with the release and its location; the same version again answers 200 duplicate', async () => {
    const service = uniqueService('api');
    const version = sha(`${service}-start`);
    const first = await call<{ releaseId: string; disposition: string }>(api.url, 'POST', '/v1/releases', { token: operator, body: heldSpec(service, version) });
    assert.equal(first.status, 201);
    assert.deepEqual(first.body, { releaseId: `release/${service}/production/${version}`, disposition: 'started' });
    assert.equal(first.headers.get('location'), releaseUrl(first.body.releaseId));

    const again = await call<{ releaseId: string; disposition: string }>(api.url, 'POST', '/v1/releases', { token: operator, body: heldSpec(service, version) });
    assert.equal(again.status, 200);
    assert.equal(again.body.disposition, 'duplicate');
    assert.equal(again.body.releaseId, first.body.releaseId);

    const status = await call<ReleaseStatus>(api.url, 'GET', `/v1/releases/${service}/production/${version}`, { token: TOKENS.viewer.token });
    assert.equal(status.status, 200);
    assert.equal(status.body.requestedBy, TOKENS.operator.name, 'the requester is the token name');
    const byId = await call<ReleaseStatus>(api.url, 'GET', releaseUrl(first.body.releaseId), { token: TOKENS.viewer.token });
    assert.equal(byId.body.releaseId, first.body.releaseId);

    const listed = await waitFor('the release to be listed', async () => {
      const answer = await call<{ releases: { releaseId: string; status: string }[] }>(api.url, 'GET', `/v1/releases?service=${service}&status=running`, {
        token: TOKENS.viewer.token,
      });
      return answer.body.releases.length === 1 ? answer.body.releases : null;
    });
    assert.equal(listed[0]!.releaseId, first.body.releaseId);
    await command(first.body.releaseId, 'abort', 'test done');
  });

  test('a new version while one is in flight is queued behind it (202) and the old one is superseded; a drill is refused (409)', async () => {
    const { service, releaseId } = await startHeld();
    const drill = assertProblem(
      await call(api.url, 'POST', '/v1/releases', { token: operator, body: heldSpec(service, sha(`${service}-drill`), { drill: true }) }),
      409,
    );
    assert.match(drill.detail, /never supersedes/);
    const next = sha(`${service}-2`);
    const answer = await call<{ releaseId: string; disposition: string; supersedes?: string }>(api.url, 'POST', '/v1/releases', {
      token: operator,
      body: heldSpec(service, next),
    });
    assert.equal(answer.status, 202);
    assert.equal(answer.body.disposition, 'queued');
    assert.equal(answer.body.supersedes, releaseId);
    await waitFor('the old release to be superseded', async () => (await api.rig.releases.status(releaseId)).state === 'superseded');
    await waitFor('the new one to start', async () => (await api.rig.releases.status(answer.body.releaseId)).state === 'running');
    await command(answer.body.releaseId, 'abort', 'test done');
  });

  test('pause holds the release and records the operator; a second pause is 409 with the reason', async () => {
    const { releaseId } = await startHeld();
    const paused = await command(releaseId, 'pause', 'checking dashboards');
    assert.equal(paused.status, 200);
    assert.equal(paused.body.state, 'paused');
    assert.deepEqual({ cause: paused.body.pause?.cause, actor: paused.body.pause?.actor, reason: paused.body.pause?.reason }, {
      cause: 'operator',
      actor: TOKENS.operator.name,
      reason: 'checking dashboards',
    });
    assert.equal(lastEvent(paused.body, 'paused')?.actor, TOKENS.operator.name);

    const again = assertProblem(await command(releaseId, 'pause', 'again'), 409);
    assert.match(again.detail, /already paused/);
    await command(releaseId, 'abort', 'test done');
  });

  test('resume returns a paused release to running; resuming a running release is 409', async () => {
    const { releaseId } = await startHeld();
    await command(releaseId, 'pause', 'hold');
    const resumed = await command(releaseId, 'resume', 'looks fine', TOKENS.admin.token);
    assert.equal(resumed.status, 200);
    assert.equal(resumed.body.state, 'running');
    assert.equal(resumed.body.pause, null);
    assert.equal(lastEvent(resumed.body, 'resumed')?.actor, TOKENS.admin.name, 'an admin may do what an operator may');

    const problem = assertProblem(await command(releaseId, 'resume', 'again'), 409);
    assert.match(problem.detail, /not paused/);
    await command(releaseId, 'abort', 'test done');
  });

  test('promote skips the rest of the bake and the release goes on to the next step', async () => {
    const { releaseId } = await startHeld();
    const promoted = await command(releaseId, 'promote', 'canary is clean');
    assert.equal(promoted.status, 200);
    assert.equal(lastEvent(promoted.body, 'promote-requested')?.actor, TOKENS.operator.name);
    const done = await waitFor('the release to be promoted', async () => {
      const status = await api.rig.releases.status(releaseId);
      return status.state === 'promoted' ? status : null;
    });
    assert.equal(done.routes.canaryWeight, 0, 'the new version now serves as stable');
    assertProblem(await command(releaseId, 'promote', 'again'), 409);
  });

  test('approve opens a manual gate; promote at a gate is 409 saying to approve', async () => {
    const service = uniqueService('api');
    const version = sha(`${service}-gate`);
    const spec = heldSpec(service, version);
    (spec.strategy as { steps: Record<string, unknown>[] }).steps[0]!.approval = true;
    const started = await call<{ releaseId: string }>(api.url, 'POST', '/v1/releases', { token: operator, body: spec });
    const releaseId = started.body.releaseId;
    await waitFor('the gate', async () => (await api.rig.releases.status(releaseId)).state === 'awaiting-approval');

    const promote = assertProblem(await command(releaseId, 'promote', 'skip it'), 409);
    assert.match(promote.detail, /approve/);
    const approved = await command(releaseId, 'approve', 'migration reviewed');
    assert.equal(approved.status, 200);
    assert.equal(lastEvent(approved.body, 'approved')?.actor, TOKENS.operator.name);
    assert.equal(lastEvent(approved.body, 'approved')?.reason, 'migration reviewed');
    await waitFor('traffic to move past the gate', async () => (await api.rig.releases.status(releaseId)).routes.canaryWeight === 10);
    assertProblem(await command(releaseId, 'approve', 'again'), 409);
    await command(releaseId, 'abort', 'test done');
  });

  test('abort answers once the rollback is done, names the actor, and every later command is 409', async () => {
    const { releaseId } = await startHeld();
    const aborted = await command(releaseId, 'abort', 'error budget burning');
    assert.equal(aborted.status, 200);
    assert.equal(aborted.body.state, 'aborted');
    assert.equal(aborted.body.routes.canaryWeight, 0);
    assert.deepEqual({ actor: aborted.body.outcome?.actor, reason: aborted.body.outcome?.reason }, { actor: TOKENS.operator.name, reason: 'error budget burning' });
    assert.equal(lastEvent(aborted.body, 'abort-requested')?.actor, TOKENS.operator.name);
    for (const name of ['pause', 'resume', 'promote', 'abort', 'approve']) {
      const problem = assertProblem(await command(releaseId, name, 'late'), 409);
      assert.match(problem.detail, /finished/);
    }
  });

  test('an unknown release is 404; a malformed name is 400 naming the field', async () => {
    const missing = `release/${uniqueService('none')}/production/${sha('none')}`;
    assertProblem(await call(api.url, 'GET', releaseUrl(missing), { token: operator }), 404);
    assertProblem(await command(missing, 'pause', 'who?'), 404);
    const bad = assertProblem(await call(api.url, 'GET', '/v1/releases/svc/production/latest', { token: operator }), 400);
    assert.equal(bad.errors?.[0]?.field, 'params.version');
    const badId = assertProblem(await call(api.url, 'GET', '/v1/releases/not-an-id', { token: operator }), 400);
    assert.equal(badId.errors?.[0]?.field, 'params.id');
  });

  test('a viewer may read but not steer (403); a command needs a reason', async () => {
    const { releaseId } = await startHeld();
    assert.equal((await call(api.url, 'GET', releaseUrl(releaseId), { token: TOKENS.viewer.token })).status, 200);
    const forbidden = assertProblem(await command(releaseId, 'pause', 'peek', TOKENS.viewer.token), 403);
    assert.match(forbidden.detail, /viewer/);
    const noReason = assertProblem(await call(api.url, 'POST', `${releaseUrl(releaseId)}/pause`, { token: operator, body: {} }), 400);
    assert.equal(noReason.errors?.[0]?.field, 'body.reason');
    assert.equal((await api.rig.releases.status(releaseId)).state, 'running', 'nothing reached the release');
    await command(releaseId, 'abort', 'test done');
  });
});

describe('operations', () => {
  test('healthz and readyz answer without a token; readyz checks Temporal', async () => {
    assert.deepEqual((await call(api.url, 'GET', '/healthz')).body, { status: 'ok' });
    assert.deepEqual((await call(api.url, 'GET', '/readyz')).body, { status: 'ready', temporal: 'reachable' });
  });

  test('readyz is 503 when Temporal does not answer', async () => {
    const app = await buildApp({ releases: api.rig.releases, ping: () => Promise.reject(new Error('connection refused')) });
    try {
      const answer = await app.inject({ url: '/readyz' });
      assert.equal(answer.statusCode, 503);
      assert.match(String(answer.headers['content-type']), /problem\+json/);
      assert.match(answer.json<{ detail: string }>().detail, /connection refused/);
    } finally {
      await app.close();
    }
  });

  test('metrics need a viewer token and count requests by route', async () => {
    assertProblem(await call(api.url, 'GET', '/metrics'), 401);
    const metrics = await call<string>(api.url, 'GET', '/metrics', { token: TOKENS.viewer.token });
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type') ?? '', /text\/plain/);
    assert.match(metrics.body, /rampart_api_requests_total\{method="GET",route="\/healthz",status="200"\} \d+/);
    assert.match(metrics.body, /rampart_api_commands_total\{command="pause",source="operator",outcome="applied"\}/);
  });

  test('the OpenAPI document and its page are generated from the schemas', async () => {
    const doc = await call<{ openapi: string; paths: Record<string, Record<string, { requestBody?: unknown }>> }>(api.url, 'GET', '/openapi.json');
    assert.equal(doc.status, 200);
    assert.equal(doc.body.openapi, '3.1.0');
    const specBody = JSON.stringify(doc.body.paths['/v1/releases']?.post?.requestBody);
    assert.match(specBody, /Share of user traffic \(percent\) sent to the new version/, 'field descriptions come from the release spec schema');
    const page = await call<string>(api.url, 'GET', '/docs/');
    assert.equal(page.status, 200);
    assert.match(page.body, /swagger/i);
  });

  test('answers carry security headers', async () => {
    const answer = await call(api.url, 'GET', '/healthz');
    assert.equal(answer.headers.get('x-content-type-options'), 'nosniff');
    assert.ok(answer.headers.get('content-security-policy'));
    assert.ok(answer.headers.get('strict-transport-security'));
  });

  test('a body over the limit is 413; an unknown route is 404; both are problem documents', async () => {
    const big = 'x'.repeat(1_100_000);
    const tooBig = assertProblem(await call(api.url, 'POST', '/v1/releases', { token: operator, raw: JSON.stringify({ service: big }) }), 413);
    assert.equal(tooBig.errors?.[0]?.field, 'body');
    assertProblem(await call(api.url, 'GET', '/v1/nothing-here', { token: operator }), 404);
  });

  test('a client over the rate limit gets 429 with Retry-After', async () => {
    const limited = await startApp(api.rig, { settings: { rateLimit: { max: 3, windowMs: 60_000 } } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await call(limited.url, 'GET', '/v1/releases?limit=1', { token: 'wrong-token-wrong-token' })).status);
      assert.deepEqual(statuses, [401, 401, 401, 429, 429], 'wrong tokens count against the limit too');
      const answer = await call(limited.url, 'GET', '/v1/releases?limit=1', { token: TOKENS.viewer.token });
      assertProblem(answer, 429);
      assert.ok(answer.headers.get('retry-after'));
      assert.equal((await call(limited.url, 'GET', '/healthz')).status, 200, 'probes are not limited');
    } finally {
      await limited.close();
    }
  });

  test('closing lets a request in flight finish and refuses new connections', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const server = await startApp(api.rig, {
      extend: (app) =>
        app.get('/slow', { config: { access: { kind: 'public' } } }, async () => {
          await held;
          return { done: true };
        }),
    });
    const inFlight = call(server.url, 'GET', '/slow');
    await new Promise((r) => setTimeout(r, 100));
    const closing = server.close();
    await new Promise((r) => setTimeout(r, 100));
    release();
    const answer = await inFlight;
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { done: true });
    await closing;
    await assert.rejects(call(server.url, 'GET', '/healthz'));
  });
});
