// The judge: weighs the evidence of one look (counts and latency distributions per track, since the
// step moved traffic) with anytime-valid tests, so looking every few seconds never inflates false
// rollbacks. Pure and dependency-free: the release workflow imports it, so every verdict is part of
// the replayable history. docs/analysis.md has the math and its references.
import type { CheckSpec, LatencyCheckSpec, RatioCheckSpec } from '../spec/release-spec';
import {
  countAbove,
  differenceInterval,
  histogramQuantile,
  histogramTotal,
  MIXING_SCALES,
  varianceRate,
  rate,
  rateInterval,
  samplesToResolve,
  type Counts,
  type Histogram,
  type Interval,
} from './statistics';

export type Track = 'canary' | 'stable';

/** What a metric provider returns for one track: counts for a ratio check, a histogram for a latency check. */
export type TrackEvidence = ({ kind: 'counts' } & Counts) | ({ kind: 'histogram' } & Histogram);

/** One check's evidence; null for a track with no data; `error` when the provider could not answer. */
export interface CheckEvidence {
  check: string;
  canary: TrackEvidence | null;
  stable: TrackEvidence | null;
  error?: string;
}

/** Everything one look gathered. */
export interface AnalysisEvidence {
  checks: CheckEvidence[];
  /** Seconds of traffic the evidence covers (since the step moved traffic). */
  windowSeconds: number;
  /** Set when the router reports the canary's server down while traffic is routed to it. */
  canaryDown?: string | null;
}

export type VerdictOutcome = 'pass' | 'fail' | 'inconclusive' | 'error';

/** A check's verdict with the evidence behind it, so the status can show why. */
export interface CheckVerdict {
  check: string;
  outcome: VerdictOutcome;
  /** Why, in a sentence an operator can act on. */
  message: string;
  canary?: Counts;
  stable?: Counts;
  /** The tested quantity (a share), its anytime-valid interval, and the limit it was held to. */
  estimate?: number;
  interval?: [number, number];
  limit?: number;
  /** Latency checks: the threshold in seconds the slow share was counted above. */
  thresholdSeconds?: number;
  /** Canary events that would probably settle the question, when the answer is "not enough evidence yet". */
  samplesNeeded?: number;
}

export interface AnalysisRun {
  at: string;
  step: string;
  outcome: VerdictOutcome;
  windowSeconds: number;
  verdicts: CheckVerdict[];
}

export interface JudgeOptions {
  /** Confidence a failure needs (alpha = 1 - confidence). */
  confidence: number;
  /** Confidence a pass needs. */
  passConfidence: number;
  /** Canary events a check needs before it may decide anything. */
  minCanarySamples: number;
  /** False at 100%: stable takes no traffic, so comparisons are skipped and only absolute limits judge. */
  stableServes: boolean;
  /** Only internal users reach the canary: named in the "not enough traffic" message. */
  internalOnly?: boolean;
}

/** One side of a check: an interval held to a limit. */
interface Test {
  name: string;
  interval: Interval;
  limit: number;
  /** Which side of the limit is bad. */
  bad: 'above' | 'below';
  /** Whether the interval is of a difference of two samples (the needed-samples figure depends on it). */
  twoSample?: boolean;
}

/** Shares live in [0, 1] and their differences in [-1, 1]: an interval is shown clipped, which changes no decision. */
function clip(interval: Interval, low: number): Interval {
  return { estimate: interval.estimate, lower: Math.max(low, interval.lower), upper: Math.min(1, interval.upper) };
}

function decideTest(test: Test): 'fail' | 'pass' | 'inconclusive' {
  const { interval, limit, bad } = test;
  if (bad === 'above') {
    if (interval.lower > limit) return 'fail';
    if (interval.upper <= limit) return 'pass';
  } else {
    if (interval.upper < limit) return 'fail';
    if (interval.lower >= limit) return 'pass';
  }
  return 'inconclusive';
}

const pct = (share: number) => `${(share * 100).toFixed(share !== 0 && Math.abs(share) < 0.001 ? 3 : 2).replace(/\.?0+$/, '')}%`;
const ms = (seconds: number) => `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 0)} ms`;

function insufficient(check: string, canary: Counts, needed: number, options: JudgeOptions, why: string): CheckVerdict {
  const who = options.internalOnly ? ' (only internal users reach the canary in this step)' : '';
  const need = Number.isFinite(needed) ? `; about ${needed} needed ${why}` : '';
  return {
    check,
    outcome: 'inconclusive',
    message: `insufficient traffic: ${canary.total} canary requests${who}${need}`,
    canary,
    samplesNeeded: needed,
  };
}

/** Combines a check's tests: any failure fails; all passing passes; otherwise not enough evidence yet. */
function combine(check: string, tests: Test[], canary: Counts, stable: Counts | undefined, options: JudgeOptions, describe: (t: Test) => string): CheckVerdict {
  const decided = tests.map((test) => ({ test, outcome: decideTest(test) }));
  const failed = decided.find((d) => d.outcome === 'fail');
  const open = decided.find((d) => d.outcome === 'inconclusive');
  const shown = failed ?? open ?? decided[0]!;
  const { interval, limit } = shown.test;
  const base = {
    check,
    canary,
    ...(stable ? { stable } : {}),
    estimate: interval.estimate,
    interval: [interval.lower, interval.upper] as [number, number],
    limit,
  };
  if (failed) return { ...base, outcome: 'fail', message: `${describe(failed.test)} (${pct(options.confidence)} confidence)` };
  if (!open) return { ...base, outcome: 'pass', message: decided.map((d) => describe(d.test)).join('; ') };
  const distance = Math.max(Math.abs(open.test.limit - open.test.interval.estimate), 0.002);
  // The smoothed rate, as the interval uses: with no events yet, a raw 0 would promise a decision in a handful more.
  const p = Math.max(varianceRate(canary), stable ? varianceRate(stable) : 0);
  // More than the evidence in hand, which did not decide.
  const needed = Math.max(canary.total + 1, samplesToResolve(p, distance, 1 - options.passConfidence, TAU, open.test.twoSample === true));
  return { ...base, outcome: 'inconclusive', message: `not enough evidence yet: ${describe(open.test)}; about ${needed} canary requests needed to tell`, samplesNeeded: needed };
}

/** The mixing scales of the boundary: effects from a tenth of a point to fifty points (see statistics.ts). */
export const TAU = MIXING_SCALES;

function asCounts(evidence: TrackEvidence | null): Counts | null {
  return evidence && evidence.kind === 'counts' ? { events: Math.round(evidence.events), total: Math.round(evidence.total) } : null;
}

function asHistogram(evidence: TrackEvidence | null): Histogram | null {
  return evidence && evidence.kind === 'histogram' ? { buckets: evidence.buckets } : null;
}

function judgeRatio(check: RatioCheckSpec, evidence: CheckEvidence, options: JudgeOptions): CheckVerdict {
  const canary = asCounts(evidence.canary);
  if (!canary || canary.total <= 0) return { check: check.name, outcome: 'inconclusive', message: options.internalOnly ? 'no canary traffic: no internal users reached the canary yet' : 'no data for the canary' };
  const alphaFail = 1 - options.confidence;
  const alphaPass = 1 - options.passConfidence;
  const compare = check.maxIncreaseOverStable !== undefined && options.stableServes;
  if (canary.total < options.minCanarySamples) {
    const margin = check.maxIncreaseOverStable ?? 0.02;
    const needed = Math.max(options.minCanarySamples, samplesToResolve(Math.max(rate(canary), 0.01), margin, alphaPass, TAU, compare));
    return insufficient(check.name, canary, needed, options, `to tell ${pct(margin)} at ${pct(options.passConfidence)}`);
  }
  const tests: Test[] = [];
  let stable: Counts | undefined;
  if (check.max !== undefined) tests.push({ name: 'maximum', interval: clip(rateInterval(canary, alphaFail, alphaPass, TAU), 0), limit: check.max, bad: 'above' });
  if (check.min !== undefined) tests.push({ name: 'minimum', interval: clip(rateInterval(canary, alphaFail, alphaPass, TAU), 0), limit: check.min, bad: 'below' });
  if (compare) {
    const stableCounts = asCounts(evidence.stable);
    if (!stableCounts || stableCounts.total < options.minCanarySamples) {
      // Without stable the comparison cannot decide, but an absolute limit the canary clearly breaks still fails it.
      const broken = tests.find((test) => decideTest(test) === 'fail');
      if (broken) return combine(check.name, [broken], canary, undefined, options, (test) => `canary ${pct(rate(canary))} (${canary.events}/${canary.total}) against the ${test.name} ${pct(test.limit)}: interval [${pct(test.interval.lower)}, ${pct(test.interval.upper)}]`);
      return { check: check.name, outcome: 'inconclusive', message: `no data for stable to compare against (${stableCounts?.total ?? 0} stable requests)`, canary };
    }
    stable = stableCounts;
    tests.unshift({ name: 'compared with stable', interval: clip(differenceInterval(canary, stable, alphaFail, alphaPass, TAU), -1), limit: check.maxIncreaseOverStable!, bad: 'above', twoSample: true });
  }
  if (tests.length === 0) {
    return { check: check.name, outcome: 'pass', message: `not compared: stable takes no traffic at 100% (judged in the earlier steps); canary ${pct(rate(canary))} of ${canary.total}`, canary };
  }
  const share = `canary ${pct(rate(canary))} (${canary.events}/${canary.total})`;
  return combine(check.name, tests, canary, stable, options, (test) => {
    const range = `[${pct(test.interval.lower)}, ${pct(test.interval.upper)}]`;
    if (test.name === 'compared with stable') {
      const against = `stable ${pct(rate(stable!))} (${stable!.events}/${stable!.total})`;
      const outcome = decideTest(test);
      const claim =
        outcome === 'fail'
          ? `exceeds ${against} by more than ${pct(test.limit)}`
          : outcome === 'pass'
            ? `is within ${pct(test.limit)} of ${against}`
            : `may or may not exceed ${against} by more than ${pct(test.limit)}`;
      return `${share} ${claim}: difference ${pct(test.interval.estimate)}, interval ${range}`;
    }
    const side = test.bad === 'above' ? 'maximum' : 'minimum';
    return `${share} against the ${side} ${pct(test.limit)}: interval ${range}`;
  });
}

function judgeLatency(check: LatencyCheckSpec, evidence: CheckEvidence, options: JudgeOptions): CheckVerdict {
  const canaryHistogram = asHistogram(evidence.canary);
  const canaryTotal = canaryHistogram ? Math.round(histogramTotal(canaryHistogram)) : 0;
  if (!canaryHistogram || canaryTotal <= 0) return { check: check.name, outcome: 'inconclusive', message: options.internalOnly ? 'no canary traffic: no internal users reached the canary yet' : 'no latency data for the canary' };
  const q = check.quantile;
  const allowedSlowShare = 1 - q;
  const alphaFail = 1 - options.confidence;
  const alphaPass = 1 - options.passConfidence;
  const label = `p${Math.round(q * 1000) / 10}`;
  if (canaryTotal < options.minCanarySamples) {
    const needed = Math.max(options.minCanarySamples, samplesToResolve(allowedSlowShare / 2, allowedSlowShare / 2, alphaPass, TAU, false));
    return insufficient(check.name, { events: 0, total: canaryTotal }, needed, options, `to judge the ${label} at ${pct(options.passConfidence)}`);
  }
  const tests: Array<Test & { threshold: number; slow: Counts }> = [];
  let stableQuantile: number | null = null;
  if (check.maxRatioOverStable !== undefined && options.stableServes) {
    const stableHistogram = asHistogram(evidence.stable);
    const stableTotal = stableHistogram ? histogramTotal(stableHistogram) : 0;
    stableQuantile = stableHistogram && stableTotal >= options.minCanarySamples ? histogramQuantile(stableHistogram, q) : null;
    if (stableQuantile === null) {
      return { check: check.name, outcome: 'inconclusive', message: `no latency data for stable to compare against (${Math.round(stableTotal)} stable requests)` };
    }
    // "Canary's quantile at most ratio x stable's" is "at most (1 - q) of canary requests slower than that": a share, tested like errors.
    const threshold = stableQuantile * check.maxRatioOverStable;
    const slow = countAbove(canaryHistogram, threshold);
    tests.push({ name: 'compared with stable', interval: clip(rateInterval(slow, alphaFail, alphaPass, TAU), 0), limit: allowedSlowShare, bad: 'above', threshold, slow });
  }
  if (check.max !== undefined) {
    const slow = countAbove(canaryHistogram, check.max);
    tests.push({ name: 'maximum', interval: clip(rateInterval(slow, alphaFail, alphaPass, TAU), 0), limit: allowedSlowShare, bad: 'above', threshold: check.max, slow });
  }
  const canaryQuantile = histogramQuantile(canaryHistogram, q);
  if (tests.length === 0) {
    return { check: check.name, outcome: 'pass', message: `not compared: stable takes no traffic at 100% (judged in the earlier steps); canary ${label} ${ms(canaryQuantile ?? 0)}` };
  }
  const verdict = combine(check.name, tests, tests[0]!.slow, undefined, options, (test) => {
    const t = test as (typeof tests)[number];
    const slowShare = `${pct(rate(t.slow))} of ${t.slow.total} canary requests slower than ${ms(t.threshold)}`;
    const against = t.name === 'compared with stable' ? `${check.maxRatioOverStable}x stable's ${label} of ${ms(stableQuantile!)}` : `the maximum ${ms(t.threshold)}`;
    return `canary ${label} ${ms(canaryQuantile ?? 0)}: ${slowShare} (${against}; at most ${pct(allowedSlowShare)} allowed), interval [${pct(t.interval.lower)}, ${pct(t.interval.upper)}]`;
  });
  const shown = tests.find((t) => t.limit === verdict.limit && t.interval.estimate === verdict.estimate) ?? tests[0]!;
  return { ...verdict, thresholdSeconds: shown.threshold };
}

/** Judges one check's evidence. */
export function judgeCheck(check: CheckSpec, evidence: CheckEvidence, options: JudgeOptions): CheckVerdict {
  if (evidence.error !== undefined) return { check: check.name, outcome: 'error', message: `query failed: ${evidence.error}` };
  return check.kind === 'ratio' ? judgeRatio(check, evidence, options) : judgeLatency(check, evidence, options);
}

const SEVERITY: Record<VerdictOutcome, number> = { pass: 0, inconclusive: 1, error: 2, fail: 3 };

/** The run's outcome is its worst verdict: one failure fails the run; a pass needs every check to pass. */
export function runOutcome(verdicts: readonly CheckVerdict[]): VerdictOutcome {
  return verdicts.reduce<VerdictOutcome>((worst, v) => (SEVERITY[v.outcome] > SEVERITY[worst] ? v.outcome : worst), 'pass');
}

/** Judges every check of one look; a canary the router reports down fails at once, whatever the counters say. */
export function judgeEvidence(checks: readonly CheckSpec[], evidence: AnalysisEvidence, options: JudgeOptions, at: string, step: string): AnalysisRun {
  const verdicts: CheckVerdict[] = [];
  if (evidence.canaryDown) verdicts.push({ check: 'canary-health', outcome: 'fail', message: `the canary is down while it takes traffic: ${evidence.canaryDown}` });
  for (const check of checks) {
    const found = evidence.checks.find((e) => e.check === check.name) ?? { check: check.name, canary: null, stable: null };
    verdicts.push(judgeCheck(check, found, options));
  }
  return { at, step, outcome: runOutcome(verdicts), windowSeconds: evidence.windowSeconds, verdicts };
}

/** The verdicts that explain a run's outcome, joined for a status line or a rollback reason. */
export function explainRun(run: AnalysisRun): string {
  const shown = run.verdicts.filter((v) => v.outcome === run.outcome);
  return (shown.length ? shown : run.verdicts).map((v) => `${v.check}: ${v.message}`).join('; ');
}

/** One version's synthetic load result, as the judge needs it. */
export interface LoadSample {
  requests: number;
  errors: number;
  histogram: Histogram;
}

/**
 * The synthetic step's verdict: the new version and stable took the same load at the same time, and
 * are compared as user traffic is (error share within the margin, p95 within the ratio), plus any
 * absolute limits the load test sets, each judged with its sample size.
 */
export function judgeSyntheticLoad(
  load: {
    maxIncreaseOverStable: number;
    maxLatencyRatioOverStable: number;
    maxErrorRate?: number | undefined;
    maxP95LatencyMs?: number | undefined;
    maxP99LatencyMs?: number | undefined;
  },
  result: { canary: LoadSample; stable: LoadSample | null },
  options: Omit<JudgeOptions, 'stableServes' | 'internalOnly'>,
  at: string,
  step: string,
): AnalysisRun {
  const judge = { ...options, stableServes: result.stable !== null };
  const counts = (s: LoadSample | null): TrackEvidence | null => s && { kind: 'counts', events: s.errors, total: s.requests };
  const histogram = (s: LoadSample | null): TrackEvidence | null => s && { kind: 'histogram', ...s.histogram };
  const checks: CheckSpec[] = [
    { name: 'load-errors', kind: 'ratio', events: '', total: '', maxIncreaseOverStable: load.maxIncreaseOverStable, ...(load.maxErrorRate !== undefined ? { max: load.maxErrorRate } : {}) },
    {
      name: 'load-latency-p95',
      kind: 'latency',
      buckets: '',
      quantile: 0.95,
      maxRatioOverStable: load.maxLatencyRatioOverStable,
      ...(load.maxP95LatencyMs !== undefined ? { max: load.maxP95LatencyMs / 1000 } : {}),
    },
  ];
  if (load.maxP99LatencyMs !== undefined) checks.push({ name: 'load-latency-p99', kind: 'latency', buckets: '', quantile: 0.99, max: load.maxP99LatencyMs / 1000 });
  const evidence: AnalysisEvidence = {
    windowSeconds: 0,
    checks: checks.map((check) =>
      check.kind === 'ratio'
        ? { check: check.name, canary: counts(result.canary), stable: counts(result.stable) }
        : { check: check.name, canary: histogram(result.canary), stable: histogram(result.stable) },
    ),
  };
  return judgeEvidence(checks, evidence, judge, at, step);
}
