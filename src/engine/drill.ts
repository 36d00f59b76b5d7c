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

/**
 * canary-fault: a faulty build the engine must catch in the canary phase and roll back on its own.
 * revert: a healthy build released to 100%, then rolled back with the rollback command, timed from
 * the command to all traffic on the previous version (the practice's monthly fire drill).
 */
export type DrillKind = 'canary-fault' | 'revert';

export interface DrillInput {
  /** Absent in drills scheduled before revert drills: canary-fault. */
  kind?: DrillKind;
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
  /** Absent in results of drills from before revert drills: canary-fault. */
  kind?: DrillKind;
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
  /** canary-fault: from the same moment to all traffic verified back on stable. revert: from the rollback command to all traffic on the previous version. */
  timeToSafeMs: number | null;
  sloMs: number;
  /** A revert drill's rollback, when one ran. */
  rollbackId?: string | null;
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

/** A revert drill's build: the service's own spec, a drill version with no fault, taken to 100% by the normal strategy. */
export function revertDrillSpec(input: DrillInput, version: string): ReleaseSpec {
  const base: ReleaseSpec = { ...input.spec, service: input.service, environment: input.environment, version, drill: true, drillKind: 'revert', requestedBy: 'rampart-drill' };
  delete base.commit;
  return base;
}

/**
 * A revert drill's verdict: the rollback must arrive, and all traffic must be on the previous version
 * within the SLO of the command. Traffic is there at the superseded release's switch to its warm
 * instance (a route switch), else at the rollback's own move of all traffic (a cold deploy).
 */
export function judgeRevertDrill(
  commandAt: number,
  rollback: Pick<ReleaseStatus, 'history' | 'outcome' | 'version'>,
  release: Pick<ReleaseStatus, 'history'> | null,
  sloMs: number,
): Pick<DrillResult, 'result' | 'reason' | 'timeToDetectMs' | 'timeToSafeMs'> {
  const switched = release?.history.find((t) => t.event === 'switched-to-warm');
  const moved = rollback.history.find((t) => t.event === 'traffic-moved');
  const warm = switched !== undefined;
  const safeAt = switched ? Date.parse(switched.at) : moved ? Date.parse(moved.at) : null;
  const timeToSafeMs = safeAt === null ? null : Math.max(0, safeAt - commandAt);
  const outcome = rollback.outcome?.result;
  if (outcome === 'superseded' || outcome === 'cancelled') {
    return { result: 'skipped', reason: `the drill's rollback was ${outcome}: ${rollback.outcome?.reason ?? ''}`, timeToDetectMs: null, timeToSafeMs };
  }
  if (outcome !== 'rolled-back-to') {
    return { result: 'failed', reason: `the rollback to ${rollback.version} did not arrive (outcome ${outcome ?? 'none'}: ${rollback.outcome?.reason ?? ''})`, timeToDetectMs: null, timeToSafeMs };
  }
  if (timeToSafeMs === null) return { result: 'failed', reason: 'the rollback history lacks the timings', timeToDetectMs: null, timeToSafeMs };
  const how = warm ? 'a route switch to the warm instance' : 'a cold deploy';
  if (timeToSafeMs > sloMs) {
    return { result: 'failed', reason: `all traffic on ${rollback.version} ${timeToSafeMs} ms after the rollback command (${how}), over the SLO of ${sloMs} ms`, timeToDetectMs: null, timeToSafeMs };
  }
  return { result: 'passed', reason: `all traffic on ${rollback.version} ${timeToSafeMs} ms after the rollback command (${how}), SLO ${sloMs} ms`, timeToDetectMs: null, timeToSafeMs };
}
