// Issue 7, benchmarks 2 and 3, on the real stack (HAProxy, Prometheus scraping every second) with a real worker:
// - abort to safe: from the abort call to HAProxy's runtime API reporting the canary at weight 0, beside the floor
//   measured the same way in the same run (one signal, one activity, one runtime-API call);
// - detect to safe: from a faulty canary taking traffic (HAProxy gives it a weight) to all traffic back on stable
//   (weight 0 again), split into the metrics pipeline (until Prometheus shows the failing error rate) and the engine
//   (from there to weight 0).
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { formatPromDuration } from '../src/engine/duration';
import { DeploymentMetrics } from '../src/observability/deployment-metrics';
import { ProviderRegistry } from '../src/providers';
import { LocalDeployer } from '../src/providers/deploy/local';
import { renderQuery } from '../src/providers/metrics/provider';
import { PrometheusMetricProvider } from '../src/providers/metrics/prometheus';
import { SimulatedFleet } from '../src/providers/simulated/fleet';
import { HaproxyRouter } from '../src/providers/traffic/haproxy';
import { validateReleaseSpec } from '../src/spec/parse';
import { DEFAULT_ERROR_EVENTS_QUERY, DEFAULT_ERROR_TOTAL_QUERY, type ReleaseSpec } from '../src/spec/release-spec';
import { freeStackPorts, startLocalStack, type LocalStack, type StackService } from '../src/stack/local-stack';
import type { DevServer } from '../src/temporal/dev-server';
import { ReleaseClient } from '../src/temporal/releases';
import { allocateService, canaryWeight, Cleanups, DEMO_COMMAND, removeService, runtimeCommand, TrafficLoop } from '../test/e2e/helpers';
import { sha, waitFor } from '../test/helpers/temporal';
import { releaseSinks } from '../workers/worker';
import { abortFloorWorkflow, floorGoSignal, floorReadyQuery } from './safety-workflows';
import { round, summarize, type LatencySummary } from './stats';

const TASK_QUEUE = 'rampart-bench-safety';
/** Both the floor's workflow and the release wait this long, idle, before the signal or abort that is timed. */
const IDLE_BEFORE_TRIGGER_MS = 200;

/** The floor's one activity: one runtime-API call. */
export const floorActivities = {
  async zeroCanaryWeight(socket: string, service: string): Promise<void> {
    const answer = (await runtimeCommand(socket, `set weight ${service}/canary 0`)).trim();
    if (answer) throw new Error(`set weight ${service}/canary 0 was refused: ${answer}`);
  },
};
export type FloorActivities = typeof floorActivities;

/** An instance that starts in tens of milliseconds: the abort benchmark measures the engine, not the app. */
const TINY_SERVICE_COMMAND = [
  process.execPath,
  '-e',
  "const s=require('http').createServer((q,r)=>{r.setHeader('x-version',process.env.RAMPART_VERSION);r.end('ok\\n')});" +
    "s.listen(+process.env.PORT,'127.0.0.1');process.on('SIGTERM',()=>{s.close();s.closeAllConnections();process.exit(0)});",
];


export interface SafetyResult {
  abortToSafe: {
    /** Abort update sent to HAProxy reporting the canary at weight 0. */
    abort: LatencySummary;
    /** Signal sent to the same weight read, through one activity making one runtime-API call. */
    floor: LatencySummary;
    /** Abort update sent to its answer: the release rolled back entirely (canary instance stopped too). */
    abortAnswered: LatencySummary;
    /** abort p50 / floor p50. */
    ratioP50: number;
    goalP99Ms: number;
    meetsGoal: boolean;
  };
  /** The same measurement for a broken build (half its requests fail) and for a subtle one (10%). */
  detectToSafe: DetectToSafe;
  detectToSafeSubtle: DetectToSafe;
}

export interface DetectToSafe {
    /** Canary given a weight to weight 0 again. */
    total: LatencySummary;
    /** Canary given a weight to Prometheus' counts showing the canary's failed share more than 2 points above stable's (0). */
    metricsPipeline: LatencySummary;
    /** Failing share visible in Prometheus to weight 0: looks until the judge is confident, decision, rollback. */
    engine: LatencySummary;
    /** User requests the faulty canary answered per trial. */
    canaryRequests: number[];
    /** Trials that did not end in an analysis rollback (counted out of the figures). */
    failedTrials: string[];
    config: { scrapeInterval: string; analysisInterval: string; canaryWeight: number; canaryErrorRate: number; trafficPerSecond: number };
    goalP50Ms: number;
    meetsGoal: boolean;
}


/** Reads the canary weight back to back until it satisfies `done`; the time it was first seen (performance.now()). */
async function watchWeight(socket: string, service: string, done: (weight: number) => boolean, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const weight = await canaryWeight(socket, service).catch(() => null);
    const now = performance.now();
    if (weight !== null && done(weight)) return now;
    if (now > deadline) throw new Error(`the canary weight of ${service} did not change as expected within ${timeoutMs} ms (last ${weight})`);
    await sleep(1);
  }
}

function localTarget(stack: LocalStack, service: StackService, command: string[], env: Record<string, string>) {
  return {
    type: 'local' as const,
    command,
    stablePort: service.stablePort,
    canaryPort: service.canaryPort,
    haproxySocket: stack.haproxySocket,
    prometheusUrl: stack.prometheusUrl,
    env,
  };
}

export async function benchSafety(server: DevServer, options: { abortTrials?: number; detectTrials?: number; log?: (line: string) => void } = {}): Promise<SafetyResult> {
  const abortTrials = options.abortTrials ?? 50;
  const detectTrials = options.detectTrials ?? 5;
  const log = options.log ?? (() => undefined);
  const cleanups = new Cleanups();
  try {
    const workDir = await mkdtemp(path.join(tmpdir(), 'rampart-bench-safety-'));
    cleanups.add('work dir', () => rm(workDir, { recursive: true, force: true }));
    const abortService = await allocateService('bench-abort');
    const floorService = await allocateService('bench-floor');
    const detectService = await allocateService('bench-detect');
    const stack = await startLocalStack({
      dir: path.join(workDir, 'stack'),
      services: [abortService, floorService, detectService],
      ports: await freeStackPorts(),
      components: ['haproxy', 'prometheus'],
      alertWebhookToken: randomUUID(),
      scrapeInterval: '1s',
    });
    cleanups.add('stack', () => stack.stop());
    for (const service of [abortService, detectService]) cleanups.add(`instances of ${service.name}`, () => removeService(service));

    const connection = await Connection.connect({ address: server.address });
    cleanups.add('client connection', () => connection.close());
    const client = new Client({ connection });
    const releases = new ReleaseClient(client, TASK_QUEUE);
    const nativeConnection = await NativeConnection.connect({ address: server.address });
    cleanups.add('worker connection', () => nativeConnection.close());
    const providers = new ProviderRegistry({ fleet: new SimulatedFleet() });
    // The release events go where a production worker sends them: its deployment metrics.
    const metrics = new DeploymentMetrics();
    const sinks = releaseSinks(metrics);
    const worker = await Worker.create({
      connection: nativeConnection,
      taskQueue: TASK_QUEUE,
      workflowsPath: require.resolve('./safety-workflows'),
      activities: { ...createActivities({ providers }), ...floorActivities },
      sinks,
    });
    const running = worker.run();
    cleanups.add('worker', async () => {
      worker.shutdown();
      await running;
      await providers.close();
    });
    const run = randomUUID().slice(0, 8);
    const socket = stack.haproxySocket;

    // ---- abort to safe, interleaved with its floor ----
    const abortTarget = localTarget(stack, abortService, TINY_SERVICE_COMMAND, {});
    const abortStable = sha(`bench-abort-stable-${run}`);
    await new LocalDeployer({ ...abortTarget, healthPath: '/healthz' }).deploy(abortService.name, 'stable', abortStable);
    await new HaproxyRouter({ socket }).waitUntilUp(abortService.name, ['stable']);
    const abortSpec = (version: string): ReleaseSpec =>
      validateReleaseSpec({
        service: abortService.name,
        version,
        requestedBy: 'bench',
        target: abortTarget,
        strategy: {
          steps: [
            { name: 'synthetic', phase: 'synthetic', weight: 0, analysis: false },
            { name: 'canary', phase: 'canary', weight: 10, bake: '10m', analysis: false },
            { name: 'full', phase: 'full', weight: 100 },
          ],
        },
      });

    const abortSamples: number[] = [];
    const answeredSamples: number[] = [];
    const floorSamples: number[] = [];
    for (let i = 0; i < abortTrials; i++) {
      // The floor: the canary at 10, a workflow idle and cached on the worker, then signal -> activity -> set weight 0.
      await runtimeCommand(socket, `set weight ${floorService.name}/canary 10`);
      const floor = await client.workflow.start(abortFloorWorkflow, {
        taskQueue: TASK_QUEUE,
        workflowId: `bench-floor-${run}-${i}`,
        args: [{ socket, service: floorService.name }],
      });
      await floor.query(floorReadyQuery);
      // Idle a moment, as the baking release is before its abort: what is measured is the signal, not the start.
      await sleep(IDLE_BEFORE_TRIGGER_MS);
      const floorSafe = watchWeight(socket, floorService.name, (w) => w === 0, 10_000);
      const floorStart = performance.now();
      await floor.signal(floorGoSignal);
      floorSamples.push((await floorSafe) - floorStart);
      await floor.result();

      // The abort: a release baking with its canary at 10%, aborted through the same update the API and CLI send.
      const { releaseId } = await releases.submit(abortSpec(sha(`bench-abort-${run}-${i}`)));
      await waitFor('the canary at 10%', async () => {
        const status = await releases.status(releaseId);
        return status.step?.name === 'canary' && status.routes.canaryWeight === 10 && status.state === 'running';
      }, 60_000, 20);
      await watchWeight(socket, abortService.name, (w) => w === 10, 5_000);
      await sleep(IDLE_BEFORE_TRIGGER_MS);
      const safe = watchWeight(socket, abortService.name, (w) => w === 0, 30_000);
      const abortStart = performance.now();
      const answered = releases.command(releaseId, 'abort', { actor: 'bench', reason: 'abort-to-safe trial' }).then((status) => ({ status, at: performance.now() }));
      // Awaited below; until then a failure must not surface as an unhandled rejection.
      answered.catch(() => undefined);
      abortSamples.push((await safe) - abortStart);
      const answer = await answered;
      answeredSamples.push(answer.at - abortStart);
      if (answer.status.outcome?.result !== 'aborted') throw new Error(`abort trial ${i} ended ${answer.status.outcome?.result}: ${answer.status.outcome?.reason}`);
      if ((i + 1) % 10 === 0) log(`abort to safe: ${i + 1}/${abortTrials} trials`);
    }

    // ---- detect to safe ----
    const trafficPerSecond = 200;
    const versionOf = (errorRate: number, i: number) => sha(`bench-detect-${run}-${errorRate}-${i}`);
    // A broken build (half its requests fail) and a subtle regression (10%): the judge is fast on the first, careful on the second.
    const severities = [0.5, 0.1];
    const detectStable = sha(`bench-detect-stable-${run}`);
    // Every version but the stable one fails 10% of its requests.
    const detectTarget = localTarget(stack, detectService, DEMO_COMMAND, {
      DEMO_ERROR_RATE: '0',
      DEMO_BEHAVIOUR: JSON.stringify({
        [detectStable]: { errorRate: 0, latencyMs: 0 },
        ...Object.fromEntries(severities.flatMap((errorRate) => Array.from({ length: detectTrials }, (_, i) => [versionOf(errorRate, i), { errorRate, latencyMs: 0 }]))),
      }),
    });
    await new LocalDeployer({ ...detectTarget, healthPath: '/healthz' }).deploy(detectService.name, 'stable', detectStable);
    await new HaproxyRouter({ socket }).waitUntilUp(detectService.name, ['stable']);
    const analysis = { interval: '1s' };
    const detectSpec = (version: string): ReleaseSpec =>
      validateReleaseSpec({
        service: detectService.name,
        version,
        requestedBy: 'bench',
        target: detectTarget,
        strategy: {
          steps: [
            { name: 'synthetic', phase: 'synthetic', weight: 0, analysis: false },
            { name: 'canary', phase: 'canary', weight: 10, bake: '5m' },
            { name: 'full', phase: 'full', weight: 100 },
          ],
        },
        analysis,
      });
    const prometheus = new PrometheusMetricProvider({ url: stack.prometheusUrl, timeoutMs: 2_000 });
    const served = new Map<string, number>();
    const traffic = new TrafficLoop(stack.frontendUrl, detectService.name, {
      rate: trafficPerSecond,
      concurrency: 8,
      maxMs: 30 * 60_000,
      onAnswer: (answer) => {
        if (answer.version) served.set(answer.version, (served.get(answer.version) ?? 0) + 1);
      },
    }).start();
    cleanups.add('traffic', () => traffic.stop());

    const measureDetect = async (canaryErrorRate: number): Promise<DetectToSafe> => {
      const totals: number[] = [];
      const pipeline: number[] = [];
      const engine: number[] = [];
      const canaryRequests: number[] = [];
      const failedTrials: string[] = [];
      for (let i = 0; i < detectTrials; i++) {
        const version = versionOf(canaryErrorRate, i);
        const taking = watchWeight(socket, detectService.name, (w) => w > 0, 120_000);
        taking.catch(() => undefined);
        const { releaseId } = await releases.submit(detectSpec(version));
        const start = await taking;
        const safe = watchWeight(socket, detectService.name, (w) => w === 0, 60_000);
        // The judge fails the canary once it is confident its failed share is more than 2 points above stable's (0
        // here): the pipeline's part ends when Prometheus' counts, over the trial so far, show that share.
        const takenAt = Date.now();
        const countsQuery = () => {
          const values = { service: detectService.name, environment: stack.environment, version, track: 'canary', window: formatPromDuration(Math.ceil((Date.now() - takenAt) / 1000 + 1) * 1000) };
          return {
            events: renderQuery(DEFAULT_ERROR_EVENTS_QUERY, values),
            total: renderQuery(DEFAULT_ERROR_TOTAL_QUERY, values),
            check: 'error-rate',
            service: detectService.name,
            environment: stack.environment,
            version,
            track: 'canary' as const,
          };
        };
        let visibleAt: number | null = null;
        let stopped = false;
        const visible = (async () => {
          while (!stopped && visibleAt === null) {
            const counts = await prometheus.counts(countsQuery()).catch(() => null);
            if (counts && counts.total > 0 && counts.events / counts.total > 0.02) visibleAt = performance.now();
            else await sleep(20);
          }
        })();
        const end = await safe;
        stopped = true;
        await visible;
        const result = await waitFor('the detect trial to finish', async () => {
          const status = await releases.status(releaseId);
          return ['rolled-back', 'aborted', 'promoted', 'superseded', 'cancelled'].includes(status.state) && status;
        }, 60_000, 100);
        canaryRequests.push(served.get(version) ?? 0);
        if (result.outcome?.result !== 'rolled-back' || !/analysis failed/.test(result.outcome.reason)) {
          failedTrials.push(`${result.outcome?.result}: ${result.outcome?.reason}`);
          continue;
        }
        totals.push(end - start);
        if (visibleAt !== null) {
          pipeline.push(visibleAt - start);
          engine.push(end - visibleAt);
        }
        log(`detect to safe (${canaryErrorRate * 100}% failing): trial ${i + 1}/${detectTrials}: ${Math.round(end - start)} ms`);
      }
      const total = summarize(totals);
      return {
        total,
        metricsPipeline: summarize(pipeline),
        engine: summarize(engine),
        canaryRequests,
        failedTrials,
        config: { scrapeInterval: '1s', analysisInterval: analysis.interval, canaryWeight: 10, canaryErrorRate, trafficPerSecond },
        goalP50Ms: 3_000,
        meetsGoal: total.trials > 0 && total.p50Ms < 3_000,
      };
    };
    const detectSevere = await measureDetect(0.5);
    const detectSubtle = await measureDetect(0.1);
    await traffic.stop();

    const abort = summarize(abortSamples);
    return {
      abortToSafe: {
        abort,
        floor: summarize(floorSamples),
        abortAnswered: summarize(answeredSamples),
        ratioP50: round(abort.p50Ms / summarize(floorSamples).p50Ms, 2),
        goalP99Ms: 300,
        meetsGoal: abort.p99Ms < 300,
      },
      detectToSafe: detectSevere,
      detectToSafeSubtle: detectSubtle,
    };
  } finally {
    await cleanups.run();
  }
}

/** The rows of the markdown table. */
export function safetyTableRows(result: SafetyResult): string[] {
  const { abortToSafe: a, detectToSafe: d } = result;
  const ms = (s: LatencySummary) => `p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms (n=${s.trials})`;
  return [
    `| abort to safe | floor: signal + activity + runtime-API call, to HAProxy reporting weight 0 | ${ms(a.floor)} | |`,
    `| | abort update to HAProxy reporting the canary at weight 0 | ${ms(a.abort)}, ${a.ratioP50}x the floor at p50 | p99 < ${a.goalP99Ms} ms |`,
    `| | abort update answered (rolled back, canary instance stopped) | ${ms(a.abortAnswered)} | |`,
    ...[d, result.detectToSafeSubtle].flatMap((x) => [
      `| detect to safe | ${x.config.canaryErrorRate * 100}% failing canary at ${x.config.canaryWeight}% of ${x.config.trafficPerSecond} req/s, taking traffic to all traffic on stable (${x.config.scrapeInterval} scrape, analysis every ${x.config.analysisInterval} on the evidence since the canary took traffic) | ${ms(x.total)}${x.failedTrials.length ? `, ${x.failedTrials.length} trial(s) not rolled back by analysis` : ''} | p50 < ${x.goalP50Ms} ms |`,
      `| | of which metrics pipeline (traffic to a failing value in Prometheus) | ${ms(x.metricsPipeline)} | |`,
      `| | of which engine (failing value in Prometheus to weight 0) | ${ms(x.engine)} | |`,
      `| | user requests answered by the faulty canary, per trial | ${x.canaryRequests.join(', ')} | |`,
    ]),
  ];
}
