// Least privilege, tried as an attacker with an ordinary operator token would: what a release may
// touch comes only from registered specs, deployed processes inherit none of Rampart's secrets, and
// hooks reach only allowed hosts, without following redirects. Real HTTP, a real dev server and worker.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildApp } from '../../src/api/app';
import { listen, startApi } from '../../src/api/server';
import { SpecRegistry } from '../../src/api/spec-registry';
import { ConfigError, loadConfig } from '../../src/config';
import { isTerminal, type ReleaseStatus } from '../../src/engine/release-state';
import { freePort } from '../../src/net';
import { INHERITED_ENV, LocalDeployer } from '../../src/providers/deploy/local';
import { OutboundAllowlist } from '../../src/providers/outbound';
import { validateReleaseSpec } from '../../src/spec/parse';
import { DrillClient } from '../../src/temporal/drills';
import { ReleaseNotFoundError } from '../../src/temporal/releases';
import { releaseWorkflowId } from '../../workflows/definitions';
import { sha, startRig, uniqueService, waitFor, type TestRig } from '../helpers/temporal';
import { assertProblem, call, releaseUrl, signedHeaders, TEST_SETTINGS, TOKENS } from '../api/helpers';

const operator = TOKENS.operator.token;

/** An HTTP listener that records every request it gets and answers as told. */
interface Listener {
  url: string;
  hostPort: string;
  calls: { method: string; path: string }[];
  close(): Promise<void>;
}

async function listener(answer: (response: import('node:http').ServerResponse) => void): Promise<Listener> {
  const calls: Listener['calls'] = [];
  const server: Server = createServer((request, response) => {
    calls.push({ method: request.method ?? '', path: request.url ?? '' });
    request.resume();
    request.on('end', () => answer(response));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hostPort: `127.0.0.1:${port}`,
    calls,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const tempDirs: string[] = [];
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `rampart-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

function writeSpecs(files: Record<string, string>): string {
  const dir = tempDir('specs');
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** A canary step that holds long enough to be steered, then full. */
const HELD_STEPS = [
  { name: 'canary', phase: 'canary', weight: 10, bake: '30s' },
  { name: 'full', phase: 'full', weight: 100 },
];

let rig: TestRig;
let api: { url: string; close(): Promise<void> };
let allowed: Listener;
let redirectTarget: Listener;
let redirecting: Listener;
let outside: Listener;
const REGISTERED = uniqueService('reg');
const REDIRECTED = uniqueService('redir');
const ANSWER_SECRET = 'internal-page-contents-0xdeadbeef';

before(async () => {
  allowed = await listener((response) => response.writeHead(204).end());
  redirectTarget = await listener((response) => response.writeHead(200, { 'content-type': 'text/plain' }).end(ANSWER_SECRET));
  redirecting = await listener((response) => response.writeHead(302, { location: `${redirectTarget.url}/landed` }).end(ANSWER_SECRET));
  outside = await listener((response) => response.writeHead(204).end());
  // Everything but `outside` is allowed: a redirect must not be followed even to an allowed host.
  const allowlist = new OutboundAllowlist([allowed.hostPort, redirectTarget.hostPort, redirecting.hostPort]);
  rig = await startRig({ outbound: allowlist });
  const dir = writeSpecs({
    [`${REGISTERED}.yaml`]: [
      'limits: { minBake: 1s, maxWeight: 20 }',
      'spec:',
      '  strategy:',
      '    steps:',
      '      - { name: canary, phase: canary, weight: 10, bake: 30s, approval: true }',
      '      - { name: full, phase: full, weight: 100 }',
      '  analysis: { interval: 2s }',
      `  notifications: { webhookUrl: "${allowed.url}/notify" }`,
      '',
    ].join('\n'),
    [`${REDIRECTED}.yaml`]: [
      'spec:',
      '  strategy:',
      '    steps:',
      `      - { name: canary, phase: canary, weight: 10, before: [{ name: migrate, url: "${redirecting.url}/hook" }] }`,
      '      - { name: full, phase: full, weight: 100 }',
      '',
    ].join('\n'),
  });
  const app = await buildApp({
    releases: rig.releases,
    drills: new DrillClient(rig.client),
    ping: async () => undefined,
    settings: TEST_SETTINGS,
    specs: SpecRegistry.load(dir, allowlist),
  });
  api = await listen(app, { host: '127.0.0.1', port: 0, graceMs: 5_000 });
});

after(async () => {
  await api?.close();
  await rig?.close();
  for (const l of [allowed, redirectTarget, redirecting, outside]) await l?.close();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

async function neverSubmitted(service: string, version: string): Promise<void> {
  // Asked of Temporal by id: the lane and the release exist or they do not; nothing to wait for.
  assert.equal(await rig.releases.lane(service, 'production'), null, `no lane of ${service} was started`);
  await assert.rejects(rig.releases.status(releaseWorkflowId(service, 'production', version)), ReleaseNotFoundError);
}

async function finished(releaseId: string): Promise<ReleaseStatus> {
  return waitFor(`${releaseId} to finish`, async () => {
    const status = await rig.releases.status(releaseId);
    return isTerminal(status.state) ? status : null;
  }, 60_000);
}

describe('targets live on the server', () => {
  test('a local target running a shell command is refused in the API, the CI webhook and a drill; nothing runs, no file is written', async () => {
    const dump = join(tempDir('dump'), 'env.txt');
    const target = {
      type: 'local',
      command: ['/bin/sh', '-c', `env > ${dump}`],
      stablePort: await freePort(),
      canaryPort: await freePort(),
      haproxySocket: '127.0.0.1:1',
      prometheusUrl: 'http://127.0.0.1:1',
    };
    const service = uniqueService('shell');
    const version = sha(service);
    const strategy = { steps: HELD_STEPS };

    const viaApi = assertProblem(await call(api.url, 'POST', '/v1/releases', { token: operator, body: { service, version, target, strategy } }), 400);
    assert.deepEqual(viaApi.errors?.map((e) => e.field), ['body.target.type']);
    assert.match(viaApi.detail, /lives on the server/);

    const delivery = JSON.stringify({ service, version, spec: { target, strategy } });
    const viaCi = assertProblem(await call(api.url, 'POST', '/v1/webhooks/ci', { raw: delivery, headers: signedHeaders(delivery) }), 400);
    assert.deepEqual(viaCi.errors?.map((e) => e.field), ['body.spec.target.type']);

    const drill = { service, every: '1s', spec: { target, strategy } };
    const viaDrill = assertProblem(await call(api.url, 'POST', '/v1/drills', { token: operator, body: drill }), 400);
    assert.deepEqual(viaDrill.errors?.map((e) => e.field), ['body.spec.target.type']);

    // A registered service takes no target either, not even a simulated one.
    const onRegistered = assertProblem(
      await call(api.url, 'POST', '/v1/releases', { token: operator, body: { service: REGISTERED, version: sha('reg-target'), target: { type: 'simulated' } } }),
      400,
    );
    assert.deepEqual(onRegistered.errors?.map((e) => e.field), ['body.target']);
    assert.match(onRegistered.detail, /is registered/);

    await neverSubmitted(service, version);
    await assert.rejects(rig.releases.status(releaseWorkflowId(REGISTERED, 'production', sha('reg-target'))), ReleaseNotFoundError);
    assertProblem(await call(api.url, 'GET', `/v1/drills/${service}/production`, { token: operator }), 404);
    assert.equal(existsSync(dump), false, 'the command never ran');
  });

  test("a registered service is released from its spec with the request's overrides, within its limits", async () => {
    const version = sha('reg-overrides');
    const started = await call<{ releaseId: string }>(api.url, 'POST', '/v1/releases', {
      token: operator,
      body: { service: REGISTERED, version, overrides: { bakes: { canary: '5s' }, weights: { canary: 20 }, analysis: { interval: '5s' } } },
    });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const status = await waitFor('the registered gate', async () => {
      const s = await rig.releases.status(started.body.releaseId);
      return s.state === 'awaiting-approval' ? s : null;
    });
    assert.equal(status.stepCount, 2, 'the registered strategy, not the default one');
    await call(api.url, 'POST', `${releaseUrl(started.body.releaseId)}/approve`, { token: operator, body: { reason: 'reviewed' } });
    await waitFor('the overridden weight', async () => (await rig.releases.status(started.body.releaseId)).routes.canaryWeight === 20);
    await call(api.url, 'POST', `${releaseUrl(started.body.releaseId)}/abort`, { token: operator, body: { reason: 'test done' } });
    // The registered notification host is allowed: the finished release is announced there.
    await waitFor('the notification', async () => allowed.calls.some((c) => c.path === '/notify'));
  });

  test('bad input anywhere is a 4xx problem naming the field, and starts nothing', async () => {
    const version = sha('bad-input');
    const release = (body: Record<string, unknown>) => call(api.url, 'POST', '/v1/releases', { token: operator, body: { service: REGISTERED, version, ...body } });
    const cases: [Record<string, unknown>, string][] = [
      [{ strategy: { steps: HELD_STEPS } }, 'body.strategy'],
      [{ analysis: {} }, 'body.analysis'],
      [{ notifications: { webhookUrl: `${allowed.url}/x` } }, 'body.notifications'],
      [{ overrides: { bakes: { canary: '500ms' } } }, 'body.overrides.bakes.canary'],
      [{ overrides: { bakes: { canary: '25h' } } }, 'body.overrides.bakes.canary'],
      [{ overrides: { bakes: { nowhere: '1m' } } }, 'body.overrides.bakes.nowhere'],
      [{ overrides: { weights: { canary: 30 } } }, 'body.overrides.weights.canary'],
      [{ overrides: { weights: { full: 50 } } }, 'body.overrides.weights.full'],
      [{ overrides: { approvals: { canary: false } } }, 'body.overrides.approvals.canary'],
      [{ overrides: { analysis: { interval: '100ms' } } }, 'body.overrides.analysis.interval'],
      [{ overrides: { analysis: { margins: { 'error-rate': { max: 0.5 } } } } }, 'body.overrides.analysis.margins.error-rate.max'],
      [{ overrides: { analysis: { margins: { nope: { max: 0.01 } } } } }, 'body.overrides.analysis.margins.nope'],
      [{ overrides: { target: { type: 'simulated' } } }, 'body.overrides.target'],
      [{ requestedBy: 'mallory' }, 'body.requestedBy'],
    ];
    for (const [change, field] of cases) {
      const problem = assertProblem(await release(change), 400);
      assert.deepEqual(problem.errors?.map((e) => e.field), [field], JSON.stringify(change));
    }
    await assert.rejects(rig.releases.status(releaseWorkflowId(REGISTERED, 'production', version)), ReleaseNotFoundError);

    // A registered name is not free for an inline spec in another environment.
    const elsewhere = assertProblem(await release({ environment: 'staging', target: { type: 'simulated' } }), 422);
    assert.deepEqual(elsewhere.errors?.map((e) => e.field), ['body.environment']);
    assert.match(elsewhere.detail, /registered for production only/);

    // An inline (simulated) spec may not send hooks or notifications outside the allowlist.
    const service = uniqueService('inline');
    const hook = { name: 'smoke', url: `${outside.url}/hook` };
    const inline = assertProblem(
      await call(api.url, 'POST', '/v1/releases', {
        token: operator,
        body: { service, version, strategy: { steps: [{ ...HELD_STEPS[0], after: [hook] }, HELD_STEPS[1]] }, notifications: { webhookUrl: `${outside.url}/n` } },
      }),
      400,
    );
    assert.deepEqual(inline.errors?.map((e) => e.field), ['body.strategy.steps.0.after.0.url', 'body.notifications.webhookUrl']);
    assert.match(inline.detail, /not in RAMPART_OUTBOUND_HOSTS/);

    const ciCases: [Record<string, unknown>, string][] = [
      [{ service: REGISTERED, version, spec: { strategy: { steps: HELD_STEPS } } }, 'body.spec'],
      [{ service: REGISTERED, version, overrides: { weights: { canary: 99 } } }, 'body.overrides.weights.canary'],
      [{ service, version, spec: { notifications: { webhookUrl: `${outside.url}/n` } } }, 'body.spec.notifications.webhookUrl'],
    ];
    for (const [body, field] of ciCases) {
      const raw = JSON.stringify(body);
      const problem = assertProblem(await call(api.url, 'POST', '/v1/webhooks/ci', { raw, headers: signedHeaders(raw) }), 400);
      assert.deepEqual(problem.errors?.map((e) => e.field), [field], raw);
    }

    const drillCases: [Record<string, unknown>, string][] = [
      [{ service: REGISTERED, every: '1h', spec: { strategy: { steps: HELD_STEPS } } }, 'body.spec.strategy'],
      [{ service: REGISTERED, every: '1h', overrides: { bakes: { canary: '0s' } } }, 'body.overrides.bakes.canary'],
    ];
    for (const [body, field] of drillCases) {
      const problem = assertProblem(await call(api.url, 'POST', '/v1/drills', { token: operator, body }), 400);
      assert.deepEqual(problem.errors?.map((e) => e.field), [field], JSON.stringify(body));
    }
    await neverSubmitted(service, version);
    assertProblem(await call(api.url, 'GET', `/v1/drills/${REGISTERED}/production`, { token: operator }), 404);

    // A registered spec whose limits are malformed stops the start, naming the file and the field.
    const dir = writeSpecs({ 'odd.yaml': 'limits: { maxWeight: 150, surprise: 1 }\nspec: {}\n' });
    assert.throws(
      () => SpecRegistry.load(dir),
      (error: Error) => error instanceof ConfigError && /odd\.yaml: limits\.maxWeight/.test(error.message) && /odd\.yaml: limits\.surprise/.test(error.message),
    );
  });
});

describe('instances inherit nothing', () => {
  test("a spawned instance's environment is the declared one, RAMPART_VERSION, PORT and the allowlist: none of Rampart's variables", async () => {
    const secrets = {
      RAMPART_API_TOKENS: 'ops:admin:super-secret-token-0123456789',
      RAMPART_WEBHOOK_SECRET: 'webhook-secret-0123456789',
      RAMPART_ALERTMANAGER_TOKEN: 'alertmanager-secret-0123456789',
      TEMPORAL_ADDRESS: '127.0.0.1:7233',
      AWS_SECRET_ACCESS_KEY: 'not-for-services',
      NODE_OPTIONS: '--max-old-space-size=64',
    };
    const saved = Object.fromEntries(Object.keys(secrets).map((k) => [k, process.env[k]]));
    Object.assign(process.env, secrets);
    const dir = tempDir('instance');
    const dump = join(dir, 'env.json');
    // Writes its environment, then answers its health path like any instance.
    const script =
      "require('fs').writeFileSync(process.env.DUMP_FILE, JSON.stringify(process.env));" +
      "require('http').createServer((q, a) => a.end('ok')).listen(Number(process.env.PORT), '127.0.0.1');";
    const deployer = new LocalDeployer({
      command: [process.execPath, '-e', script],
      stablePort: await freePort(),
      canaryPort: await freePort(),
      env: { DUMP_FILE: dump, GREETING: 'hello', PORT: '1' },
      stateDir: join(dir, 'state'),
    });
    const service = uniqueService('env');
    const version = sha(service);
    try {
      await deployer.deploy(service, 'canary', version);
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
    try {
      const env = JSON.parse(readFileSync(dump, 'utf8')) as Record<string, string>;
      const allowed = new Set<string>([...INHERITED_ENV, 'DUMP_FILE', 'GREETING', 'RAMPART_VERSION', 'PORT']);
      assert.deepEqual(Object.keys(env).filter((key) => !allowed.has(key)), [], 'only allowed keys reach the instance');
      for (const key of Object.keys(secrets)) assert.equal(env[key], undefined, key);
      assert.equal(env.RAMPART_VERSION, version);
      assert.equal(env.PORT, String(deployer.portOf('canary')), 'no declaration changes the port');
      assert.equal(env.GREETING, 'hello');
      assert.equal(env.PATH, process.env.PATH);
    } finally {
      await deployer.stop(service, 'canary');
    }
  });
});

describe('outbound calls under control', () => {
  test('a hook to a host outside the allowlist stops the start naming the file and field, and is never called', async () => {
    const dir = writeSpecs({
      'bad-hook.yaml': [
        'spec:',
        '  strategy:',
        '    steps:',
        `      - { name: canary, phase: canary, weight: 10, before: [{ name: quit, url: "${outside.url}/-/quit" }] }`,
        '      - { name: full, phase: full, weight: 100 }',
        '',
      ].join('\n'),
    });
    const config = loadConfig({ RAMPART_SPECS_DIR: dir, RAMPART_OUTBOUND_HOSTS: allowed.hostPort, RAMPART_API_PORT: '0', RAMPART_LOG_LEVEL: 'fatal' });
    await assert.rejects(
      startApi({ config, client: rig.client }),
      (error: Error) => error instanceof ConfigError && /bad-hook\.yaml: spec\.strategy\.steps\.0\.before\.0\.url/.test(error.message) && /not in RAMPART_OUTBOUND_HOSTS/.test(error.message),
    );

    // Defence in depth: a spec that reaches the worker another way is refused by the activity, without a call.
    const service = uniqueService('direct');
    const spec = validateReleaseSpec({
      service,
      version: sha(service),
      requestedBy: 'test',
      strategy: { steps: [{ name: 'canary', phase: 'canary', weight: 10, before: [{ name: 'quit', url: `${outside.url}/-/quit` }] }, { name: 'full', phase: 'full', weight: 100 }] },
    });
    const { releaseId } = await rig.releases.submit(spec);
    const status = await finished(releaseId);
    assert.equal(status.outcome?.result, 'rolled-back');
    assert.match(status.outcome?.reason ?? '', /hook quit goes to 127\.0\.0\.1:\d+, which is not in RAMPART_OUTBOUND_HOSTS/);
    assert.deepEqual(outside.calls, [], 'the hook was never called');
  });

  test('a hook answering 302 is not followed: the step fails once, the redirect target sees nothing, and the answer never reaches a viewer', async () => {
    const version = sha('redirected');
    const started = await call<{ releaseId: string }>(api.url, 'POST', '/v1/releases', { token: operator, body: { service: REDIRECTED, version } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const status = await finished(started.body.releaseId);
    assert.equal(status.outcome?.result, 'rolled-back');
    assert.match(status.outcome?.reason ?? '', /hook migrate answered 302, a redirect, which is not followed/);
    assert.deepEqual(redirecting.calls, [{ method: 'POST', path: '/hook' }], 'called once: a redirect is not retried');
    assert.deepEqual(redirectTarget.calls, [], 'the redirect was not followed');
    const viewed = await call(api.url, 'GET', releaseUrl(started.body.releaseId), { token: TOKENS.viewer.token });
    assert.equal(viewed.status, 200);
    assert.doesNotMatch(JSON.stringify(viewed.body), new RegExp(ANSWER_SECRET));
  });
});
