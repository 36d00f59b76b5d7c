// Every route refuses a missing or wrong credential, over real HTTP, and nothing is started or
// changed by a refused request. The routes come from the app's own route table, so a route added
// later is covered without touching this file.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RouteAccess } from '../../src/api/app';
import { sha, uniqueService } from '../helpers/temporal';
import { ALERTMANAGER_TOKEN, assertProblem, call, heldSpec, signedHeaders, startApiRig, TOKENS, WEBHOOK_SECRET, type ApiRig } from './helpers';

let api: ApiRig;
let routes: RouteAccess[];
let releaseId: string;

/** Public on purpose: probes, the documentation of the API and the dashboard's page and code (which hold no data). */
const PUBLIC = ['/healthz', '/readyz', '/openapi.json', '/docs', '/ui'];

/**
 * The routes only an admin may call, written out: the route table cannot be trusted to say which
 * routes should be admin-only, since a route downgraded to operator would change it too.
 */
const ADMIN_ONLY = ['DELETE /v1/drills/:service/:environment'];

before(async () => {
  api = await startApiRig();
  routes = api.app.routeTable.filter((r) => r.method !== 'HEAD');
  const service = uniqueService('auth');
  const started = await call<{ releaseId: string }>(api.url, 'POST', '/v1/releases', { token: TOKENS.operator.token, body: heldSpec(service, sha(service)) });
  releaseId = started.body.releaseId;
});
after(async () => {
  await api?.close();
});

/** A concrete URL for a route pattern, aimed at the release in flight so a wrongly accepted command would show. */
function concrete(url: string): string {
  const [, service, environment, version] = releaseId.split('/');
  return url
    .replace(':id', encodeURIComponent(releaseId))
    .replace(':service', service!)
    .replace(':environment', environment!)
    .replace(':version', version!)
    .replace('*', 'index.html');
}

function bodyFor(route: RouteAccess): unknown {
  if (route.method !== 'POST') return undefined;
  if (route.url === '/v1/releases') return heldSpec(uniqueService('never'), sha('never'));
  if (route.url.startsWith('/v1/releases/')) return { reason: 'should be refused' };
  if (route.url === '/v1/alerts/alertmanager') return { version: '4', groupKey: 'g', status: 'firing', receiver: 'rampart', alerts: [] };
  return { service: uniqueService('never'), version: sha('never2') };
}

test('the only public routes are the probes and the documentation', () => {
  const open = routes.filter((r) => r.access.kind === 'public').map((r) => r.url);
  for (const url of open) assert.ok(PUBLIC.some((p) => url === p || url.startsWith(`${p}/`)), `${url} is public`);
  assert.ok(routes.length >= 20, `${routes.length} routes`);
});

test('every token route answers 401 without a token and with a wrong one, 403 for a role too low', async () => {
  const tokenRoutes = routes.filter((r) => r.access.kind === 'token');
  assert.ok(tokenRoutes.length >= 17, `${tokenRoutes.length} token routes`);
  for (const route of tokenRoutes) {
    const url = concrete(route.url);
    const body = bodyFor(route);
    for (const token of [null, 'not-a-real-token-at-all', `${TOKENS.admin.token}x`, ALERTMANAGER_TOKEN]) {
      const problem = assertProblem(await call(api.url, route.method, url, { token, body }), 401);
      assert.equal(problem.errors?.[0]?.field, 'header.authorization', `${route.method} ${route.url}`);
    }
    const malformed = await call(api.url, route.method, url, { headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }, body });
    assertProblem(malformed, 401);
    assert.equal(malformed.headers.get('www-authenticate'), 'Bearer realm="rampart"');
    if (route.access.kind === 'token' && route.access.role !== 'viewer') {
      assertProblem(await call(api.url, route.method, url, { token: TOKENS.viewer.token, body }), 403);
    }
    if (route.access.kind === 'token' && route.access.role === 'admin') {
      const problem = assertProblem(await call(api.url, route.method, url, { token: TOKENS.operator.token, body }), 403);
      assert.match(problem.detail, /has the operator role; this route needs admin/, `${route.method} ${route.url}`);
    }
  }
  const status = await api.rig.releases.status(releaseId);
  assert.equal(status.state, 'running', 'no refused command reached the release');
  assert.deepEqual(
    status.history.filter((t) => t.actor && t.actor !== TOKENS.operator.name).map((t) => t.event),
    [],
  );
});

test('the admin-only routes are exactly the listed ones, and an operator token is refused on each', async () => {
  const admin = routes.filter((r) => r.access.kind === 'token' && r.access.role === 'admin').map((r) => `${r.method} ${r.url}`);
  assert.deepEqual(admin.sort(), [...ADMIN_ONLY].sort(), 'a route left the admin role, or a new admin route is missing from ADMIN_ONLY');
  for (const entry of ADMIN_ONLY) {
    const [method, url] = entry.split(' ') as [string, string];
    const route = routes.find((r) => r.method === method && r.url === url)!;
    for (const token of [TOKENS.operator.token, TOKENS.viewer.token]) {
      assertProblem(await call(api.url, method, concrete(url), { token, body: bodyFor(route) }), 403);
    }
  }
});

test('every signed route refuses a missing, malformed or wrong signature, and starts nothing', async () => {
  const signed = routes.filter((r) => r.access.kind === 'signature');
  assert.deepEqual(signed.map((r) => r.url).sort(), ['/v1/webhooks/ci', '/v1/webhooks/github']);
  const service = uniqueService('unsigned');
  const body = JSON.stringify({ service, version: sha(service), spec: { strategy: heldSpec(service, sha(service)).strategy } });
  const headers = { 'x-github-event': 'workflow_run', 'x-github-delivery': 'd-1', 'x-rampart-delivery': 'd-1' };
  for (const route of signed) {
    const cases: Record<string, string>[] = [
      { 'content-type': 'application/json' },
      { 'content-type': 'application/json', 'x-hub-signature-256': 'sha256=' },
      { 'content-type': 'application/json', 'x-hub-signature-256': 'sha1=0123456789abcdef0123456789abcdef01234567' },
      signedHeaders(body, {}, `${WEBHOOK_SECRET}-other`),
      signedHeaders(`${body} `),
      // An API token, even an admin's, is no signature.
      { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.admin.token}` },
    ];
    for (const extra of cases) {
      const problem = assertProblem(await call(api.url, 'POST', route.url, { raw: body, headers: { ...headers, ...extra } }), 401);
      assert.equal(problem.errors?.[0]?.field, 'header.x-hub-signature-256');
    }
  }
  assert.deepEqual(await api.rig.releases.list({ service }), []);
  assert.equal(await api.rig.releases.lane(service, 'production'), null, 'no lane was even started');
});

test('the Alertmanager route refuses a missing or wrong token and a viewer token', async () => {
  const route = '/v1/alerts/alertmanager';
  const payload = bodyFor({ method: 'POST', url: route, access: { kind: 'alertmanager' } });
  assertProblem(await call(api.url, 'POST', route, { body: payload }), 401);
  assertProblem(await call(api.url, 'POST', route, { token: `${ALERTMANAGER_TOKEN}x`, body: payload }), 401);
  assertProblem(await call(api.url, 'POST', route, { token: TOKENS.viewer.token, body: payload }), 403);
  assert.equal((await call(api.url, 'POST', route, { token: ALERTMANAGER_TOKEN, body: payload })).status, 200);
  assert.equal((await call(api.url, 'POST', route, { token: TOKENS.operator.token, body: payload })).status, 200);
});
