// The edges of Rampart, attacked the way issue 11 found them open: the compose load balancer's
// /metrics block, the client address behind it, what viewers read in /v1/services, and the
// connection to a secured Temporal. Real HAProxy (the compose api-lb.cfg, ports adapted), real HTTP,
// a real dev server and worker; for Temporal over TLS, real HAProxy terminating mTLS in front of it.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import pino from 'pino';
import { parse as parseYaml } from 'yaml';
import { buildApp } from '../../src/api/app';
import { REDACTED } from '../../src/api/routes/services';
import { listen } from '../../src/api/server';
import { apiSettingsFromConfig, type ApiSettings } from '../../src/api/settings';
import { ConfigError, loadConfig } from '../../src/config';
import { canConnect, freePort } from '../../src/net';
import { PROJECT_ROOT } from '../../src/paths';
import { SpecRegistry } from '../../src/api/spec-registry';
import { OutboundAllowlist } from '../../src/providers/outbound';
import { temporalConnectionOptions } from '../../src/temporal/connect';
import { startRig, waitFor, type TestRig } from '../helpers/temporal';
import { call, specsDir, TEST_SETTINGS, TOKENS } from '../api/helpers';

const HAPROXY = '/usr/sbin/haproxy';
const API_LB_CFG = join(PROJECT_ROOT, 'deploy/compose/haproxy/api-lb.cfg');
const SECRETS = {
  env: 'sentinel-env-secret',
  command: 'sentinel-command-secret',
  prometheus: 'sentinel-prometheus-secret',
  socket: 'sentinel-socket-secret',
  hook: 'sentinel-hook-secret',
  notification: 'sentinel-notification-secret',
};

let rig: TestRig;
let scratch: string;
const cleanups: (() => Promise<void>)[] = [];

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'rampart-edges-'));
  rig = await startRig();
});
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await rig?.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** Log lines of an app, kept to read what it recorded about its callers. */
function capturedLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

async function startApi(settings: Partial<ApiSettings>, extra: { logger?: pino.Logger; specs?: SpecRegistry } = {}): Promise<string> {
  const app = await buildApp({
    releases: rig.releases,
    ping: async () => {
      await rig.client.workflowService.getSystemInfo({});
    },
    settings: { ...TEST_SETTINGS, ...settings },
    ...(extra.specs ? { specs: extra.specs } : {}),
    ...(extra.logger ? { logger: extra.logger } : {}),
  });
  const running = await listen(app, { host: '127.0.0.1', port: 0, graceMs: 2_000 });
  cleanups.push(running.close);
  return running.url;
}

/** A HAProxy this test file started: stopped by its own pid. */
async function runHaproxy(name: string, config: string, ready: () => Promise<boolean>): Promise<void> {
  const file = join(scratch, `${name}.cfg`);
  writeFileSync(file, config);
  const check = spawnSync(HAPROXY, ['-c', '-f', file], { encoding: 'utf8' });
  assert.equal(check.status, 0, `${name}: haproxy -c\n${check.stdout}${check.stderr}`);
  const child: ChildProcess = spawn(HAPROXY, ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4_000)));
  cleanups.push(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  });
  await waitFor(`${name} answers`, async () => {
    if (child.exitCode !== null) throw new Error(`${name} exited: ${stderr}`);
    return ready();
  });
}

/** The compose load balancer's own file, with only its addresses changed: the API replica is `api`. */
async function startApiLb(apiUrl: string): Promise<string> {
  const [front, monitoring] = [await freePort(), await freePort()];
  const original = readFileSync(API_LB_CFG, 'utf8');
  const edits: [RegExp, string][] = [
    [/^ {2}bind :8080$/m, `  bind 127.0.0.1:${front}`],
    [/^ {2}bind :8404$/m, `  bind 127.0.0.1:${monitoring}`],
    [/^ {2}server-template api \d+ api:8080$/m, `  server api1 ${new URL(apiUrl).host}`],
  ];
  let config = original;
  for (const [pattern, replacement] of edits) {
    assert.match(config, pattern, `api-lb.cfg no longer has ${pattern}`);
    config = config.replace(pattern, replacement);
  }
  const url = `http://127.0.0.1:${front}`;
  await runHaproxy(`api-lb-${front}`, config, async () => (await raw(url, '/healthz')).status === 200);
  return url;
}

/** A GET whose path goes on the wire exactly as written (fetch would normalise it first). */
function raw(base: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve) => {
    const req = request({ host: hostname, port, path, method: 'GET', headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('error', () => resolve({ status: 0, type: '', body: '' }));
    req.end();
  });
}

const isMetricsPage = (body: string) => body.includes('# HELP');

describe('the compose API load balancer', { skip: spawnSync(HAPROXY, ['-v']).status === 0 ? false : `${HAPROXY} is not installed` }, () => {
  let api: string;
  let lb: string;
  before(async () => {
    api = await startApi({ metricsPublic: true });
    lb = await startApiLb(api);
  });

  test('blocks /metrics however the path is spelled, while the replica behind it would serve it', async () => {
    // What the replica itself answers: these spellings reach its /metrics route.
    for (const path of ['/metrics', '/%6detrics', '/metric%73', '/%6D%65%74%72%69%63%73']) {
      assert.ok(isMetricsPage((await raw(api, path)).body), `the replica serves ${path}: the test would prove nothing`);
    }
    const spellings = [
      '/metrics',
      '/metrics?format=text',
      '/%6detrics',
      '/%6Detrics',
      '/metric%73',
      '/%6D%65%74%72%69%63%73',
      '//metrics',
      '/./metrics',
      '/%2e/metrics',
      '/x/../metrics',
      '/v1/%2e%2e/metrics',
      '/metrics/',
      '/metrics;x',
    ];
    for (const path of spellings) {
      const answer = await raw(lb, path);
      assert.equal(answer.status, 404, `${path} through the load balancer: ${answer.status}`);
      assert.ok(!isMetricsPage(answer.body), `${path} reached the metrics page through the load balancer`);
    }
  });

  test('lets the API through, including a service whose name is "metrics"', async () => {
    assert.equal((await raw(lb, '/healthz')).status, 200);
    const services = await raw(lb, '/v1/services', { authorization: `Bearer ${TOKENS.viewer.token}` });
    assert.equal(services.status, 200, services.body);
    const lane = await raw(lb, '/v1/services/metrics/production/lane', { authorization: `Bearer ${TOKENS.viewer.token}` });
    assert.equal(lane.status, 404);
    assert.match(lane.type, /application\/problem\+json/, 'the answer is the API’s (no such lane), not the load balancer’s block');
  });

  test("a client's own X-Forwarded-For changes neither its rate-limit key nor its logged address (compose settings)", async () => {
    const compose = parseYaml(readFileSync(join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8')) as { services: { api: { environment: Record<string, string> } } };
    const trusted = compose.services.api.environment.RAMPART_API_TRUST_PROXY!;
    const settings = apiSettingsFromConfig(loadConfig({ RAMPART_API_TRUST_PROXY: trusted }));
    const { logger, lines } = capturedLogger();
    const limited = await startApi({ trustProxy: settings.trustProxy, rateLimit: { max: 3, windowMs: 60_000 } }, { logger });
    const limitedLb = await startApiLb(limited);
    const spoofed = (i: number) => ({ 'x-forwarded-for': `203.0.113.${i}` });

    // The readiness probes of the load balancer count too: only requests from here are counted below.
    const command = await call(limitedLb, 'POST', '/v1/releases/release%2Fnone%2Fproduction%2Fabcdef1/pause', {
      token: TOKENS.operator.token,
      body: { reason: 'spoof' },
      headers: spoofed(1),
    });
    assert.notEqual(command.status, 429);
    const logged = lines.find((line) => line.msg === 'request answered' && line.method === 'POST');
    assert.ok(logged, 'the command was logged');
    assert.equal(logged.client, '127.0.0.1', 'the logged address is the peer HAProxy saw, not the one the client wrote');

    const statuses: number[] = [];
    for (let i = 2; i <= 6; i++) statuses.push((await call(limitedLb, 'GET', '/v1/services', { token: TOKENS.viewer.token, headers: spoofed(i) })).status);
    assert.ok(statuses.includes(429), `five more requests, each with a new X-Forwarded-For, were never limited: ${statuses.join(', ')}`);
  });
});

describe('RAMPART_API_TRUST_PROXY', () => {
  test('never true: a hop count or addresses, and a wrong value is named', () => {
    assert.throws(() => loadConfig({ RAMPART_API_TRUST_PROXY: 'true' }), (error: Error) => error instanceof ConfigError && /RAMPART_API_TRUST_PROXY: true would let every client choose/.test(error.message));
    assert.throws(() => loadConfig({ RAMPART_API_TRUST_PROXY: '10.0.0.0/33' }), /RAMPART_API_TRUST_PROXY: "10\.0\.0\.0\/33": the prefix length is 0 to 32/);
    assert.throws(() => loadConfig({ RAMPART_API_TRUST_PROXY: 'api-lb' }), /RAMPART_API_TRUST_PROXY: "api-lb" is not an address/);
    assert.deepEqual(loadConfig({ RAMPART_API_TRUST_PROXY: '1' }).RAMPART_API_TRUST_PROXY, { hops: 1 });
    assert.deepEqual(loadConfig({ RAMPART_API_TRUST_PROXY: '10.0.3.7, fd00::/8,loopback' }).RAMPART_API_TRUST_PROXY, { addresses: ['10.0.3.7', 'fd00::/8', 'loopback'] });
    assert.equal(loadConfig({}).RAMPART_API_TRUST_PROXY, false);
  });
});

describe('GET /v1/services', () => {
  let api: string;
  before(async () => {
    const hook = { name: 'smoke', url: `https://hooks.example.com/${SECRETS.hook}` };
    // The hook and notification hosts are allowed, as an operator would list them: what is tested is what viewers read.
    const { dir } = specsDir({});
    writeFileSync(
      join(dir, 'vault.yaml'),
      `
github: { repository: acme/vault, workflows: [build] }
spec:
  target:
    type: local
    command: [/srv/vault/bin/server, --token=${SECRETS.command}]
    stablePort: 18201
    canaryPort: 18202
    haproxySocket: /run/${SECRETS.socket}.sock
    prometheusUrl: http://reader:${SECRETS.prometheus}@prometheus.internal:9090
    env: { VAULT_TOKEN: ${SECRETS.env} }
  strategy:
    steps:
      - { name: canary, phase: canary, weight: 10, bake: 30s, before: [${JSON.stringify(hook)}] }
      - { name: full, phase: full, weight: 100 }
  notifications: { webhookUrl: https://hooks.slack.com/services/T0/B0/${SECRETS.notification} }
`,
    );
    const registry = SpecRegistry.load(dir, OutboundAllowlist.parse('hooks.example.com,hooks.slack.com'));
    api = await startApi({}, { specs: registry });
  });

  test('viewers and operators see the shape of each spec, never its commands, environment, URLs or sockets', async () => {
    for (const token of [TOKENS.viewer.token, TOKENS.operator.token]) {
      const answer = await call<{ services: { service: string; spec: Record<string, unknown>; redacted: boolean; github: unknown }[] }>(api, 'GET', '/v1/services', { token });
      assert.equal(answer.status, 200);
      const text = JSON.stringify(answer.body);
      for (const [what, secret] of Object.entries(SECRETS)) assert.ok(!text.includes(secret), `the ${what} secret is shown: ${text}`);
      assert.ok(!text.includes('hooks.slack.com') && !text.includes('prometheus.internal'), 'no outbound address is shown');
      const [vault] = answer.body.services;
      assert.equal(vault?.redacted, true);
      const target = vault!.spec.target as Record<string, unknown>;
      assert.deepEqual([target.type, target.stablePort, (target.env as Record<string, unknown>).VAULT_TOKEN], ['local', 18201, REDACTED]);
      const steps = (vault!.spec.strategy as { steps: { name: string; weight: number; bake: string }[] }).steps;
      assert.deepEqual(steps.map((s) => [s.name, s.weight, s.bake]), [['canary', 10, '30s'], ['full', 100, undefined]]);
    }
  });

  test('an admin, who could change the files, sees them whole', async () => {
    const answer = await call<{ services: { spec: Record<string, unknown>; redacted: boolean }[] }>(api, 'GET', '/v1/services', { token: TOKENS.admin.token });
    assert.equal(answer.body.services[0]?.redacted, false);
    assert.ok(JSON.stringify(answer.body).includes(SECRETS.env));
  });
});

/** A throwaway CA, a server certificate for `temporal.test` only, and a client certificate: written for this run, never kept. */
function issueCertificates(dir: string): Record<'ca' | 'serverPem' | 'clientCert' | 'clientKey' | 'serverKey', string> {
  const openssl = (...args: string[]) => {
    const run = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    assert.equal(run.status, 0, `openssl ${args.join(' ')}\n${run.stderr}`);
  };
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...key, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=rampart test CA');
  for (const [name, extensions] of [
    ['server', 'subjectAltName=DNS:temporal.test\nextendedKeyUsage=serverAuth\n'],
    ['client', 'extendedKeyUsage=clientAuth\n'],
  ] as const) {
    writeFileSync(join(dir, `${name}.ext`), extensions);
    openssl('req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', name === 'server' ? '2' : '3', '-days', '1', '-out', `${name}.crt`, '-extfile', `${name}.ext`);
  }
  writeFileSync(join(dir, 'server.pem'), readFileSync(join(dir, 'server.crt'), 'utf8') + readFileSync(join(dir, 'server.key'), 'utf8'));
  return {
    ca: join(dir, 'ca.crt'),
    serverPem: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
  };
}

describe('Temporal over TLS', () => {
  const API_KEY = 'temporal-test-api-key';
  let certs: ReturnType<typeof issueCertificates>;
  let keyFile: string;

  before(() => {
    const dir = join(scratch, 'tls');
    mkdirSync(dir, { recursive: true });
    certs = issueCertificates(dir);
    keyFile = join(dir, 'api-key');
    writeFileSync(keyFile, `${API_KEY}\n`);
  });

  const secured = (address: string, extra: Record<string, string> = {}) => ({
    TEMPORAL_ADDRESS: address,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.ca,
    TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
    TEMPORAL_TLS_CLIENT_CERT_PATH: certs.clientCert,
    TEMPORAL_TLS_CLIENT_KEY_PATH: certs.clientKey,
    TEMPORAL_API_KEY_FILE: keyFile,
    ...extra,
  });

  test('a wrong or incomplete setting stops the start, naming the variable', () => {
    const refused = (env: Record<string, string>, pattern: RegExp) =>
      assert.throws(() => temporalConnectionOptions(loadConfig(env)), (error: Error) => error instanceof ConfigError && pattern.test(error.message), JSON.stringify(env));
    const { TEMPORAL_TLS_CLIENT_KEY_PATH: _key, ...withoutKey } = secured('temporal:7233');
    refused(withoutKey, /TEMPORAL_TLS_CLIENT_KEY_PATH: mTLS needs the private key/);
    const { TEMPORAL_ADDRESS: _address, ...embedded } = secured('temporal:7233');
    refused(embedded, /TEMPORAL_TLS_SERVER_CA_CERT_PATH: the embedded dev server speaks plaintext only/);
    refused(secured('temporal:7233', { TEMPORAL_TLS: 'false' }), /TEMPORAL_API_KEY: an API key is only sent over TLS/);
    refused(secured('temporal:7233', { TEMPORAL_TLS_CLIENT_KEY_PATH: certs.serverKey }), /TEMPORAL_TLS_CLIENT_KEY_PATH: .* is not the key of the certificate/);
    refused(secured('temporal:7233', { TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(scratch, 'missing.crt') }), /TEMPORAL_TLS_SERVER_CA_CERT_PATH: cannot read .*ENOENT/);
    refused(secured('temporal:7233', { TEMPORAL_TLS_CLIENT_CERT_PATH: keyFile }), /TEMPORAL_TLS_CLIENT_CERT_PATH: .* is not a PEM certificate/);
    refused({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_API_KEY: API_KEY, TEMPORAL_API_KEY_FILE: keyFile }, /TEMPORAL_API_KEY: set TEMPORAL_API_KEY or TEMPORAL_API_KEY_FILE, not both/);

    assert.deepEqual(temporalConnectionOptions(loadConfig({ TEMPORAL_ADDRESS: 'temporal:7233' })), { address: 'temporal:7233' }, 'plaintext unless asked');
    assert.deepEqual(temporalConnectionOptions(loadConfig({ TEMPORAL_ADDRESS: 'cloud:7233', TEMPORAL_API_KEY: API_KEY })), { address: 'cloud:7233', tls: {}, apiKey: API_KEY }, 'an API key turns TLS on');
    assert.equal(temporalConnectionOptions(loadConfig({})), null);
  });

  test('CA, server name, client certificate and API key reach the client and the worker connections', { skip: spawnSync(HAPROXY, ['-v']).status === 0 ? false : `${HAPROXY} is not installed` }, async () => {
    // HAProxy terminates mTLS in front of the dev server, as a secured cluster's frontend would, and
    // lets through only calls that carry the API key.
    const port = await freePort();
    await runHaproxy(
      'temporal-tls',
      [
        'defaults',
        '  mode http',
        '  timeout connect 2s',
        '  timeout client 90s',
        '  timeout server 90s',
        'frontend temporal',
        `  bind 127.0.0.1:${port} ssl crt ${certs.serverPem} ca-file ${certs.ca} verify required alpn h2`,
        `  http-request deny deny_status 401 unless { req.hdr(authorization) -m str "Bearer ${API_KEY}" }`,
        '  default_backend dev',
        'backend dev',
        `  server dev ${rig.server.address} proto h2`,
        '',
      ].join('\n'),
      () => canConnect({ host: '127.0.0.1', port }),
    );
    const address = `127.0.0.1:${port}`;
    const options = temporalConnectionOptions(loadConfig(secured(address)))!;
    const connection = await Connection.connect({ ...options, connectTimeout: 5_000 });
    try {
      const info = await connection.workflowService.getSystemInfo({});
      assert.ok(info.serverVersion, 'the dev server answered through TLS');
    } finally {
      await connection.close();
    }
    const native = await NativeConnection.connect(options);
    try {
      assert.ok((await native.workflowService.getSystemInfo({})).serverVersion, 'the worker connection answered too');
    } finally {
      await native.close();
    }

    // Each setting is needed: without it, the same proxy refuses.
    const { TEMPORAL_API_KEY_FILE: _k, ...withoutKey } = secured(address);
    const { TEMPORAL_TLS_CLIENT_CERT_PATH: _c, TEMPORAL_TLS_CLIENT_KEY_PATH: _p, ...withoutCert } = secured(address);
    const { TEMPORAL_TLS_SERVER_NAME: _n, ...withoutName } = secured(address);
    for (const [what, env] of Object.entries({ withoutKey, withoutCert, withoutName })) {
      await assert.rejects(
        Connection.connect({ ...temporalConnectionOptions(loadConfig(env))!, connectTimeout: 2_000 }).then((c) => c.workflowService.getSystemInfo({}).finally(() => c.close())),
        `connected ${what}`,
      );
    }
  });
});
