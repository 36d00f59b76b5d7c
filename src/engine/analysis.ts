// Pure analysis: judges measurements and decides what a bake does next. Dependency-free, so the
// release workflow imports it and the decision is part of the replayable history.

/** Argo Rollouts' phase set, narrowed to what a single measurement can be. */
export type MeasurementPhase = 'Successful' | 'Failed' | 'Inconclusive' | 'Error';

export interface CheckThresholds {
  name: string;
  max?: number;
  min?: number;
  maxIncreaseOverStable?: number;
}

/** What the metric provider returned for one check: numbers, null for no data, or the error it threw. */
export interface RawMeasurement {
  check: string;
  canary: number | null;
  stable: number | null;
  error?: string;
}

export interface Measurement extends RawMeasurement {
  phase: MeasurementPhase;
  /** Why the phase is what it is, in words an operator can act on. */
  message: string;
}

/**
 * `stableServes: false` at 100%: stable takes no traffic, so a comparison with it has no data and
 * would only ever be inconclusive; the absolute thresholds still apply.
 */
export function judgeMeasurement(check: CheckThresholds, raw: RawMeasurement, options: { stableServes?: boolean } = {}): Measurement {
  const verdict = (phase: MeasurementPhase, message: string): Measurement => ({ ...raw, phase, message });
  if (raw.error !== undefined) return verdict('Error', `query failed: ${raw.error}`);
  if (raw.canary === null) return verdict('Inconclusive', 'no data for the canary');
  if (check.max !== undefined && raw.canary > check.max) return verdict('Failed', `canary ${fmt(raw.canary)} is above the maximum ${fmt(check.max)}`);
  if (check.min !== undefined && raw.canary < check.min) return verdict('Failed', `canary ${fmt(raw.canary)} is below the minimum ${fmt(check.min)}`);
  if (check.maxIncreaseOverStable !== undefined && options.stableServes !== false) {
    if (raw.stable === null) return verdict('Inconclusive', 'no data for stable to compare against');
    const increase = raw.canary - raw.stable;
    if (increase > check.maxIncreaseOverStable) {
      return verdict('Failed', `canary ${fmt(raw.canary)} exceeds stable ${fmt(raw.stable)} by ${fmt(increase)}, more than ${fmt(check.maxIncreaseOverStable)}`);
    }
  }
  return verdict('Successful', 'within thresholds');
}

/** One analysis run: every check measured once. Its phase is the worst of its measurements. */
export interface AnalysisRun {
  at: string;
  step: string;
  phase: MeasurementPhase;
  measurements: Measurement[];
}

const SEVERITY: Record<MeasurementPhase, number> = { Successful: 0, Inconclusive: 1, Error: 2, Failed: 3 };

export function runPhase(measurements: readonly Measurement[]): MeasurementPhase {
  return measurements.reduce<MeasurementPhase>((worst, m) => (SEVERITY[m.phase] > SEVERITY[worst] ? m.phase : worst), 'Successful');
}

export interface AnalysisLimits {
  failureLimit: number;
  inconclusiveLimit: number;
  consecutiveSuccesses: number;
}

/** Counters kept across the runs of one step. A query error counts as inconclusive: it is no data. */
export interface AnalysisTally {
  failures: number;
  inconclusive: number;
  consecutiveSuccesses: number;
}

export const EMPTY_TALLY: AnalysisTally = { failures: 0, inconclusive: 0, consecutiveSuccesses: 0 };

export type AnalysisDecision =
  /** Too many failed runs: roll back. */
  | { kind: 'fail'; reason: string }
  /** Too many runs without data: pause for a person, never promote. */
  | { kind: 'pause'; reason: string }
  /** Keep baking; `healthy` says whether the step may advance now. */
  | { kind: 'continue'; healthy: boolean };

export function tally(previous: AnalysisTally, phase: MeasurementPhase): AnalysisTally {
  switch (phase) {
    case 'Successful':
      return { ...previous, consecutiveSuccesses: previous.consecutiveSuccesses + 1 };
    case 'Failed':
      return { ...previous, failures: previous.failures + 1, consecutiveSuccesses: 0 };
    case 'Inconclusive':
    case 'Error':
      return { ...previous, inconclusive: previous.inconclusive + 1, consecutiveSuccesses: 0 };
  }
}

export function decide(limits: AnalysisLimits, counts: AnalysisTally, run: AnalysisRun): AnalysisDecision {
  if (counts.failures > limits.failureLimit) {
    const failed = run.measurements.filter((m) => m.phase === 'Failed').map((m) => `${m.check}: ${m.message}`);
    return { kind: 'fail', reason: `analysis failed ${counts.failures} time(s), limit ${limits.failureLimit}: ${failed.join('; ') || run.phase}` };
  }
  if (counts.inconclusive > limits.inconclusiveLimit) {
    const unclear = run.measurements.filter((m) => m.phase === 'Inconclusive' || m.phase === 'Error').map((m) => `${m.check}: ${m.message}`);
    return {
      kind: 'pause',
      reason: `analysis inconclusive ${counts.inconclusive} time(s), limit ${limits.inconclusiveLimit}: ${unclear.join('; ') || run.phase}`,
    };
  }
  return { kind: 'continue', healthy: counts.consecutiveSuccesses >= limits.consecutiveSuccesses };
}

function fmt(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(4).replace(/0+$/, '');
}
