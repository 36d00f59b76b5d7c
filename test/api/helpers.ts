import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { buildApp, type ApiDependencies } from '../../src/api/app';
import { signBody, type ApiToken } from '../../src/api/auth';
import { listen } from '../../src/api/server';
import type { ApiSettings } from '../../src/api/settings';
import { SpecRegistry } from '../../src/api/spec-registry';
import { startRig, type TestRig } from '../helpers/temporal';

export const WEBHOOK_SECRET = 'test-webhook-secret';
export const ALERTMANAGER_TOKEN = 'alertmanager-test-token-0123456789';

export const TOKENS = {
  admin: { name: 'ada', role: 'admin', token: 'admin-test-token-0123456789' },
  operator: { name: 'olga', role: 'operator', token: 'operator-test-token-0123456789' },
  viewer: { name: 'vic', role: 'viewer', token: 'viewer-test-token-0123456789' },
} as const satisfies Record<string, ApiToken>;

export const TEST_SETTINGS: Partial<ApiSettings> = {
  tokens: Object.values(TOKENS),
  webhookSecret: WEBHOOK_SECRET,
  alertmanagerToken: ALERTMANAGER_TOKEN,
  rateLimit: { max: 0, windowMs: 60_000 },
  commandWaitMs: 20_000,
};

/** The API of one test file: a real dev server and worker, the app listening on a real port. */
export interface ApiRig {
  rig: TestRig;
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

export async function startApiRig(options: { settings?: Partial<ApiSettings>; specs?: SpecRegistry } = {}): Promise<ApiRig> {
  const rig = await startRig();
  const { app, url, close } = await startApp(rig, options);
  return {
    rig,
    app,
    url,
    async close() {
      await close();
      await rig.close();
    },
  };
}

/** Another app on the same rig (other settings), listening on its own port. */
export async function startApp(
  rig: TestRig,
  options: { settings?: Partial<ApiSettings>; specs?: SpecRegistry; extend?: (app: FastifyInstance) => void } = {},
): Promise<{ app: FastifyInstance; url: string; close(): Promise<void> }> {
  const deps: ApiDependencies = {
    releases: rig.releases,
    ping: async () => {
      await rig.client.workflowService.getSystemInfo({});
    },
    settings: { ...TEST_SETTINGS, ...options.settings },
    ...(options.specs ? { specs: options.specs } : {}),
  };
  const app = await buildApp(deps);
  options.extend?.(app);
  const running = await listen(app, { host: '127.0.0.1', port: 0, graceMs: 5_000 });
  return { app, ...running };
}

export interface Answer<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

export interface CallOptions {
  token?: string | null;
  body?: unknown;
  /** Sent as is (not JSON-encoded) when a string or Buffer. */
  raw?: string | Buffer;
  headers?: Record<string, string>;
}

/** One HTTP call over the network, the JSON answer decoded. */
export async function call<T = Record<string, unknown>>(base: string, method: string, path: string, options: CallOptions = {}): Promise<Answer<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let payload: string | Buffer | undefined = options.raw;
  if (payload === undefined && options.body !== undefined) payload = JSON.stringify(options.body);
  if (payload !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  const response = await fetch(base + path, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON (the metrics page, the docs): kept as text.
  }
  return { status: response.status, headers: response.headers, body: body as T };
}

/** A signed webhook delivery, as GitHub sends it. */
/** One alert of an Alertmanager notification; its status is the notification's unless given. */
export interface NotifiedAlert {
  status?: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  startsAt: string;
  endsAt?: string;
  generatorURL?: string;
  fingerprint: string;
}

/** An Alertmanager webhook notification (version 4), as Alertmanager posts it. */
export function alertmanagerNotification(status: 'firing' | 'resolved', alerts: NotifiedAlert[], groupKey = '{}:{alertname="RampartCanaryErrorRateAboveStable"}') {
  return {
    version: '4',
    groupKey,
    truncatedAlerts: 0,
    status,
    receiver: 'rampart',
    groupLabels: {},
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://alertmanager:9093',
    alerts: alerts.map((alert) => ({ status, annotations: {}, ...alert })),
  };
}

export function signedHeaders(body: string, extra: Record<string, string> = {}, secret = WEBHOOK_SECRET): Record<string, string> {
  return { 'content-type': 'application/json', 'x-hub-signature-256': signBody(secret, body), ...extra };
}

/** A release that stays in flight: a canary step baking 30 s, then full. */
export function heldSpec(service: string, version: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    service,
    version,
    strategy: {
      steps: [
        { name: 'canary', phase: 'canary', weight: 10, bake: '30s' },
        { name: 'full', phase: 'full', weight: 100 },
      ],
    },
    analysis: { interval: '200ms' },
    rollback: { warmWindow: 0 },
    ...extra,
  };
}

export function releaseUrl(releaseId: string): string {
  return `/v1/releases/${encodeURIComponent(releaseId)}`;
}

/** A folder of registered specs, written for one test file. */
export function specsDir(files: Record<string, string>): { dir: string; registry: SpecRegistry } {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-specs-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return { dir, registry: SpecRegistry.load(dir) };
}

export function assertProblem(answer: Answer, status: number): Record<string, unknown> & { detail: string; errors?: { field: string; message: string }[] } {
  if (answer.status !== status) throw new Error(`expected ${status}, got ${answer.status}: ${JSON.stringify(answer.body)}`);
  const type = answer.headers.get('content-type') ?? '';
  if (!type.startsWith('application/problem+json')) throw new Error(`expected a problem document, got ${type}`);
  return answer.body as never;
}

const CLI = resolve(__dirname, '../../src/cli/main.ts');

/** The CLI as an operator runs it: a separate process over HTTP, as the operator unless `env` says otherwise; never throws. */
export async function runCli(apiUrl: string, args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', CLI, ...args], {
      env: { ...process.env, RAMPART_API_URL: apiUrl, RAMPART_TOKEN: TOKENS.operator.token, ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}
