// The bake of one step as a pure planner: when to look, when the step may advance, when it must roll
// back, and when "not enough evidence" has lasted long enough to ask a person. The release workflow
// wires it to timers and the analysis activity; the judgment benchmark drives the same planner with
// simulated time, so what the benchmark measures is what production runs.
import { explainRun, type AnalysisRun } from './analysis';

export interface BakePlan {
  /** The step's bake: the least time it holds. */
  bakeMs: number;
  /** How long "not enough evidence yet" may extend the bake before the release pauses. */
  maxBakeMs: number;
  intervalMs: number;
  /** Whether the step is judged at all (analysis on, checks present, a bake to judge in). */
  judged: boolean;
  consecutiveErrorLimit: number;
}

export interface BakeState {
  /** Time the step has baked, pauses excluded. */
  elapsedMs: number;
  /** When the bake gives up waiting for evidence and pauses; moved on when a person resumes. */
  deadlineMs: number;
  nextLookMs: number;
  /** When the latest look happened (-1 before the first). */
  lastLookMs: number;
  latest: AnalysisRun | null;
  consecutiveErrors: number;
  looks: number;
}

export type BakeAction =
  | { kind: 'look' }
  | { kind: 'wait'; ms: number }
  | { kind: 'advance'; reason: string }
  | { kind: 'rollback'; reason: string }
  | { kind: 'pause'; reason: string };

/**
 * A step without a bake has no time to gather evidence, so it is not judged: a strategy that wants a
 * step judged gives it a bake. Absolute thresholds on one number are not the judge's way.
 */
export function planBake(step: { bake: number; analysis: boolean }, analysis: { interval: number; maxBakeFactor: number; consecutiveErrorLimit: number; checks: readonly unknown[] }): BakePlan {
  const judged = step.analysis && analysis.checks.length > 0 && step.bake > 0;
  return {
    bakeMs: step.bake,
    maxBakeMs: Math.max(step.bake, Math.round(step.bake * analysis.maxBakeFactor)),
    intervalMs: Math.max(1, analysis.interval),
    judged,
    consecutiveErrorLimit: analysis.consecutiveErrorLimit,
  };
}

export function startBake(plan: BakePlan): BakeState {
  return { elapsedMs: 0, deadlineMs: plan.maxBakeMs, nextLookMs: Math.min(plan.intervalMs, plan.bakeMs), lastLookMs: -1, latest: null, consecutiveErrors: 0, looks: 0 };
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

export function nextBakeAction(plan: BakePlan, state: BakeState): BakeAction {
  const { elapsedMs: elapsed, latest } = state;
  if (!plan.judged) return elapsed >= plan.bakeMs ? { kind: 'advance', reason: 'baked (not judged)' } : { kind: 'wait', ms: plan.bakeMs - elapsed };
  if (latest?.outcome === 'fail') return { kind: 'rollback', reason: `analysis failed in ${latest.step}: ${explainRun(latest)}` };
  if (state.consecutiveErrors > plan.consecutiveErrorLimit) {
    return { kind: 'pause', reason: `analysis queries failed ${state.consecutiveErrors} times in a row (limit ${plan.consecutiveErrorLimit}): ${latest ? explainRun(latest) : ''}` };
  }
  // A pass only counts if it judged the evidence up to the end of the bake, not an earlier look.
  if (elapsed >= plan.bakeMs && latest?.outcome === 'pass' && state.lastLookMs >= plan.bakeMs) {
    return { kind: 'advance', reason: `analysis passed after ${seconds(state.lastLookMs)}: ${explainRun(latest)}` };
  }
  if (elapsed >= state.deadlineMs && state.lastLookMs >= state.deadlineMs) {
    const why = latest ? explainRun(latest) : 'no analysis ran';
    return { kind: 'pause', reason: `not enough evidence after ${seconds(elapsed)} (bake ${seconds(plan.bakeMs)}, extended up to ${seconds(state.deadlineMs)}): ${why}` };
  }
  // Look on the interval, and at the end of the bake and at the deadline, so neither waits a whole interval.
  const lookAt = Math.min(state.nextLookMs, state.lastLookMs < plan.bakeMs ? plan.bakeMs : Number.POSITIVE_INFINITY, state.deadlineMs > state.lastLookMs ? state.deadlineMs : Number.POSITIVE_INFINITY);
  if (elapsed >= lookAt) return { kind: 'look' };
  return { kind: 'wait', ms: lookAt - elapsed };
}

export function afterLook(plan: BakePlan, state: BakeState, run: AnalysisRun): BakeState {
  return {
    ...state,
    latest: run,
    looks: state.looks + 1,
    lastLookMs: state.elapsedMs,
    nextLookMs: state.elapsedMs + plan.intervalMs,
    consecutiveErrors: run.outcome === 'error' ? state.consecutiveErrors + 1 : 0,
  };
}

export function afterWait(state: BakeState, elapsedMs: number): BakeState {
  return { ...state, elapsedMs: Math.max(state.elapsedMs, elapsedMs) };
}

/** A person resumed a paused bake: a fresh allowance of time and query errors; a failure still rolls back. */
export function afterResume(plan: BakePlan, state: BakeState): BakeState {
  const allowance = Math.max(plan.maxBakeMs - plan.bakeMs, plan.intervalMs);
  return { ...state, deadlineMs: state.elapsedMs + allowance, consecutiveErrors: 0, nextLookMs: state.elapsedMs };
}

/**
 * Routes the router had lost were put back: evidence gathered meanwhile judged other traffic, so the
 * latest pass no longer speaks for the step (a failure still does).
 */
export function afterRoutesReapplied(state: BakeState): BakeState {
  return state.latest?.outcome === 'pass' ? { ...state, latest: null } : state;
}
