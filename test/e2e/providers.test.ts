import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { formatPromDuration } from '../../src/engine/duration';
import { LocalDeployer } from '../../src/providers/deploy/local';
import { AutocannonLoadGenerator } from '../../src/providers/load/autocannon';
import { renderQuery, type MetricQuery, type Track } from '../../src/providers/metrics/provider';
import { PrometheusMetricProvider } from '../../src/providers/metrics/prometheus';
import { HaproxyRouter } from '../../src/providers/traffic/haproxy';
import { DEFAULT_ERROR_RATE_QUERY } from '../../src/spec/release-spec';
import { PROJECT_ROOT } from '../../src/paths';
import { freePort } from '../../src/net';
import { freeStackPorts, localStackStatus, startLocalStack, type LocalStack } from '../../src/stack/local-stack';

// The real providers on the real stack: HAProxy, Prometheus and Alertmanager as processes, demo instances
// started by the LocalDeployer, traffic through HAProxy's frontend.

const SERVICE = 'demo';
const GOOD = 'a1a1a1a';
const FAULTY = 'b2b2b2b';
const SLOW = 'c3c3c3c';
const BEHAVIOUR = { [GOOD]: { errorRate: 0, latencyMs: 0 }, [FAULTY]: { errorRate: 0.5, latencyMs: 0 }, [SLOW]: { errorRate: 0, latencyMs: 150 } };
const INTERNAL = { header: 'x-rampart-audience', value: 'internal' };

let workDir: string | undefined;
let stack: LocalStack | undefined;
let deployer: LocalDeployer | undefined;
let webhook: http.Server | undefined;
let router: HaproxyRouter;
let prometheus: PrometheusMetricProvider;
let stablePort: number;
let canaryPort: number;
const alertPosts: Array<{ authorization: string | undefined; body: AlertmanagerPost }> = [];

interface AlertmanagerPost {
  status: string;
  alerts: Array<{ status: string; labels: Record<string, string> }>;
}

function demoDeployer(stateDir: string): LocalDeployer {
  return new LocalDeployer({
    command: [process.execPath, '--import', 'tsx', 'examples/demo-service/server.ts'],
    stablePort,
    canaryPort,
    stateDir,
    env: { DEMO_BEHAVIOUR: JSON.stringify(BEHAVIOUR) },
  });
}

before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'rampart-e2e-'));
  webhook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      alertPosts.push({ authorization: req.headers.authorization, body: JSON.parse(body) as AlertmanagerPost });
      res.end();
    });
  });
  await new Promise<void>((resolve) => webhook!.listen(0, '127.0.0.1', resolve));
  const webhookPort = (webhook.address() as net.AddressInfo).port;

  [stablePort, canaryPort] = [await freePort(), await freePort()];
  stack = await startLocalStack({
    dir: path.join(workDir, 'stack'),
    services: [{ name: SERVICE, stablePort, canaryPort }],
    ports: await freeStackPorts(),
    alertWebhookUrl: `http://127.0.0.1:${webhookPort}/v1/alerts/alertmanager`,
    alertWebhookToken: randomBytes(16).toString('hex'),
  });
  deployer = demoDeployer(path.join(workDir, 'deploy'));
  await Promise.all([deployer.deploy(SERVICE, 'stable', GOOD), deployer.deploy(SERVICE, 'canary', FAULTY)]);
  router = new HaproxyRouter({ socket: stack.haproxySocket });
  await router.waitUntilUp(SERVICE);
  prometheus = new PrometheusMetricProvider({ url: stack.prometheusUrl, timeoutMs: 2_000 });
});

after(async () => {
  // Everything this file started, whatever failed.
  await Promise.allSettled([deployer?.stop(SERVICE, 'stable'), deployer?.stop(SERVICE, 'canary')]);
  await stack?.stop().catch((error: unknown) => console.error(error));
  if (webhook) await new Promise((resolve) => webhook!.close(resolve));
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** Sends requests through HAProxy's frontend and counts the answers by the version that served them. */
async function sendThroughFrontend(count: number, headers: Record<string, string> = {}): Promise<Record<string, number>> {
  const byVersion: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next++ < count) {
      const response = await fetch(`${stack!.frontendUrl}/`, { headers });
      await response.arrayBuffer();
      const version = response.headers.get('x-version') ?? `no version (HTTP ${response.status})`;
      byVersion[version] = (byVersion[version] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return byVersion;
}

function errorRateQuery(track: Track, service = SERVICE): MetricQuery {
  const version = track === 'canary' ? FAULTY : GOOD;
  return {
    query: renderQuery(DEFAULT_ERROR_RATE_QUERY, { service, version, track, window: formatPromDuration(30_000) }),
    check: 'error-rate',
    service,
    version,
    track,
  };
}

async function eventually<T>(what: string, timeoutMs: number, attempt: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await attempt();
    if (value !== undefined) return value;
    await sleep(250);
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms`);
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

test('the stack reports HAProxy, Prometheus and Alertmanager running and ready', async () => {
  const status = await localStackStatus(stack!.dir);
  assert.deepEqual(
    status.map(({ component, running, ready }) => ({ component, running, ready })),
    ['haproxy', 'prometheus', 'alertmanager'].map((component) => ({ component, running: true, ready: true })),
  );
});

test('the shipped alert rule passes its promtool unit tests', async () => {
  const rulesDir = path.join(PROJECT_ROOT, 'deploy', 'prometheus', 'rules');
  const { stdout } = await promisify(execFile)('promtool', ['test', 'rules', 'rampart.rules.test.yml'], { cwd: rulesDir });
  assert.match(stdout, /SUCCESS/);
});

test('a repeated deploy, from this deployer or from a new one, finds the running instance instead of starting another', async () => {
  const first = await deployer!.instance(SERVICE, 'stable');
  assert.ok(first, 'the stable slot runs an instance');
  await deployer!.deploy(SERVICE, 'stable', GOOD);
  await demoDeployer(path.join(workDir!, 'deploy')).deploy(SERVICE, 'stable', GOOD);
  assert.equal((await deployer!.instance(SERVICE, 'stable'))?.pid, first.pid);
  assert.deepEqual(await deployer!.slots(SERVICE), { stable: GOOD, canary: FAULTY });
});

test('setRoutes sends a quarter of the frontend requests to the canary and returns what HAProxy reads back', async () => {
  const applied = await router.setRoutes(SERVICE, { canaryWeight: 25, internalAudience: null });
  assert.deepEqual(applied, { canaryWeight: 25, internalAudience: null });
  assert.deepEqual(await router.getRoutes(SERVICE), applied);

  const byVersion = await sendThroughFrontend(400);
  assert.equal((byVersion[GOOD] ?? 0) + (byVersion[FAULTY] ?? 0), 400, `every request served by a slot: ${JSON.stringify(byVersion)}`);
  const canaryShare = (100 * (byVersion[FAULTY] ?? 0)) / 400;
  assert.ok(Math.abs(canaryShare - 25) <= 8, `canary share ${canaryShare}% is 25% ± 8 points`);
});

test('the internal audience reaches the canary at weight 0 while everyone else stays on stable', async () => {
  const applied = await router.setRoutes(SERVICE, { canaryWeight: 0, internalAudience: INTERNAL });
  assert.deepEqual(applied, { canaryWeight: 0, internalAudience: INTERNAL });

  assert.deepEqual(await sendThroughFrontend(50, { 'x-rampart-audience': 'internal' }), { [FAULTY]: 50 });
  assert.deepEqual(await sendThroughFrontend(10, { 'X-Rampart-Audience': 'internal' }), { [FAULTY]: 10 }, 'header names are case-insensitive');
  assert.deepEqual(await sendThroughFrontend(50), { [GOOD]: 50 });
  assert.deepEqual(await sendThroughFrontend(10, { 'x-rampart-audience': 'internal-not' }), { [GOOD]: 10 }, 'the value must match exactly');

  // Switching the rule off is live too.
  assert.deepEqual(await router.setRoutes(SERVICE, { canaryWeight: 0, internalAudience: null }), { canaryWeight: 0, internalAudience: null });
  assert.deepEqual(await sendThroughFrontend(20, { 'x-rampart-audience': 'internal' }), { [GOOD]: 20 });
});

test('the router refuses routes it cannot apply, and gives up on an unreachable HAProxy with context', async () => {
  await assert.rejects(router.setRoutes(SERVICE, { canaryWeight: 101, internalAudience: null }), /canaryWeight must be an integer from 0 to 100/);
  await assert.rejects(router.setRoutes('no-such-service', { canaryWeight: 10, internalAudience: null }), /no-such-service.*No such backend/);
  const unreachable = new HaproxyRouter({ socket: path.join(workDir!, 'missing.sock'), attempts: 3, backoffMs: 10 });
  await assert.rejects(unreachable.getRoutes(SERVICE), /missing\.sock.*after 3 attempts/);
});

test('Prometheus measures the canary error rate against stable from HAProxy, and a query without data is null', { timeout: 60_000 }, async () => {
  await router.setRoutes(SERVICE, { canaryWeight: 50, internalAudience: null });
  await sendThroughFrontend(400);
  // Two scrapes (1 s apart) after the burst, so the first answer counts all of it, not a part taken mid-burst.
  await new Promise((resolve) => setTimeout(resolve, 2_500));

  const [canary, stable] = await eventually('error rates of both tracks in Prometheus', 30_000, async () => {
    const values = await Promise.all([prometheus.query(errorRateQuery('canary')), prometheus.query(errorRateQuery('stable'))]);
    return values.every((value) => value !== null) ? (values as [number, number]) : undefined;
  });
  assert.ok(canary > 0.3 && canary < 0.7, `canary error rate ${canary} is about 0.5`);
  assert.equal(stable, 0);
  assert.ok(canary - stable > 0.02, 'the canary is more than 2 points worse: the analysis would fail it');

  assert.equal(await prometheus.query(errorRateQuery('canary', 'no-such-service')), null, 'empty vector');
  assert.equal(await prometheus.query({ ...errorRateQuery('canary'), query: 'sum(haproxy_server_http_responses_total{proxy="demo"}) / 0' }), null, 'division by zero');
  assert.equal(await prometheus.isOnline(), true);
});

test('Alertmanager posts the firing canary alert to the webhook with the bearer token', { timeout: 60_000 }, async () => {
  const post = await eventually('an alert post', 30_000, async () =>
    alertPosts.find((p) => p.body.alerts.some((a) => a.labels.alertname === 'RampartCanaryErrorRateAboveStable' && a.status === 'firing')),
  );
  assert.equal(post.authorization, `Bearer ${stack!.alertWebhookToken}`);
  const alert = post.body.alerts.find((a) => a.labels.alertname === 'RampartCanaryErrorRateAboveStable')!;
  assert.equal(alert.labels.service, SERVICE);
  assert.equal(alert.labels.track, 'canary');
});

test('a load test counts the faulty version’s 500s as errors', async () => {
  const generator = new AutocannonLoadGenerator({ baseUrl: `http://127.0.0.1:${canaryPort}` });
  const result = await generator.run({
    service: SERVICE,
    version: FAULTY,
    load: { rate: 100, connections: 4, duration: 1_000, paths: ['/'], maxErrorRate: 0.01, maxP99LatencyMs: 500 },
  });
  assert.ok(result.requests >= 50, `${result.requests} requests at 100/s for 1 s`);
  assert.ok(result.errorRate > 0.3 && result.errorRate < 0.7, `error rate ${result.errorRate} is about 0.5`);
  assert.equal(result.errors, Math.round(result.errorRate * result.requests));
});

test('a load test shows the latency of a slow version, next to a fast one', { timeout: 30_000 }, async () => {
  await deployer!.deploy(SERVICE, 'canary', SLOW);
  assert.deepEqual(await deployer!.slots(SERVICE), { stable: GOOD, canary: SLOW });

  const generator = new AutocannonLoadGenerator({
    baseUrl: (request) => `http://127.0.0.1:${request.version === SLOW ? canaryPort : stablePort}`,
    progressIntervalMs: 200,
  });
  const load = { rate: 40, connections: 8, duration: 2_000, paths: ['/', '/checkout'], maxErrorRate: 0.01, maxP99LatencyMs: 500 };
  let progressCalls = 0;
  const slow = await generator.run({ service: SERVICE, version: SLOW, load }, () => progressCalls++);
  const fast = await generator.run({ service: SERVICE, version: GOOD, load });

  assert.ok(progressCalls >= 5, `onProgress called ${progressCalls} times in 2 s at 200 ms`);
  for (const result of [slow, fast]) {
    assert.equal(result.errors, 0);
    assert.ok(result.requests >= 60 && result.requests <= 90, `${result.requests} requests at 40/s for 2 s`);
    assert.ok(result.latencyMs.p50 <= result.latencyMs.p95 && result.latencyMs.p95 <= result.latencyMs.p99);
  }
  assert.ok(slow.latencyMs.p50 >= 150 && slow.latencyMs.p50 < 1_000, `slow p50 ${slow.latencyMs.p50} ms reflects its 150 ms`);
  assert.ok(fast.latencyMs.p99 < 100, `fast p99 ${fast.latencyMs.p99} ms`);
});

test('stop is idempotent and frees the slot port', async () => {
  await deployer!.stop(SERVICE, 'canary');
  await deployer!.stop(SERVICE, 'canary');
  assert.deepEqual(await deployer!.slots(SERVICE), { stable: GOOD, canary: null });
  assert.equal(await portOpen(canaryPort), false);
});

test('with Prometheus down, isOnline is false and queries throw', async () => {
  await stack!.stop('prometheus');
  assert.equal(await prometheus.isOnline(), false);
  await assert.rejects(prometheus.query(errorRateQuery('canary')), /could not answer check error-rate/);
});
