// Rollback drills: the fault a drill injects and how its timings are read from the release's
// history. Pure, so the drill workflow imports it and the tests table it.

import type { ReleaseSpec } from '../spec/release-spec';
import type { Outcome, ReleaseStatus } from './release-state';

export interface DrillFault {
  /** Share of requests the drill build fails. */
  errorRate: number;
  /** Latency of every request of the drill build, in ms. */
  latencyMs?: number;
}

export interface DrillInput {
  service: string;
  environment: string;
  /** The service's release spec to drill with (target, strategy, analysis); its version is replaced. */
  spec: ReleaseSpec;
  fault: DrillFault;
  /** Time to safe a passing drill stays under; the brief's source's bar is two minutes. */
  sloMs: number;
  /** With a real release in flight: skip this drill, or wait up to maxWaitMs for the lane to be free. */
  whenBusy: 'skip' | 'wait';
  maxWaitMs: number;
}

export type DrillVerdict = 'passed' | 'failed' | 'skipped';

export interface DrillResult {
  service: string;
  environment: string;
  result: DrillVerdict;
  reason: string;
  releaseId: string | null;
  version: string | null;
  outcome: Outcome | null;
  startedAt: string;
  finishedAt: string;
  /** From the faulty build taking traffic (or load, if caught before any) to the decision to roll back. */
  timeToDetectMs: number | null;
  /** From the same moment to all traffic verified back on stable. */
  timeToSafeMs: number | null;
  sloMs: number;
}

/**
 * The drill build's spec: the service's own spec with a drill version whose behaviour carries the
 * fault. Simulated targets take the fault as the version's health; local targets pass it to the
 * instances as DEMO_BEHAVIOUR (the demo service's per-version behaviour map).
 */
export function drillSpec(input: DrillInput, version: string): ReleaseSpec {
  const base: ReleaseSpec = { ...input.spec, service: input.service, environment: input.environment, version, drill: true, requestedBy: 'rampart-drill' };
  delete base.commit;
  const { errorRate, latencyMs } = input.fault;
  if (base.target.type === 'simulated') {
    const health = { errorRate, latencyMs: latencyMs ?? 20, noData: false, deployFailures: 0, trafficFailures: 0 };
    return { ...base, target: { ...base.target, health: { ...base.target.health, [version]: health } } };
  }
  let behaviour: Record<string, unknown> = {};
  try {
    behaviour = JSON.parse(base.target.env.DEMO_BEHAVIOUR ?? '{}') as Record<string, unknown>;
  } catch {
    behaviour = {};
  }
  behaviour[version] = { errorRate, latencyMs: latencyMs ?? 0 };
  return { ...base, target: { ...base.target, env: { ...base.target.env, DEMO_BEHAVIOUR: JSON.stringify(behaviour) } } };
}

/** A git-SHA-shaped drill version from the drill's run id: unique per run, immutable, recognisable. */
export function drillVersion(runId: string): string {
  return runId.replace(/[^0-9a-f]/gi, '').toLowerCase().slice(0, 40).padEnd(12, '0');
}

/** Reads the timings off the release's transition history, and judges the drill against its SLO. */
export function judgeDrill(status: ReleaseStatus, sloMs: number): Pick<DrillResult, 'result' | 'reason' | 'timeToDetectMs' | 'timeToSafeMs'> {
  const at = (predicate: (t: ReleaseStatus['history'][number]) => boolean) => {
    const found = status.history.find(predicate);
    return found ? Date.parse(found.at) : null;
  };
  const exposed =
    at((t) => t.event === 'traffic-moved' && !/^canary 0%$/.test(t.reason ?? '')) ?? at((t) => t.event === 'canary-deployed');
  const detected = at((t) => t.event === 'rollback-started');
  const safe = at((t) => t.event === 'finished');
  const timeToDetectMs = exposed !== null && detected !== null ? Math.max(0, detected - exposed) : null;
  const timeToSafeMs = exposed !== null && safe !== null && detected !== null ? Math.max(0, safe - exposed) : null;
  const outcome = status.outcome?.result;
  const undetected = status.history.find((t) => t.event === 'drill-fault-undetected');
  if (undetected) {
    return { result: 'failed', reason: `the faulty build was not caught by the canary phase: ${undetected.reason ?? ''}`, timeToDetectMs, timeToSafeMs };
  }
  if (outcome === 'superseded' || outcome === 'cancelled') {
    return { result: 'skipped', reason: `the drill release was ${outcome}: ${status.outcome?.reason ?? ''}`, timeToDetectMs, timeToSafeMs };
  }
  if (outcome !== 'rolled-back') {
    return { result: 'failed', reason: `the faulty build was not rolled back by the engine (outcome ${outcome ?? 'none'})`, timeToDetectMs, timeToSafeMs };
  }
  if (timeToSafeMs === null) return { result: 'failed', reason: 'the release history lacks the timings', timeToDetectMs, timeToSafeMs };
  if (timeToSafeMs > sloMs) {
    return { result: 'failed', reason: `time to safe ${timeToSafeMs} ms is over the SLO of ${sloMs} ms`, timeToDetectMs, timeToSafeMs };
  }
  return { result: 'passed', reason: `rolled back (${status.outcome?.reason ?? ''}) in ${timeToSafeMs} ms, SLO ${sloMs} ms`, timeToDetectMs, timeToSafeMs };
}
