// Releases in flight on separate worker processes, measured the same way on any Temporal: the
// PostgreSQL cluster and the dev server side by side in one run. Each worker is its own process, so
// its memory and CPU are its own; the Temporal server's and PostgreSQL's CPU are read from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { PROJECT_ROOT } from '../src/paths';
import { ReleaseClient } from '../src/temporal/releases';
import { fastSpec } from '../test/helpers/specs';
import { sha, waitFor, workerProcessEnv } from '../test/helpers/temporal';
import { laneWorkflowId, TASK_QUEUE } from '../workflows/definitions';
import { benchApi, type ApiThroughput } from './api';
import { benchEngine, type EngineResult } from './engine';
import { cpuPercentSince, readCpu, residentMiB } from './proc';
import { inPool, percentile, round } from './stats';

/** A Temporal to measure, and the processes whose CPU is its cost. */
export interface TemporalUnderTest {
  label: string;
  address: string;
  namespace: string;
  /** The Temporal server's processes (their descendants are counted too). */
  serverPids: number[];
  /** PostgreSQL's postmaster (its backends are its children), or none. */
  postgresPids: number[];
}

export interface InFlightOptions {
  /** Releases in flight, one level after the other, each cleared away before the next. */
  levels: number[];
  /** Worker processes polling the release task queue. */
  workers: number;
  /** How long each level is watched once all its releases are started. */
  observeMs: number;
  /** Starting stops when this is spent; the level is then measured with what did start. */
  startBudgetMs: number;
  /** Submissions (lane update-with-start, as the API does) in flight at once while starting. */
  submitConcurrency: number;
  /** V8 heap limit of each worker process; the SDK sizes its workflow cache from it. */
  workerHeapMiB: number;
}

export interface WorkerFigures {
  rssMiB: number;
  peakRssMiB: number;
  cpuPercentOfOneCore: number;
}

export interface InFlightLevel {
  temporal: string;
  requested: number;
  started: number;
  submitErrors: number;
  startSeconds: number;
  startsPerSecond: number;
  observedSeconds: number;
  /** Analysis runs that happened in the window, against what the releases started would run on time. */
  analysisRuns: number;
  expectedAnalysisRuns: number;
  /** Releases whose status query failed after the window (a saturated worker answers late or not at all). */
  unanswered: number;
  tickLatenessMs: { p50: number; p99: number; max: number; samples: number };
  workers: WorkerFigures[];
  serverCpuPercentOfOneCore: number;
  postgresCpuPercentOfOneCore: number | null;
  /** The machine's 1-minute load average at the end of the window: other work on the shared cores. */
  machineLoadAverage: number;
}

export const ANALYSIS_INTERVAL_MS = 10_000;

interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  exited: Promise<void>;
}

function startWorkers(target: TemporalUnderTest, count: number, heapMiB: number, dataDir: string): WorkerProcess[] {
  return Array.from({ length: count }, (_, i) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
      cwd: PROJECT_ROOT,
      env: {
        ...workerProcessEnv(target.address, join(dataDir, `worker-${i}`)),
        TEMPORAL_NAMESPACE: target.namespace,
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=${heapMiB}`.trim(),
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2_000);
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    void exited.then(() => {
      if (child.exitCode !== 0 && child.signalCode === null) console.error(`worker ${i} exited ${child.exitCode}: ${stderr}`);
    });
    return { child, pid: child.pid!, exited };
  });
}

async function stopWorkers(workers: WorkerProcess[]): Promise<void> {
  await Promise.all(
    workers.map(async (w) => {
      if (w.child.exitCode !== null || w.child.signalCode !== null) return;
      w.child.kill('SIGTERM');
      // The worker drains on SIGTERM (its shutdown is bounded at 30 s); a hung one is killed.
      const killed = setTimeout(() => w.child.kill('SIGKILL'), 45_000);
      await w.exited;
      clearTimeout(killed);
    }),
  );
}

/** Distinct workers polling the release task queue's workflow tasks, as the server sees them. */
async function pollingWorkers(client: Client, namespace: string): Promise<number> {
  const answer = await client.workflowService.describeTaskQueue({
    namespace,
    taskQueue: { name: TASK_QUEUE, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  return new Set((answer.pollers ?? []).map((p) => p.identity)).size;
}

/** Releases in flight at each level, on `options.workers` worker processes started for the purpose. */
export async function measureInFlight(target: TemporalUnderTest, options: InFlightOptions, log: (line: string) => void = () => undefined): Promise<InFlightLevel[]> {
  const connection = await Connection.connect({ address: target.address });
  const client = new Client({ connection, namespace: target.namespace });
  const releases = new ReleaseClient(client);
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-bench-'));
  const workers = startWorkers(target, options.workers, options.workerHeapMiB, dataDir);
  const results: InFlightLevel[] = [];
  try {
    // Each worker bundles the workflows at start: wait until the server sees all of them polling.
    await waitFor(`${options.workers} workers polling ${target.label}`, async () => (await pollingWorkers(client, target.namespace)) >= options.workers, 180_000, 1_000);
    for (const requested of options.levels) {
      const run = randomUUID().slice(0, 8);
      const started: { releaseId: string; laneId: string }[] = [];
      let submitErrors = 0;
      log(`${target.label}: starting ${requested} releases`);
      const t0 = performance.now();
      await inPool(
        Array.from({ length: requested }, (_, i) => i),
        options.submitConcurrency,
        async (i) => {
          if (performance.now() - t0 > options.startBudgetMs) return;
          const spec = fastSpec(`fly-${run}-${i}`, sha(`${run}-${i}`), { bake: { 'canary-5': '30m' }, analysis: { interval: `${ANALYSIS_INTERVAL_MS}ms` } });
          try {
            const { releaseId } = await releases.submit(spec);
            started.push({ releaseId, laneId: laneWorkflowId(spec.service, spec.environment) });
          } catch (error) {
            submitErrors += 1;
            if (submitErrors <= 3) log(`${target.label}: submit failed: ${(error as Error).message}`);
          }
        },
      );
      const startSeconds = (performance.now() - t0) / 1_000;
      log(`${target.label}: ${started.length} of ${requested} started in ${round(startSeconds, 1)} s; watching for ${options.observeMs / 1_000} s`);

      const workerCpu = workers.map((w) => readCpu([w.pid]));
      const serverCpu = readCpu(target.serverPids);
      const postgresCpu = readCpu(target.postgresPids);
      const windowStart = Date.now();
      const w0 = performance.now();
      await new Promise((resolve) => setTimeout(resolve, options.observeMs));
      const observedMs = performance.now() - w0;
      const windowEnd = Date.now();
      const workerFigures = workers.map((w, i) => {
        const memory = residentMiB(w.pid);
        return { rssMiB: round(memory.rss, 0), peakRssMiB: round(memory.peak, 0), cpuPercentOfOneCore: round(cpuPercentSince(workerCpu[i]!, [w.pid]), 1) };
      });
      const serverCpuPercent = round(cpuPercentSince(serverCpu, target.serverPids), 1);
      const postgresCpuPercent = target.postgresPids.length > 0 ? round(cpuPercentSince(postgresCpu, target.postgresPids), 1) : null;

      // Lateness of every analysis run inside the window: its gap from the run before, less the interval.
      const lateness: number[] = [];
      let runs = 0;
      let unanswered = 0;
      await inPool(started, 50, async ({ releaseId }) => {
        try {
          const status = await releases.status(releaseId);
          const times = status.analysis.filter((a) => a.step === 'canary-5').map((a) => Date.parse(a.at));
          for (let i = 0; i < times.length; i++) {
            if (times[i]! < windowStart || times[i]! > windowEnd) continue;
            runs += 1;
            if (i > 0) lateness.push(Math.max(0, times[i]! - times[i - 1]! - ANALYSIS_INTERVAL_MS));
          }
        } catch {
          unanswered += 1;
        }
      });
      const level: InFlightLevel = {
        temporal: target.label,
        requested,
        started: started.length,
        submitErrors,
        startSeconds: round(startSeconds, 1),
        startsPerSecond: round(started.length / startSeconds, 1),
        observedSeconds: round(observedMs / 1_000, 1),
        analysisRuns: runs,
        expectedAnalysisRuns: Math.floor(started.length * (observedMs / ANALYSIS_INTERVAL_MS)),
        unanswered,
        tickLatenessMs: { p50: percentile(lateness, 50), p99: percentile(lateness, 99), max: Math.max(0, ...lateness), samples: lateness.length },
        workers: workerFigures,
        serverCpuPercentOfOneCore: serverCpuPercent,
        postgresCpuPercentOfOneCore: postgresCpuPercent,
        machineLoadAverage: round(loadavg()[0]!, 1),
      };
      results.push(level);
      log(`${target.label}: ${JSON.stringify(level)}`);
      // Clear the level away before the next: terminate rather than abort, nothing real is deployed.
      await inPool(
        started.flatMap((s) => [s.releaseId, s.laneId]),
        50,
        async (id) => {
          await client.workflow.getHandle(id).terminate('in-flight benchmark done').catch(() => undefined);
        },
      );
    }
  } finally {
    await stopWorkers(workers);
    await connection.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return results;
}

/** The knobs of `npm run bench -- cluster`, from the environment (defaults keep the whole run near 15 minutes). */
export interface ClusterBenchOptions extends Omit<InFlightOptions, 'levels'> {
  clusterLevels: number[];
  devServerLevels: number[];
}

function levelsFrom(text: string | undefined, fallback: number[]): number[] {
  if (text === undefined || text.trim() === '') return fallback;
  if (text.trim() === 'none') return [];
  const levels = text.split(',').map((part) => Number(part.trim()));
  if (levels.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`levels must be positive integers separated by commas, got "${text}"`);
  return levels;
}

function positive(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text.trim() === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${text}"`);
  return value;
}

export function clusterBenchOptionsFromEnv(): ClusterBenchOptions {
  return {
    clusterLevels: levelsFrom(process.env.BENCH_CLUSTER_LEVELS, [1_000, 5_000]),
    devServerLevels: levelsFrom(process.env.BENCH_DEV_SERVER_LEVELS, [1_000, 5_000]),
    workers: positive('BENCH_CLUSTER_WORKERS', 2),
    observeMs: positive('BENCH_CLUSTER_OBSERVE_SECONDS', 60) * 1_000,
    startBudgetMs: positive('BENCH_CLUSTER_START_BUDGET_SECONDS', 150) * 1_000,
    submitConcurrency: positive('BENCH_CLUSTER_SUBMIT_CONCURRENCY', 50),
    workerHeapMiB: positive('BENCH_CLUSTER_WORKER_HEAP_MIB', 6_144),
  };
}

/** A Temporal the benchmark brought up for itself, and how to take it down. */
export interface OpenedTemporal {
  target: TemporalUnderTest;
  close(): Promise<void>;
}

export interface SideBySide {
  temporal: string;
  inFlight: InFlightLevel[];
  engine: EngineResult | null;
  api: ApiThroughput | null;
}

export interface ClusterBenchResult {
  options: ClusterBenchOptions;
  targets: SideBySide[];
  seconds: number;
}

/**
 * The same measures on each Temporal in turn, one at a time so they never share the two cores:
 * releases in flight on worker processes, then engine efficiency and webhook throughput.
 */
export async function benchCluster(
  temporals: { label: string; open: () => Promise<OpenedTemporal> }[],
  options: ClusterBenchOptions,
  log: (line: string) => void = () => undefined,
): Promise<ClusterBenchResult> {
  const t0 = performance.now();
  const targets: SideBySide[] = [];
  for (const { label, open } of temporals) {
    log(`${label}: bringing up`);
    const opened = await open();
    try {
      const levels = label === 'dev server' ? options.devServerLevels : options.clusterLevels;
      const inFlight = levels.length > 0 ? await measureInFlight(opened.target, { ...options, levels }, log) : [];
      log(`${label}: engine efficiency`);
      const engine = await benchEngine(opened.target);
      log(`${label}: ${JSON.stringify(engine)}`);
      log(`${label}: webhook throughput`);
      const api = await benchApi(opened.target);
      log(`${label}: ${JSON.stringify(api)}`);
      targets.push({ temporal: label, inFlight, engine, api });
    } finally {
      await opened.close();
    }
  }
  return { options, targets, seconds: round((performance.now() - t0) / 1_000, 0) };
}

const GOALS: Record<number, number> = { 1_000: 1_000, 5_000: 5_000 };

/** The rows of the results table: every figure of each Temporal, the cluster beside the dev server. */
export function clusterTableRows(result: ClusterBenchResult): string[] {
  const rows: string[] = [];
  let first = true;
  const row = (figure: string, value: string, goal = '') => {
    rows.push(`| ${first ? 'cluster vs dev server' : ''} | ${figure} | ${value} | ${goal} |`);
    first = false;
  };
  for (const side of result.targets) {
    for (const level of side.inFlight) {
      const workers = level.workers.map((w) => `${w.rssMiB} MiB / ${w.cpuPercentOfOneCore}%`).join(', ');
      const goal = GOALS[level.requested];
      row(
        `${side.temporal}: ${level.requested} releases in flight on ${level.workers.length} worker processes, analysis every 10 s`,
        `${level.started < level.requested ? `only ${level.started} started in the ${round(result.options.startBudgetMs / 1_000, 0)} s budget; ` : ''}` +
          `started in ${level.startSeconds} s (${level.startsPerSecond}/s); tick lateness p50 ${level.tickLatenessMs.p50} ms / p99 ${level.tickLatenessMs.p99} ms ` +
          `(${level.analysisRuns} of ${level.expectedAnalysisRuns} runs due in ${level.observedSeconds} s); workers RSS / CPU of a core: ${workers}; ` +
          `Temporal CPU ${level.serverCpuPercentOfOneCore}%${level.postgresCpuPercentOfOneCore === null ? '' : `, PostgreSQL CPU ${level.postgresCpuPercentOfOneCore}%`}` +
          (level.machineLoadAverage === undefined ? '' : `; machine load ${level.machineLoadAverage}`),
        goal ? `p99 < ${goal / 1_000} s` : '',
      );
    }
    if (side.engine) {
      row(
        `${side.temporal}: engine efficiency, release through the lane vs bare workflow (${side.engine.activitiesPerRelease} activities)`,
        `${side.engine.releasesViaLanePerSecond}/s vs ${side.engine.bareWorkflowsPerSecond}/s, ratio ${side.engine.ratioViaLane} (started directly: ratio ${side.engine.ratioDirect}); ` +
          `workflow tasks: bare ${side.engine.workflowTasks.bare}, release ${side.engine.workflowTasks.release}, lane ${side.engine.workflowTasks.lanePerRelease} per release`,
        '≥ 0.9',
      );
    }
    if (side.api) {
      row(
        `${side.temporal}: signed async webhooks vs bare workflow.start`,
        `${side.api.asyncWebhookPerSecond}/s vs ${side.api.bareStartPerSecond}/s, ratio ${side.api.ratioAsyncWebhookToBareStart}`,
        '≥ 0.9',
      );
    }
  }
  return rows;
}
