// Shared by the end-to-end release tests, the HAProxy chaos test and the safety benchmarks: services on the
// local stack, the release spec of the local target, traffic through HAProxy's frontend, and reading what
// HAProxy really does next to what the release workflow says it does.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import type { ReleaseStatus, RoutesView } from '../../src/engine/release-state';
import { canConnect, freePort } from '../../src/net';
import { PROJECT_ROOT } from '../../src/paths';
import { LocalDeployer } from '../../src/providers/deploy/local';
import { sameRoutes, type Routes } from '../../src/providers/traffic/router';
import { validateReleaseSpec } from '../../src/spec/parse';
import type { ReleaseSpec } from '../../src/spec/release-spec';
import { freeStackPorts, startLocalStack, type LocalStack, type LocalStackInfo, type StackComponent, type StackRegionOptions, type StackService } from '../../src/stack/local-stack';
import type { ReleaseClient } from '../../src/temporal/releases';
import { startRig, uniqueService, type TestRig } from '../helpers/temporal';

/** How the demo service starts: the command of the local target. */
export const DEMO_COMMAND = [process.execPath, '--import', 'tsx', 'examples/demo-service/server.ts'];
/** Where the worker's LocalDeployer keeps its instance records (the local target has no state dir of its own). */
export const DEPLOY_STATE_DIR = path.join(PROJECT_ROOT, '.run', 'deploy');

export const INTERNAL = { header: 'x-rampart-audience', value: 'internal' };

/** How a demo version behaves (DEMO_BEHAVIOUR of examples/demo-service/server.ts). */
export interface Behaviour {
  errorRate: number;
  latencyMs: number;
  /** Exit this long after the first user request: the port refuses connections from then on. */
  crashAfterMs?: number;
}

/** A healthy version answers in 40 ms and never fails. */
export const HEALTHY: Behaviour = { errorRate: 0, latencyMs: 40 };

/** A service of its own per scenario: its own HAProxy backend, ports, Prometheus series and deploy records. */
export async function allocateService(prefix: string): Promise<Required<StackService>> {
  return { name: uniqueService(prefix), stablePort: await freePort(), canaryPort: await freePort(), healthPath: '/healthz' };
}

export type StepName = 'synthetic' | 'canary-5' | 'canary-20' | 'ramp-10' | 'ramp-50' | 'full';
export const STEP_WEIGHTS: Record<StepName, number> = { synthetic: 0, 'canary-5': 5, 'canary-20': 20, 'ramp-10': 10, 'ramp-50': 50, full: 100 };

export interface LocalSpecOptions {
  /** Behaviour per version, handed to the demo service as DEMO_BEHAVIOUR. */
  behaviour: Record<string, Behaviour>;
  /** The steps, in order; default synthetic, canary-5 (internal users first), ramp-10, ramp-50, full. */
  steps?: StepName[];
  /** Bake per step; defaults: canary-5 3s, canary-20 3s, ramp-10 3s, ramp-50 3s, full 2s. */
  bake?: Partial<Record<StepName, string>>;
  /** Overrides of the synthetic load test. */
  load?: Record<string, unknown>;
  /** Overrides of the analysis (interval 1s and the default checks: error share and p95 latency against stable). */
  analysis?: Record<string, unknown>;
  /** Overrides of the alert policy. */
  alerts?: Record<string, unknown>;
  /** How long the previous version stays warm after a promotion; default 0 (retired at once). */
  warmWindow?: string;
}

/**
 * A walk on the local target: by default synthetic (a load test straight at the new instance and at stable), canary
 * 5% with internal users first, ramp 10% and 50%, full. Short bakes, analysis every second on all the evidence since
 * the step moved traffic (Prometheus scrapes every second). A bake ends only when the judge has decided; how long it
 * may extend waiting for evidence is the analysis' maxBakeFactor.
 */
export function localSpec(
  stack: Pick<LocalStackInfo, 'haproxySocket' | 'prometheusUrl' | 'environment'>,
  service: StackService,
  version: string,
  options: LocalSpecOptions,
): ReleaseSpec {
  const bake = { 'canary-5': '3s', 'canary-20': '3s', 'ramp-10': '3s', 'ramp-50': '3s', full: '2s', ...options.bake };
  const steps = (options.steps ?? ['synthetic', 'canary-5', 'ramp-10', 'ramp-50', 'full']).map((name) => {
    if (name === 'synthetic') {
      return { name, phase: 'synthetic', weight: 0, analysis: false, load: { rate: 40, connections: 4, duration: '2s', paths: ['/'], ...options.load } };
    }
    const phase = name === 'full' ? 'full' : name.startsWith('canary') ? 'canary' : 'ramp';
    return { name, phase, weight: STEP_WEIGHTS[name], bake: bake[name], ...(phase === 'canary' ? { internalAudience: INTERNAL } : {}) };
  });
  return validateReleaseSpec({
    service: service.name,
    environment: stack.environment,
    version,
    requestedBy: 'e2e',
    target: { ...demoTarget(stack, service, stack.prometheusUrl), env: { DEMO_BEHAVIOUR: JSON.stringify(options.behaviour) } },
    strategy: { steps },
    analysis: { interval: '1s', ...options.analysis },
    rollback: { warmWindow: options.warmWindow ?? 0 },
    ...(options.alerts ? { alerts: options.alerts } : {}),
  });
}

/** Each region its own HAProxy frontend, exporter and service slots, on ports nothing else uses (other stacks run on this machine at the same time). */
export async function freeRegionPorts(names: readonly string[], service: string): Promise<StackRegionOptions[]> {
  const regions: StackRegionOptions[] = [];
  for (const name of names) {
    regions.push({
      name,
      ports: { frontend: await freePort(), haproxyExporter: await freePort() },
      services: [{ name: service, stablePort: await freePort(), canaryPort: await freePort() }],
    });
  }
  return regions;
}

/** The demo service on the stack's HAProxy, in the service's two slots: a `local` target. */
function demoTarget(stack: Pick<LocalStackInfo, 'haproxySocket'>, service: StackService, prometheusUrl: string) {
  return { type: 'local', command: DEMO_COMMAND, stablePort: service.stablePort, canaryPort: service.canaryPort, haproxySocket: stack.haproxySocket, prometheusUrl };
}

/**
 * Straight to 100% on the local target, nothing judged: for what a rollback does to processes and routes,
 * where the release itself is not under test. No Prometheus is asked.
 */
export function straightSpec(
  stack: Pick<LocalStackInfo, 'haproxySocket' | 'environment'>,
  service: StackService,
  version: string,
  options: { warmWindow: string; requestedBy?: string },
): ReleaseSpec {
  return validateReleaseSpec({
    service: service.name,
    environment: stack.environment,
    version,
    requestedBy: options.requestedBy ?? 'e2e',
    target: demoTarget(stack, service, 'http://127.0.0.1:9/unused'),
    strategy: { steps: [{ name: 'full', phase: 'full', weight: 100, analysis: false }] },
    rollback: { warmWindow: options.warmWindow },
  });
}

/** A deployer that shares the worker's instance records: what the worker's LocalDeployer finds, this one finds. */
export function demoDeployer(service: StackService, behaviour: Record<string, Behaviour>): LocalDeployer {
  return new LocalDeployer({
    command: DEMO_COMMAND,
    stablePort: service.stablePort,
    canaryPort: service.canaryPort,
    env: { DEMO_BEHAVIOUR: JSON.stringify(behaviour) },
  });
}

/** Stops whatever runs in either slot of the service and forgets its records; never throws. */
export async function removeService(service: StackService): Promise<void> {
  const deployer = demoDeployer(service, {});
  await Promise.allSettled([deployer.stop(service.name, 'stable'), deployer.stop(service.name, 'canary')]);
  await rm(path.join(DEPLOY_STATE_DIR, service.name), { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------------------------
// Traffic through HAProxy's frontend

export interface Answer {
  status: number;
  /** The version that answered (x-version), or null when nothing did. */
  version: string | null;
}

/** One GET through the frontend to the service's backend (chosen by Host). Connection errors answer status 0. */
export function frontendGet(frontendUrl: string, service: string, agent: http.Agent, headers: Record<string, string> = {}, timeoutMs = 5_000): Promise<Answer> {
  const url = new URL(frontendUrl);
  return new Promise((resolve) => {
    const request = http.request(
      { host: url.hostname, port: url.port, path: '/', method: 'GET', agent, headers: { host: service, ...headers }, timeout: timeoutMs },
      (response) => {
        response.resume();
        response.on('end', () => resolve({ status: response.statusCode ?? 0, version: (response.headers['x-version'] as string | undefined) ?? null }));
        response.on('error', () => resolve({ status: 0, version: null }));
      },
    );
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', () => resolve({ status: 0, version: null }));
    request.end();
  });
}

export interface TrafficTally {
  total: number;
  byVersion: Record<string, number>;
  /** 5xx answers and connection errors. */
  failures: number;
}

function emptyTally(): TrafficTally {
  return { total: 0, byVersion: {}, failures: 0 };
}

function count(tally: TrafficTally, answer: Answer): void {
  tally.total++;
  const key = answer.version ?? `none (HTTP ${answer.status})`;
  tally.byVersion[key] = (tally.byVersion[key] ?? 0) + 1;
  if (answer.status === 0 || answer.status >= 500) tally.failures++;
}

/** `count` requests as fast as `concurrency` connections allow; the answers counted by version. */
export async function probe(frontendUrl: string, service: string, requests: number, headers: Record<string, string> = {}, concurrency = 8): Promise<TrafficTally> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const tally = emptyTally();
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next++ < requests) count(tally, await frontendGet(frontendUrl, service, agent, headers));
      }),
    );
  } finally {
    agent.destroy();
  }
  return tally;
}

/**
 * Background user traffic at a steady rate, so the analysis has data: bounded by maxMs whatever happens, and
 * stopped by stop(). Every answer is also reported to onAnswer, with the time it arrived.
 */
export class TrafficLoop {
  readonly tally = emptyTally();
  private stopped = false;
  private running: Promise<void> | undefined;
  private readonly agent: http.Agent;

  constructor(
    private readonly frontendUrl: string,
    private readonly service: string,
    private readonly options: { rate: number; concurrency?: number; maxMs?: number; onAnswer?: (answer: Answer, at: number) => void } = { rate: 100 },
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency ?? 8 });
  }

  start(): this {
    const concurrency = this.options.concurrency ?? 8;
    const gapMs = (1000 * concurrency) / this.options.rate;
    const deadline = Date.now() + (this.options.maxMs ?? 180_000);
    this.running = Promise.all(
      Array.from({ length: concurrency }, async (_, i) => {
        await sleep((gapMs * i) / concurrency);
        while (!this.stopped && Date.now() < deadline) {
          const started = Date.now();
          const answer = await frontendGet(this.frontendUrl, this.service, this.agent);
          count(this.tally, answer);
          this.options.onAnswer?.(answer, Date.now());
          const rest = gapMs - (Date.now() - started);
          // A failed connection answers at once: pause rather than spin while HAProxy is away.
          await sleep(Math.max(answer.status === 0 ? 50 : 0, rest));
        }
      }),
    ).then(() => undefined);
    return this;
  }

  async stop(): Promise<TrafficTally> {
    this.stopped = true;
    await this.running;
    this.agent.destroy();
    return this.tally;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// HAProxy's runtime API, read directly

/** One runtime-API command over the stats socket, answered in full. */
export function runtimeCommand(socket: string, command: string, timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const connection = net.createConnection(socket);
    let answer = '';
    connection.setEncoding('utf8');
    connection.setTimeout(timeoutMs, () => connection.destroy(new Error(`no answer to "${command}" within ${timeoutMs} ms`)));
    connection.on('connect', () => connection.end(`${command}\n`));
    connection.on('data', (chunk: string) => (answer += chunk));
    connection.on('error', reject);
    connection.on('close', (hadError) => {
      if (!hadError) resolve(answer);
    });
  });
}

/** The canary server's weight as HAProxy reports it right now. */
export async function canaryWeight(socket: string, service: string): Promise<number> {
  const answer = (await runtimeCommand(socket, `get weight ${service}/canary`)).trim();
  const match = /^(\d+) \(initial \d+\)$/.exec(answer);
  if (!match) throw new Error(`get weight ${service}/canary answered "${answer}"`);
  return Number(match[1]);
}

export interface ServerCounters {
  /** Sessions the server took (user requests, not health checks). */
  sessions: number;
  responses5xx: number;
  status: string;
}

/** Per-server counters from `show stat`: what HAProxy actually sent where. */
export async function serverCounters(socket: string, service: string): Promise<Record<'stable' | 'canary', ServerCounters>> {
  const [header, ...rows] = (await runtimeCommand(socket, `show stat ${service} 4 -1`)).split('\n').filter((line) => line.trim());
  const columns = (header ?? '').replace(/^# /, '').split(',');
  const at = (name: string) => {
    const index = columns.indexOf(name);
    if (index < 0) throw new Error(`show stat has no ${name} column: ${header}`);
    return index;
  };
  const result: Partial<Record<'stable' | 'canary', ServerCounters>> = {};
  for (const row of rows) {
    const cells = row.split(',');
    const server = cells[at('svname')];
    if (server !== 'stable' && server !== 'canary') continue;
    result[server] = { sessions: Number(cells[at('stot')]), responses5xx: Number(cells[at('hrsp_5xx')]), status: cells[at('status')] ?? '' };
  }
  if (!result.stable || !result.canary) throw new Error(`backend ${service} lacks a stable or canary server`);
  return result as Record<'stable' | 'canary', ServerCounters>;
}

// ---------------------------------------------------------------------------------------------------------------
// What the workflow says against what HAProxy does

export interface RoutesObservation {
  status: ReleaseStatus;
  haproxy: Routes;
}

const ROUTE_ACTIVITIES = new Set(['setRoutes', 'resetRoutes']);

/**
 * The workflow's verified routes and HAProxy's, read so that they can be compared: status, HAProxy, the pending
 * activities, status again. Null when a traffic activity was in flight or the status changed in between (a weight
 * change half-way is not a disagreement). Temporal's queries are consistent, so an activity that completed before
 * the second read shows in it.
 */
export async function observeRoutes(
  releases: ReleaseClient,
  client: Client,
  releaseId: string,
  readRoutes: () => Promise<Routes>,
): Promise<RoutesObservation | null> {
  const before = await releases.status(releaseId);
  const haproxy = await readRoutes();
  const described = await client.workflow.getHandle(releaseId).describe();
  const pending = (described.raw.pendingActivities ?? []).map((activity) => activity.activityType?.name ?? '');
  const after = await releases.status(releaseId);
  if (pending.some((name) => ROUTE_ACTIVITIES.has(name))) return null;
  if (before.step?.name !== after.step?.name || before.history.length !== after.history.length || !sameView(before.routes, after.routes)) return null;
  return { status: after, haproxy };
}

export function sameView(a: RoutesView, b: RoutesView): boolean {
  return sameRoutes(a, b);
}

/** The canary weights the release moved to, in order, from its history. */
export function movedWeights(status: ReleaseStatus): number[] {
  return status.history.filter((event) => event.event === 'traffic-moved').map((event) => Number(/canary (\d+)%/.exec(event.reason ?? '')?.[1]));
}

export function portOpen(port: number): Promise<boolean> {
  return canConnect({ host: '127.0.0.1', port });
}

/** Runs cleanups newest first, each bounded, none able to stop the others. */
export class Cleanups {
  private readonly list: Array<{ what: string; run: () => Promise<unknown> | unknown }> = [];

  add(what: string, run: () => Promise<unknown> | unknown): void {
    this.list.push({ what, run });
  }

  async run(timeoutMs = 30_000): Promise<void> {
    while (this.list.length > 0) {
      const { what, run } = this.list.pop()!;
      try {
        await Promise.race([
          Promise.resolve().then(run),
          sleep(timeoutMs, undefined, { ref: false }).then(() => {
            throw new Error(`timed out after ${timeoutMs} ms`);
          }),
        ]);
      } catch (error) {
        console.error(`cleanup "${what}" failed: ${(error as Error).message}`);
      }
    }
  }
}

/**
 * A dev server with an in-process worker, and the local stack for `services`, started side by side;
 * both are added to `cleanups` (the stack stops after the worker), and a failure of either throws.
 */
export async function startRigAndStack(
  cleanups: Cleanups,
  options: { dir: string; services: StackService[]; components?: StackComponent[]; alertWebhookUrl?: string },
): Promise<{ rig: TestRig; stack: LocalStack }> {
  const [rigStarted, stackStarted] = await Promise.allSettled([
    startRig(),
    (async () =>
      startLocalStack({
        dir: options.dir,
        services: options.services,
        ports: await freeStackPorts(),
        ...(options.components ? { components: options.components } : {}),
        ...(options.alertWebhookUrl ? { alertWebhookUrl: options.alertWebhookUrl } : {}),
        alertWebhookToken: randomBytes(16).toString('hex'),
        scrapeInterval: '1s',
      }))(),
  ]);
  if (stackStarted.status === 'fulfilled') cleanups.add('stack', () => stackStarted.value.stop());
  if (rigStarted.status === 'fulfilled') cleanups.add('rig', () => rigStarted.value.close());
  if (rigStarted.status === 'rejected') throw rigStarted.reason;
  if (stackStarted.status === 'rejected') throw stackStarted.reason;
  return { rig: rigStarted.value, stack: stackStarted.value };
}
