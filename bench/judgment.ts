// Judgment: how often the default strategy rolls back, promotes or pauses a release, for healthy and
// faulty canaries at traffic levels from 1 to 1,000 requests per second, with simulated time and
// the seeded traffic model of src/providers/simulated/traffic.ts.
//
// The sequential judge is the REAL one: src/engine/analysis.ts (judgeEvidence, judgeSyntheticLoad)
// driven by the REAL bake planner src/engine/bake.ts, exactly as workflows/release.ts drives them:
// move the routes, then nextBakeAction / look (afterLook) / wait (afterWait) until the step advances,
// rolls back or pauses. A pause counts as "paused": the release stops there, a person would look.
//
// Beside it runs the rule Rampart had before (labelled "threshold"; see `git log` for
// src/engine/analysis.ts and workflows/release.ts before the sequential judge), re-implemented
// compactly below as the baseline.
//
// Scenarios (stable's median latency 40 ms; every scenario but healthy-0.1 on a 1% stable error rate):
// healthy-0.1 / healthy-1: canary = stable at 0.1% / 1% errors; errors+N: canary N points above a 1%
// stable; latency-xF: canary's median F x stable's; crash: the canary refuses every connection from
// CRASH_AFTER_SECONDS after its first user traffic (when users are first routed to it), and the
// router reports it down. Time to roll back is counted from the canary's first user traffic; a
// rollback by the synthetic load test (before any user traffic) counts as 0 s.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { cpus } from 'node:os';
import { judgeEvidence, judgeSyntheticLoad, type AnalysisEvidence, type CheckEvidence, type LoadSample } from '../src/engine/analysis';
import { afterLook, afterWait, nextBakeAction, planBake, startBake } from '../src/engine/bake';
import { histogramQuantile } from '../src/engine/statistics';
import { hashString, Random } from '../src/providers/simulated/random';
import {
  addWindow,
  answer,
  crashed,
  emptyTrack,
  emptyWindow,
  errorCounts,
  latencyHistogram,
  routesReachCanary,
  simulateWindow,
  type TrackTraffic,
  type TrafficRoutes,
  type TrafficSetting,
  type VersionBehaviour,
  type WindowTraffic,
} from '../src/providers/simulated/traffic';
import { analysisSchema, strategySchema, type AnalysisSpec, type StepSpec } from '../src/spec/release-spec';
import { percentile, round } from './stats';

export const TRAFFIC_LEVELS = [1, 2, 10, 100, 1_000] as const;
const STABLE_LATENCY_MS = 40;
const BASE_ERROR_RATE = 0.01;
/** The crash scenario's canary refuses connections this long after its first user traffic. */
export const CRASH_AFTER_SECONDS = 120;
/** Share of users who are internal (the simulated target's default). */
const INTERNAL_SHARE = 0.05;
const SEED = 20_240_610;

export interface Scenario {
  name: string;
  healthy: boolean;
  stable: { errorRate: number; latencyMs: number };
  canary: { errorRate: number; latencyMs: number; crashAfterSeconds?: number };
}

const on1Percent = (canary: Partial<Scenario['canary']>) => ({
  stable: { errorRate: BASE_ERROR_RATE, latencyMs: STABLE_LATENCY_MS },
  canary: { errorRate: BASE_ERROR_RATE, latencyMs: STABLE_LATENCY_MS, ...canary },
});

export const SCENARIOS: Scenario[] = [
  { name: 'healthy-0.1', healthy: true, stable: { errorRate: 0.001, latencyMs: STABLE_LATENCY_MS }, canary: { errorRate: 0.001, latencyMs: STABLE_LATENCY_MS } },
  { name: 'healthy-1', healthy: true, ...on1Percent({}) },
  ...[1, 2.5, 5, 20].map((points) => ({ name: `errors+${points}`, healthy: false, ...on1Percent({ errorRate: BASE_ERROR_RATE + points / 100 }) })),
  ...[1.2, 1.5, 2, 5].map((factor) => ({ name: `latency-x${factor}`, healthy: false, ...on1Percent({ latencyMs: STABLE_LATENCY_MS * factor }) })),
  { name: 'crash', healthy: false, ...on1Percent({ crashAfterSeconds: CRASH_AFTER_SECONDS }) },
];

export type JudgeName = 'sequential' | 'threshold';

interface ReleaseOutcome {
  outcome: 'rolledBack' | 'promoted' | 'paused';
  step: string;
  /** Seconds from the canary's first user traffic to the rollback; 0 before any user traffic. */
  seconds: number;
  /** A promoted release with a step that advanced on anything but a pass of its evidence (its analysis or its load test). */
  unjudgedStep?: boolean;
}

export interface JudgmentCell {
  trafficPerSecond: number;
  scenario: string;
  judge: JudgeName;
  releases: number;
  rolledBack: number;
  promoted: number;
  paused: number;
  medianSecondsToRollback: number | null;
  /** Promoted releases with a user-traffic step that advanced without a pass of its evidence (always 0 for the threshold rule, whose steps advance only after a look within its thresholds, whatever the sample). */
  promotedWithoutEvidence: number;
  /** Rollbacks by the synthetic load test, before any user traffic (counted as 0 s above). */
  rolledBackBySyntheticLoad: number;
  /** Median over the rollbacks that happened on user traffic only. */
  medianSecondsToRollbackOnUserTraffic: number | null;
  rolledBackIn: Record<string, number>;
  pausedIn: Record<string, number>;
}

/** One simulated release: the canary and stable as the scenario says, a clock in seconds, one seeded stream. */
class SimulatedRelease {
  readonly canary: VersionBehaviour;
  readonly stable: VersionBehaviour;
  now = 0;
  firstUserTraffic: number | null = null;

  constructor(
    readonly random: Random,
    readonly scenario: Scenario,
    readonly trafficPerSecond: number,
  ) {
    this.canary = { errorRate: scenario.canary.errorRate, latencyMs: scenario.canary.latencyMs, crashesAt: null };
    this.stable = { ...scenario.stable, crashesAt: null };
  }

  setting(routes: TrafficRoutes): TrafficSetting {
    return { trafficPerSecond: this.trafficPerSecond, internalShare: INTERNAL_SHARE, routes, canary: this.canary, stable: this.stable };
  }

  /** The routes moved: the first time they reach the canary starts its crash clock. */
  route(routes: TrafficRoutes): void {
    if (this.firstUserTraffic === null && routesReachCanary(routes, INTERNAL_SHARE)) {
      this.firstUserTraffic = this.now;
      if (this.scenario.canary.crashAfterSeconds !== undefined) this.canary.crashesAt = this.now + this.scenario.canary.crashAfterSeconds;
    }
  }

  /** Lets `seconds` pass under `routes`, adding the traffic to `into`. */
  pass(routes: TrafficRoutes, seconds: number, into: WindowTraffic, latencies: boolean): void {
    simulateWindow(this.random, this.setting(routes), this.now, this.now + seconds, into, { latencies });
    this.now += seconds;
  }

  /** A synthetic load test of `requests` requests at one version (before user traffic: no crash yet). */
  load(version: VersionBehaviour, requests: number, latencies = true): TrackTraffic {
    return answer(this.random, version, requests, emptyTrack(), latencies);
  }

  rolledBack(step: string): ReleaseOutcome {
    return { outcome: 'rolledBack', step, seconds: this.firstUserTraffic === null ? 0 : this.now - this.firstUserTraffic };
  }
}

function loadSample(traffic: TrackTraffic): LoadSample {
  return { requests: traffic.answered + traffic.refused, errors: traffic.errors + traffic.refused, histogram: latencyHistogram(traffic) };
}

function routesOf(step: StepSpec): TrafficRoutes {
  return { canaryWeight: step.weight, internalAudience: step.internalAudience !== undefined };
}

/** The sequential judge and the bake planner, driven as workflows/release.ts drives them. */
function sequentialRelease(release: SimulatedRelease, steps: readonly StepSpec[], analysis: AnalysisSpec, syntheticLoad: boolean): ReleaseOutcome {
  const { confidence, passConfidence, minCanarySamples } = analysis;
  let unjudgedStep = false;
  for (const step of steps) {
    if (step.load && syntheticLoad) {
      const requests = Math.max(1, Math.round((step.load.rate * step.load.duration) / 1_000));
      const result = { canary: loadSample(release.load(release.canary, requests)), stable: loadSample(release.load(release.stable, requests)) };
      const run = judgeSyntheticLoad(step.load, result, { confidence, passConfidence, minCanarySamples }, '', step.name);
      if (run.outcome === 'fail') return release.rolledBack(step.name);
      // As the workflow does: undecided synthetic load goes on to user traffic, which judges every step.
    }
    const routes = routesOf(step);
    release.route(routes);
    const stableServes = step.weight < 100;
    const options = { confidence, passConfidence, minCanarySamples, stableServes, internalOnly: step.weight === 0 && step.internalAudience !== undefined };
    const canaryRouted = step.weight > 0 || step.internalAudience !== undefined;
    const plan = planBake(step, analysis);
    let state = startBake(plan);
    const sinceStepMoved = emptyWindow();
    let elapsedMs = 0;
    bake: for (;;) {
      const action = nextBakeAction(plan, state);
      switch (action.kind) {
        case 'advance':
          if (!step.load && state.latest?.outcome !== 'pass') unjudgedStep = true;
          break bake;
        case 'rollback':
          return release.rolledBack(step.name);
        case 'pause':
          return { outcome: 'paused', step: step.name, seconds: 0 };
        case 'look': {
          const checks = analysis.checks.map((check): CheckEvidence => {
            const compares = (check.kind === 'ratio' ? check.maxIncreaseOverStable : check.maxRatioOverStable) !== undefined && stableServes;
            const of = (traffic: TrackTraffic) => (check.kind === 'ratio' ? { kind: 'counts' as const, ...errorCounts(traffic) } : { kind: 'histogram' as const, ...latencyHistogram(traffic) });
            return { check: check.name, canary: of(sinceStepMoved.canary), stable: compares ? of(sinceStepMoved.stable) : null };
          });
          const evidence: AnalysisEvidence = {
            checks,
            windowSeconds: Math.max(1, Math.ceil(elapsedMs / 1_000)),
            canaryDown: canaryRouted && crashed(release.canary, release.now) ? 'the canary refuses connections' : null,
          };
          state = afterLook(plan, state, judgeEvidence(analysis.checks, evidence, options, '', step.name));
          break;
        }
        case 'wait':
          release.pass(routes, action.ms / 1_000, sinceStepMoved, true);
          elapsedMs += action.ms;
          state = afterWait(state, elapsedMs);
          break;
      }
    }
  }
  return { outcome: 'promoted', step: steps[steps.length - 1]!.name, seconds: 0, unjudgedStep };
}

/**
 * The BASELINE, the rule Rampart had before: each look reads the error share (5xx out of answered
 * requests: refused connections were not counted) over the last 30 s, every 10 s; a look fails when
 * the canary is above 5%, or (while stable serves) more than 2 points above stable; no data is
 * inconclusive. One failure rolls back (failureLimit 0); a third inconclusive look in a step pauses
 * (inconclusiveLimit 2); a step ends once its bake is over and the latest look succeeded. The
 * synthetic step sent 500 requests (50/s for 10 s) at the canary alone and failed on an error share
 * above 1% or a p99 above 500 ms. No latency check.
 */
const THRESHOLD = { intervalSeconds: 10, windowSeconds: 30, max: 0.05, maxIncreaseOverStable: 0.02, inconclusiveLimit: 2, loadRequests: 500, loadMaxErrorRate: 0.01, loadMaxP99Seconds: 0.5 };

function thresholdRelease(release: SimulatedRelease, steps: readonly StepSpec[], syntheticLoad: boolean): ReleaseOutcome {
  const chunksPerWindow = THRESHOLD.windowSeconds / THRESHOLD.intervalSeconds;
  // The rate() window reaches back before the step: start with a window of stable-only traffic.
  const chunks: WindowTraffic[] = [];
  for (let i = 0; i < chunksPerWindow; i++) {
    const chunk = emptyWindow();
    release.pass({ canaryWeight: 0, internalAudience: false }, THRESHOLD.intervalSeconds, chunk, false);
    chunks.push(chunk);
  }
  const share = (t: TrackTraffic) => (t.answered > 0 ? t.errors / t.answered : null);
  for (const step of steps) {
    if (step.load && syntheticLoad) {
      const canary = release.load(release.canary, THRESHOLD.loadRequests);
      const p99 = histogramQuantile(latencyHistogram(canary), 0.99) ?? 0;
      if (canary.errors / THRESHOLD.loadRequests > THRESHOLD.loadMaxErrorRate || p99 > THRESHOLD.loadMaxP99Seconds) return release.rolledBack(step.name);
    }
    const routes = routesOf(step);
    release.route(routes);
    const bake = step.bake / 1_000;
    const analysed = step.analysis;
    let baked = 0;
    let nextLook = Math.min(THRESHOLD.intervalSeconds, bake);
    let inconclusive = 0;
    let healthy = !analysed;
    for (;;) {
      if (analysed && baked >= nextLook) {
        const window = emptyWindow();
        for (const chunk of chunks.slice(-chunksPerWindow)) addWindow(window, chunk);
        const canary = share(window.canary);
        const stable = share(window.stable);
        let verdict: 'ok' | 'fail' | 'unknown' = 'ok';
        if (canary === null) verdict = 'unknown';
        else if (canary > THRESHOLD.max) verdict = 'fail';
        else if (step.weight < 100) verdict = stable === null ? 'unknown' : canary - stable > THRESHOLD.maxIncreaseOverStable ? 'fail' : 'ok';
        if (verdict === 'fail') return release.rolledBack(step.name);
        if (verdict === 'unknown' && ++inconclusive > THRESHOLD.inconclusiveLimit) return { outcome: 'paused', step: step.name, seconds: 0 };
        healthy = verdict === 'ok';
        nextLook = baked + THRESHOLD.intervalSeconds;
        continue;
      }
      if (baked >= bake && healthy) break;
      const wait = (analysed ? nextLook : bake) - baked;
      const chunk = emptyWindow();
      release.pass(routes, wait, chunk, false);
      chunks.push(chunk);
      if (chunks.length > chunksPerWindow) chunks.shift();
      baked += wait;
    }
  }
  return { outcome: 'promoted', step: steps[steps.length - 1]!.name, seconds: 0 };
}

interface CellTask {
  trafficPerSecond: number;
  scenario: string;
  judge: JudgeName;
  releases: number;
  /** False runs the strategy without its synthetic load test: how the judge on user traffic alone fares. */
  syntheticLoad: boolean;
}

export function runCell(task: CellTask): JudgmentCell {
  const scenario = SCENARIOS.find((s) => s.name === task.scenario)!;
  const steps = strategySchema.parse({}).steps;
  const analysis = analysisSchema.parse({});
  const outcomes: ReleaseOutcome[] = [];
  for (let i = 0; i < task.releases; i++) {
    // One stream per release, seeded by the cell and the release number: any split over workers gives the same figures.
    const random = new Random(SEED, hashString(task.scenario), task.trafficPerSecond, hashString(task.judge), task.syntheticLoad ? 1 : 0, i);
    const release = new SimulatedRelease(random, scenario, task.trafficPerSecond);
    outcomes.push(task.judge === 'sequential' ? sequentialRelease(release, steps, analysis, task.syntheticLoad) : thresholdRelease(release, steps, task.syntheticLoad));
  }
  const rollbacks = outcomes.filter((o) => o.outcome === 'rolledBack');
  const onUserTraffic = rollbacks.filter((o) => o.step !== 'synthetic');
  const median = (xs: ReleaseOutcome[]) => (xs.length ? round(percentile(xs.map((o) => o.seconds), 50), 1) : null);
  const tally = (xs: ReleaseOutcome[]) => xs.reduce<Record<string, number>>((acc, o) => ({ ...acc, [o.step]: (acc[o.step] ?? 0) + 1 }), {});
  return {
    trafficPerSecond: task.trafficPerSecond,
    scenario: task.scenario,
    judge: task.judge,
    releases: task.releases,
    rolledBack: rollbacks.length,
    promoted: outcomes.filter((o) => o.outcome === 'promoted').length,
    paused: outcomes.filter((o) => o.outcome === 'paused').length,
    medianSecondsToRollback: median(rollbacks),
    promotedWithoutEvidence: outcomes.filter((o) => o.outcome === 'promoted' && o.unjudgedStep).length,
    rolledBackBySyntheticLoad: rollbacks.length - onUserTraffic.length,
    medianSecondsToRollbackOnUserTraffic: median(onUserTraffic),
    rolledBackIn: tally(rollbacks),
    pausedIn: tally(outcomes.filter((o) => o.outcome === 'paused')),
  };
}

export interface JudgmentResult {
  releasesPerCell: number;
  crashAfterSeconds: number;
  seconds: number;
  cells: JudgmentCell[];
  /** Faulty scenarios with the synthetic load test left out: what the judge on user traffic alone does, and how fast. */
  withoutSyntheticLoad: JudgmentCell[];
}

/** Faults the synthetic step mostly catches before user traffic, run again without it for the time to roll back on user traffic. */
const USER_TRAFFIC_SCENARIOS = ['errors+2.5', 'errors+5', 'latency-x2', 'crash'];

const cellOrder = (c: JudgmentCell) => [TRAFFIC_LEVELS.indexOf(c.trafficPerSecond as (typeof TRAFFIC_LEVELS)[number]), SCENARIOS.findIndex((s) => s.name === c.scenario), c.judge === 'sequential' ? 0 : 1];
function byCell(a: JudgmentCell, b: JudgmentCell): number {
  const [x, y] = [cellOrder(a), cellOrder(b)];
  return x[0]! - y[0]! || x[1]! - y[1]! || x[2]! - y[2]!;
}

/** Runs every cell on a pool of worker threads (at most 2: the machine is shared), and writes bench/results/judgment.json. */
export async function benchJudgment(options: { releases?: number; workers?: number; log?: (line: string) => void } = {}): Promise<JudgmentResult> {
  const releases = options.releases ?? Number(process.env.JUDGMENT_RELEASES ?? 1_000);
  const started = Date.now();
  const tasks: CellTask[] = [];
  for (const syntheticLoad of [true, false]) {
    for (const trafficPerSecond of TRAFFIC_LEVELS) {
      for (const scenario of SCENARIOS) {
        if (!syntheticLoad && !USER_TRAFFIC_SCENARIOS.includes(scenario.name)) continue;
        for (const judge of ['sequential', 'threshold'] as const) tasks.push({ trafficPerSecond, scenario: scenario.name, judge, releases, syntheticLoad });
      }
    }
  }
  const width = Math.max(1, Math.min(options.workers ?? 2, cpus().length));
  const done: Array<{ task: CellTask; cell: JudgmentCell }> = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      // A worker thread does not inherit tsx's loader: it registers tsx's CommonJS hook, then loads this file.
      const worker = new Worker(`require('tsx/cjs'); require(${JSON.stringify(__filename)});`, { eval: true, workerData: { judgmentWorker: true } });
      try {
        while (next < tasks.length) {
          const task = tasks[next++]!;
          const cell = await new Promise<JudgmentCell>((resolve, reject) => {
            worker.once('message', resolve);
            worker.once('error', reject);
            worker.postMessage(task);
          });
          worker.removeAllListeners('error');
          done.push({ task, cell });
          options.log?.(`judgment ${task.syntheticLoad ? '' : '(no synthetic load) '}${cell.trafficPerSecond} req/s ${cell.scenario} ${cell.judge}: ${describe(cell)}`);
        }
      } finally {
        await worker.terminate();
      }
    }),
  );
  const result: JudgmentResult = {
    releasesPerCell: releases,
    crashAfterSeconds: CRASH_AFTER_SECONDS,
    seconds: round((Date.now() - started) / 1_000, 1),
    cells: done.filter((d) => d.task.syntheticLoad).map((d) => d.cell).sort(byCell),
    withoutSyntheticLoad: done.filter((d) => !d.task.syntheticLoad).map((d) => d.cell).sort(byCell),
  };
  const { cells, ...rest } = result;
  writeFileSync(join(__dirname, 'results', 'judgment.json'), JSON.stringify({ cells, ...rest }, null, 2) + '\n');
  return result;
}

const pct = (n: number, of: number) => `${round((100 * n) / of, 1)}%`;

function describe(cell: JudgmentCell | undefined): string {
  if (!cell) return '';
  const time = cell.medianSecondsToRollback === null ? '' : `, median ${cell.medianSecondsToRollback} s`;
  return `${pct(cell.rolledBack, cell.releases)} rolled back, ${pct(cell.promoted, cell.releases)} promoted, ${pct(cell.paused, cell.releases)} paused${time}`;
}

function goal(scenario: string, trafficPerSecond: number): string {
  if (scenario.startsWith('healthy')) return 'rolled back ≤ 1%';
  if ((scenario === 'errors+5' || scenario === 'latency-x2' || scenario === 'crash') && trafficPerSecond >= 10) {
    return scenario === 'errors+5' && trafficPerSecond === 100 ? 'rolled back ≥ 99%, median < 60 s' : 'rolled back ≥ 99%';
  }
  if (scenario === 'errors+2.5' && trafficPerSecond >= 100) return 'rolled back ≥ 95%';
  return '';
}

/** Lines for bench/results/latest.md: one per traffic level and scenario, both judges side by side. */
export function judgmentTableRows(result: JudgmentResult): string[] {
  const rows: string[] = [];
  const find = (cells: JudgmentCell[], trafficPerSecond: number, scenario: string, judge: JudgeName) =>
    cells.find((c) => c.trafficPerSecond === trafficPerSecond && c.scenario === scenario && c.judge === judge);
  for (const trafficPerSecond of TRAFFIC_LEVELS) {
    for (const scenario of SCENARIOS) {
      const label = rows.length === 0 ? `judgment (${result.releasesPerCell} releases per cell, ${result.seconds} s)` : '';
      const [sequential, threshold] = [find(result.cells, trafficPerSecond, scenario.name, 'sequential'), find(result.cells, trafficPerSecond, scenario.name, 'threshold')];
      rows.push(`| ${label} | ${trafficPerSecond} req/s, ${scenario.name} | sequential: ${describe(sequential)}; threshold (old rule): ${describe(threshold)} | ${goal(scenario.name, trafficPerSecond)} |`);
    }
  }
  for (const trafficPerSecond of TRAFFIC_LEVELS) {
    for (const scenario of USER_TRAFFIC_SCENARIOS) {
      const [sequential, threshold] = [find(result.withoutSyntheticLoad, trafficPerSecond, scenario, 'sequential'), find(result.withoutSyntheticLoad, trafficPerSecond, scenario, 'threshold')];
      rows.push(`| | ${trafficPerSecond} req/s, ${scenario}, no synthetic load test | sequential: ${describe(sequential)}; threshold (old rule): ${describe(threshold)} | |`);
    }
  }
  return rows;
}

function matrix(cells: JudgmentCell[], scenarios: readonly string[], show: (cell: JudgmentCell) => string): string[] {
  const lines = [`| scenario | ${TRAFFIC_LEVELS.map((t) => `${t} req/s`).join(' | ')} |`, `| --- |${TRAFFIC_LEVELS.map(() => ' --- |').join('')}`];
  for (const scenario of scenarios) {
    const row = TRAFFIC_LEVELS.map((t) => {
      const cell = cells.find((c) => c.trafficPerSecond === t && c.scenario === scenario);
      return cell ? show(cell) : '';
    });
    lines.push(`| ${scenario} | ${row.join(' | ')} |`);
  }
  return lines;
}

/** The README's tables: outcomes per judge, then the time to roll back on user traffic. */
export function judgmentReadmeTables(result: JudgmentResult): string[] {
  const share = (cell: JudgmentCell, n: number) => round((100 * n) / cell.releases, 1);
  const lines: string[] = [];
  for (const judge of ['sequential', 'threshold'] as const) {
    lines.push(
      '',
      `${judge === 'sequential' ? '**Sequential judge (the default)**' : '**Threshold (the old rule, baseline)**'}: rolled back / promoted / paused, in % of ${result.releasesPerCell} releases`,
      '',
      ...matrix(result.cells.filter((c) => c.judge === judge), SCENARIOS.map((s) => s.name), (c) => `${share(c, c.rolledBack)} / ${share(c, c.promoted)} / ${share(c, c.paused)}`),
    );
  }
  lines.push(
    '',
    `**On user traffic** (the same faults with the synthetic load test left out): rolled back in %, median seconds from the canary's first user traffic; sequential, then threshold`,
    '',
    ...matrix(
      result.withoutSyntheticLoad.filter((c) => c.judge === 'sequential'),
      USER_TRAFFIC_SCENARIOS,
      (c) => {
        const old = result.withoutSyntheticLoad.find((o) => o.judge === 'threshold' && o.trafficPerSecond === c.trafficPerSecond && o.scenario === c.scenario)!;
        const figure = (x: JudgmentCell) => `${share(x, x.rolledBack)}% in ${x.medianSecondsToRollback ?? '-'} s`;
        return `${figure(c)}; ${figure(old)}`;
      },
    ),
  );
  return lines;
}

if (!isMainThread && (workerData as { judgmentWorker?: boolean } | null)?.judgmentWorker) {
  parentPort!.on('message', (task: CellTask) => parentPort!.postMessage(runCell(task)));
}
