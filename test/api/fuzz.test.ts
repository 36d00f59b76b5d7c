// Property: whatever arrives (malformed JSON, wrong types, unknown fields, oversized, binary,
// unsigned, badly signed, wrong tokens), every route answers a 4xx problem document naming a field,
// or a success; never a 5xx; and no invalid body starts a workflow. In process (app.inject) for
// speed, against the real worker and dev server behind it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { buildApp } from '../../src/api/app';
import { signBody } from '../../src/api/auth';
import { sha, startRig, type TestRig } from '../helpers/temporal';
import { ALERTMANAGER_TOKEN, specsDir, TEST_SETTINGS, TOKENS, WEBHOOK_SECRET } from './helpers';

const BODY_LIMIT = 16 * 1024;
const RUNS_PER_ROUTE = 120;

let rig: TestRig;
let app: FastifyInstance;

before(async () => {
  rig = await startRig();
  const { registry } = specsDir({
    'fuzz-shop.yaml': 'github: { repository: acme/shop }\nspec:\n  service: fuzz-shop\n',
    'fuzz-ci.yaml': 'spec:\n  service: fuzz-ci\n',
  });
  app = await buildApp({
    releases: rig.releases,
    ping: async () => {
      await rig.client.workflowService.getSystemInfo({});
    },
    settings: { ...TEST_SETTINGS, bodyLimit: BODY_LIMIT },
    specs: registry,
  });
  await app.ready();
});
after(async () => {
  await app?.close();
  await rig?.close();
});

type Json = Record<string, unknown>;
type Mutation = (body: Json) => unknown;
type Auth = 'token' | 'signature' | 'alertmanager' | 'public';

interface RouteCase {
  name: string;
  method: 'GET' | 'POST';
  url: fc.Arbitrary<string>;
  auth: Auth;
  /** A valid body, which every generated body departs from in at least one way that makes it invalid. */
  template?: () => Json;
  /** Ways to break the template; each on its own makes the body invalid (or, for GitHub, releases nothing). */
  defects?: Mutation[];
  headers?: fc.Arbitrary<Record<string, string>>;
}

const clone = (value: Json): Json => structuredClone(value);
const set = (path: string[], value: unknown): Mutation => (body) => {
  const copy = clone(body);
  let node: Record<string, unknown> = copy;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
  return copy;
};
const drop = (path: string[]): Mutation => (body) => {
  const copy = clone(body);
  let node: Record<string, unknown> = copy;
  for (const key of path.slice(0, -1)) node = (node[key] ?? {}) as Record<string, unknown>;
  delete node[path[path.length - 1]!];
  return copy;
};

const specTemplate = (): Json => ({
  service: 'fuzz-spec',
  version: sha('fuzz-spec'),
  strategy: { steps: [{ name: 'canary', phase: 'canary', weight: 10, bake: '1s' }, { name: 'full', phase: 'full', weight: 100 }] },
  analysis: { interval: '200ms' },
});
const specDefects = (prefix: string[]): Mutation[] => [
  ...['latest', 'v1.2.3', '', 'sha256:abc', 'main'].map((v) => set(['version'], v)),
  set(['version'], 42),
  set(['version'], null),
  drop(['version']),
  drop(['service']),
  ...['Bad_Name', '', 'a'.repeat(70), '-x'].map((v) => set(['service'], v)),
  set(['service'], 7),
  set([...prefix, 'strategy', 'steps'], []),
  set([...prefix, 'strategy', 'steps'], 'all at once'),
  set([...prefix, 'strategy', 'steps'], [{ name: 'a', phase: 'canary', weight: 50 }, { name: 'b', phase: 'full', weight: 10 }]),
  set([...prefix, 'strategy', 'steps'], [{ name: 'only', phase: 'ramp', weight: 50 }]),
  set([...prefix, 'strategy', 'steps'], [{ name: 'full', phase: 'full', weight: 100, bake: 'soon' }]),
  set([...prefix, 'analysis', 'interval'], 'fast'),
  set([...prefix, 'analysis', 'interval'], -1),
  set([...prefix, 'analysis', 'failureLimit'], 1.5),
  set([...prefix, 'target'], { type: 'kubernetes' }),
  set([...prefix, 'target', 'health'], 'bad'),
  set([...prefix, 'alerts', 'onFiring'], 'panic'),
  set([...prefix, 'surprise'], true),
  set(['commit'], { sha: 'xyz', time: 'yesterday' }),
  set(['pipelineUrl'], 'not a url'),
  set(['requestedBy'], ''),
];

const id = (service: string) => encodeURIComponent(`release/${service}/production/${sha(service)}`);
const commandUrls = fc
  .tuple(fc.constantFrom('pause', 'resume', 'promote', 'abort', 'approve'), fc.boolean())
  .map(([command, encoded]) => (encoded ? `/v1/releases/${id('fuzz-ghost')}/${command}` : `/v1/releases/fuzz-ghost/production/${sha('fuzz-ghost')}/${command}`));

const workflowRunTemplate = (): Json => ({
  action: 'completed',
  workflow_run: { id: 1, name: 'build', head_sha: sha('fuzz-shop'), head_branch: 'main', conclusion: 'success', head_commit: { timestamp: '2026-01-01T00:00:00Z' } },
  repository: { full_name: 'acme/shop' },
  sender: { login: 'octocat' },
});

const alertTemplate = (): Json => ({
  version: '4',
  groupKey: 'g',
  truncatedAlerts: 0,
  status: 'firing',
  receiver: 'rampart',
  groupLabels: {},
  commonLabels: {},
  commonAnnotations: {},
  externalURL: 'http://alertmanager:9093',
  alerts: [{ status: 'firing', labels: { service: 'fuzz-nobody', alertname: 'X' }, annotations: {}, startsAt: '2026-01-01T00:00:00Z' }],
});

const ROUTES: RouteCase[] = [
  { name: 'start', method: 'POST', url: fc.constant('/v1/releases'), auth: 'token', template: specTemplate, defects: specDefects([]) },
  {
    name: 'ci webhook',
    method: 'POST',
    url: fc.constant('/v1/webhooks/ci'),
    auth: 'signature',
    template: () => ({ service: 'fuzz-ci', version: sha('fuzz-ci'), spec: { strategy: specTemplate().strategy } }),
    defects: [
      ...specDefects(['spec']),
      set(['spec'], 'inline'),
      set(['environment'], 'Prod!'),
      // No spec, and none registered for the service: 422.
      (body) => ({ ...(drop(['spec'])(body) as Json), service: 'fuzz-unregistered' }),
    ],
    headers: fc.option(fc.constantFrom('d-1', 'bad id with spaces', 'x'.repeat(300)), { nil: undefined }).map((d): Record<string, string> => (d ? { 'x-rampart-delivery': d } : {})),
  },
  {
    name: 'github webhook',
    method: 'POST',
    url: fc.constant('/v1/webhooks/github'),
    auth: 'signature',
    template: workflowRunTemplate,
    defects: [
      set(['workflow_run', 'head_sha'], 'main'),
      set(['workflow_run', 'head_sha'], 12),
      set(['workflow_run'], null),
      set(['workflow_run', 'id'], 'one'),
      set(['workflow_run', 'head_commit', 'timestamp'], 'yesterday'),
      set(['workflow_run', 'conclusion'], 'failure'),
      set(['workflow_run', 'conclusion'], 0),
      set(['action'], 7),
      set(['action'], 'requested'),
      set(['repository', 'full_name'], 'not a repo'),
      set(['repository', 'full_name'], 'acme/other'),
      drop(['repository']),
      drop(['workflow_run']),
    ],
    headers: fc
      .record({
        event: fc.constantFrom('workflow_run', 'workflow_run', 'workflow_run', 'deployment', 'ping', 'push', '', 'Workflow Run', 'x'.repeat(100)),
        delivery: fc.option(fc.constantFrom('g-1', 'g-2', 'bad delivery'), { nil: undefined }),
      })
      .map(({ event, delivery }): Record<string, string> => ({ 'x-github-event': event, ...(delivery ? { 'x-github-delivery': delivery } : {}) })),
  },
  {
    name: 'alertmanager webhook',
    method: 'POST',
    url: fc.constant('/v1/alerts/alertmanager'),
    auth: 'alertmanager',
    template: alertTemplate,
    defects: [
      set(['version'], '3'),
      set(['version'], 4),
      drop(['alerts']),
      set(['alerts'], 'all of them'),
      set(['alerts'], [{ status: 'pending', labels: {}, startsAt: '2026-01-01T00:00:00Z' }]),
      set(['alerts'], [{ status: 'firing', labels: [], startsAt: '2026-01-01T00:00:00Z' }]),
      set(['alerts'], [{ status: 'firing', labels: { service: 'x' }, startsAt: 'never' }]),
      set(['alerts'], [{ status: 'firing', labels: { service: 5 }, startsAt: '2026-01-01T00:00:00Z' }]),
      set(['status'], 'pending'),
      set(['groupKey'], 5),
      drop(['receiver']),
      set(['truncatedAlerts'], -1),
    ],
  },
  {
    name: 'commands',
    method: 'POST',
    url: commandUrls,
    auth: 'token',
    template: () => ({ reason: 'because' }),
    defects: [set(['reason'], ''), set(['reason'], '   '), set(['reason'], 5), drop(['reason']), set(['reason'], 'x'.repeat(1_001)), set(['extra'], 1), set(['actor'], 'me')],
  },
  {
    name: 'commands on malformed ids',
    method: 'POST',
    url: fc.constantFrom('/v1/releases/nope/pause', '/v1/releases/release%2Fa/abort', '/v1/releases/svc/production/latest/resume', '/v1/releases/Bad/production/abcdef1/promote'),
    auth: 'token',
    template: () => ({ reason: 'because' }),
    defects: [(body) => body],
  },
  {
    name: 'list',
    method: 'GET',
    url: fc
      .dictionary(fc.constantFrom('service', 'environment', 'status', 'limit', 'bogus', 'limit[]'), fc.oneof(fc.string({ maxLength: 80 }), fc.constantFrom('0', '-1', '1001', 'abc', 'running', 'Bad_Svc')))
      .map((query) => `/v1/releases?${new URLSearchParams(query)}`),
    auth: 'token',
  },
  {
    name: 'get',
    method: 'GET',
    url: fc.oneof(
      fc.string({ maxLength: 120 }).map((s) => `/v1/releases/${encodeURIComponent(s)}`),
      fc.tuple(fc.string({ maxLength: 70 }), fc.string({ maxLength: 70 }), fc.string({ maxLength: 320 })).map((parts) => `/v1/releases/${parts.map(encodeURIComponent).join('/')}`),
    ),
    auth: 'token',
  },
  {
    name: 'lane and services',
    method: 'GET',
    url: fc.oneof(
      fc.constant('/v1/services'),
      fc.tuple(fc.string({ maxLength: 70 }), fc.string({ maxLength: 70 })).map(([s, e]) => `/v1/services/${encodeURIComponent(s)}/${encodeURIComponent(e)}/lane`),
    ),
    auth: 'token',
  },
  { name: 'probes and metrics', method: 'GET', url: fc.constantFrom('/healthz', '/metrics', '/openapi.json', '/nowhere', '/v1'), auth: 'public' },
];

/** What is sent: a body made from the template, or from nothing at all. */
function bodies(route: RouteCase): fc.Arbitrary<{ payload: Buffer; contentType: string | undefined }> {
  const template = route.template?.() ?? {};
  const defects = route.defects ?? [(b: Json) => b];
  const mutated = fc
    .record({
      defect: fc.constantFrom(...defects),
      extra: fc.option(fc.tuple(fc.string({ minLength: 1, maxLength: 20 }), fc.jsonValue({ maxDepth: 2 })), { nil: undefined }),
    })
    .map(({ defect, extra }) => {
      const body = defect(clone(template));
      if (extra && body && typeof body === 'object' && !Array.isArray(body)) (body as Json)[`x-${extra[0]}`] = extra[1];
      return JSON.stringify(body);
    });
  const text = fc.oneof(
    { weight: 5, arbitrary: mutated },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null') },
    { weight: 2, arbitrary: fc.tuple(mutated, fc.nat()).map(([json, cut]) => json.slice(0, cut % Math.max(1, json.length))) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.constantFrom('', '{', '[]', 'null', '{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{}}}', '{"a":1,"a":2}') },
    { weight: 1, arbitrary: fc.nat({ max: 4 * BODY_LIMIT }).map((n) => JSON.stringify({ service: 'x'.repeat(BODY_LIMIT + n) })) },
  );
  const payload = fc.oneof(
    { weight: 9, arbitrary: text.map((t) => Buffer.from(t)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)) },
  );
  const contentType = fc.oneof(
    { weight: 8, arbitrary: fc.constant('application/json') },
    { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/xml', 'application/json; charset=latin1', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x') },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
  return fc.record({ payload, contentType });
}

function credentials(auth: Auth): fc.Arbitrary<(payload: Buffer) => Record<string, string>> {
  const bearer = (token: string | null) => (): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});
  switch (auth) {
    case 'token':
      return fc.constantFrom(bearer(null), bearer('wrong-token-0123456789'), bearer(TOKENS.viewer.token), bearer(TOKENS.operator.token), bearer(TOKENS.operator.token), bearer(TOKENS.admin.token));
    case 'alertmanager':
      return fc.constantFrom(bearer(null), bearer('wrong-token-0123456789'), bearer(TOKENS.viewer.token), bearer(ALERTMANAGER_TOKEN), bearer(ALERTMANAGER_TOKEN));
    case 'signature':
      return fc.constantFrom(
        () => ({}),
        () => ({ 'x-hub-signature-256': 'sha256=deadbeef' }),
        (payload: Buffer) => ({ 'x-hub-signature-256': signBody(`${WEBHOOK_SECRET}!`, payload) }),
        (payload: Buffer) => ({ 'x-hub-signature-256': signBody(WEBHOOK_SECRET, payload) }),
        (payload: Buffer) => ({ 'x-hub-signature-256': signBody(WEBHOOK_SECRET, payload) }),
        (payload: Buffer) => ({ 'x-hub-signature-256': signBody(WEBHOOK_SECRET, payload) }),
      );
    case 'public':
      return fc.constantFrom(bearer(null), bearer(TOKENS.viewer.token));
  }
}

/**
 * Every lane a request could have reached: the templates' services and whatever service a generated
 * body names. A lane exists once it has taken in a release, and asking it is strongly consistent.
 */
const lanesNamed = new Map(['fuzz-spec', 'fuzz-ci', 'fuzz-shop', 'fuzz-unregistered'].map((service) => [`${service}\nproduction`, [service, 'production'] as [string, string]]));
function noteLane(payload: Buffer): void {
  try {
    const body = JSON.parse(payload.toString('utf8')) as { service?: unknown; environment?: unknown };
    if (typeof body?.service !== 'string') return;
    const environment = typeof body.environment === 'string' ? body.environment : 'production';
    lanesNamed.set(`${body.service}\n${environment}`, [body.service, environment]);
  } catch {
    // Not JSON: it named no service.
  }
}

test(`≥1,000 generated requests over every route: 4xx problem documents or successes, never a 5xx, and nothing started`, async () => {
  const seen: Record<string, Record<number, number>> = {};
  let total = 0;
  for (const route of ROUTES) {
    const tally: Record<number, number> = (seen[route.name] = {});
    await fc.assert(
      fc.asyncProperty(route.url, bodies(route), credentials(route.auth), route.headers ?? fc.constant({}), async (url, { payload, contentType }, auth, headers) => {
        const sent = { ...headers, ...auth(payload), ...(contentType ? { 'content-type': contentType } : {}) };
        noteLane(payload);
        const answer = await app.inject({ method: route.method, url, headers: sent, ...(route.method === 'POST' ? { payload } : {}) });
        total += 1;
        tally[answer.statusCode] = (tally[answer.statusCode] ?? 0) + 1;
        const where = `${route.method} ${url} ${JSON.stringify(sent)} ${payload.toString('utf8', 0, 300)}`;
        assert.ok(answer.statusCode < 500, `${answer.statusCode} for ${where}: ${answer.body.slice(0, 500)}`);
        assert.ok(![201, 202].includes(answer.statusCode), `started something: ${where}: ${answer.body.slice(0, 300)}`);
        if (answer.statusCode >= 400) {
          assert.match(String(answer.headers['content-type']), /^application\/problem\+json/, where);
          const problem = answer.json<{ type: string; title: string; status: number; detail: string; errors?: { field: string; message: string }[] }>();
          assert.equal(problem.status, answer.statusCode);
          assert.ok(problem.type.startsWith('urn:rampart:problem:') && problem.title && problem.detail, where);
          assert.ok(problem.errors?.length && problem.errors.every((e) => e.field && e.message), `no field named: ${where}: ${answer.body.slice(0, 300)}`);
        }
      }),
      { numRuns: RUNS_PER_ROUTE },
    );
  }
  assert.ok(total >= 1_000, `${total} requests`);
  // Every route saw refusals, and the signed and token routes also got through to validation.
  for (const route of ROUTES.filter((r) => r.auth !== 'public')) {
    const statuses = Object.keys(seen[route.name]!).map(Number);
    assert.ok(statuses.some((s) => s === 401), `${route.name} never refused a credential: ${JSON.stringify(seen[route.name])}`);
    assert.ok(statuses.some((s) => s === 400 || s === 404 || s === 413 || s === 415 || s === 422), `${route.name} never reached validation: ${JSON.stringify(seen[route.name])}`);
  }
  // Releases start only through their lane: no lane, no release.
  for (const [service, environment] of lanesNamed.values()) {
    assert.equal(await rig.releases.lane(service, environment), null, `the lane of ${service} in ${environment} was started`);
  }
  // Printed for whoever tunes the generators.
  console.log(JSON.stringify({ total, seen }));
});
