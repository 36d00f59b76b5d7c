// The release's observable state and the rules for operator commands. Pure: the workflow keeps one
// of these, the API and CLI read it through the status query, and the tests table the rules.

import type { AnalysisRun } from './analysis';

export type Phase = 'synthetic' | 'canary' | 'ramp' | 'full';

export type ReleaseState =
  | 'running'
  | 'paused'
  | 'awaiting-approval'
  | 'rolling-back'
  | 'promoted'
  | 'rolled-back'
  | 'aborted'
  | 'superseded'
  | 'cancelled'
  | 'rolled-back-to';

export const TERMINAL_STATES: readonly ReleaseState[] = ['promoted', 'rolled-back', 'aborted', 'superseded', 'cancelled', 'rolled-back-to'];

/**
 * How a release ended. rolled-back: the engine decided (analysis, load test, failed step); aborted: a
 * person or an alert; rolled-back-to: a rollback of a promoted release returned the lane to a known-good version.
 */
export type Outcome = 'promoted' | 'rolled-back' | 'aborted' | 'superseded' | 'cancelled' | 'rolled-back-to';

export type PauseCause = 'operator' | 'alert' | 'inconclusive';

export type CommandName = 'pause' | 'resume' | 'promote' | 'abort' | 'approve';

/** An operator's (or Alertmanager's) command. Who and why stay in the workflow history: the audit trail. */
export interface ReleaseCommand {
  actor: string;
  reason: string;
  /** Where the command came from; alert pauses are told apart from operator pauses. */
  source?: 'operator' | 'alert';
  /**
   * The step the sender saw (the API and CLI fill it in from the status): a command meant for one step
   * is refused once the release has moved on, rather than acting on a step the sender never saw.
   */
  step?: string;
}

/** What the release is doing right now; promote is only meaningful while a step bakes. */
export type ReleaseActivity =
  | 'starting'
  | 'awaiting-approval'
  | 'running-hooks'
  | 'deploying'
  | 'load-testing'
  | 'moving-traffic'
  | 'baking'
  | 'finalizing'
  /** Promoted: the new version serves everything from the canary slot while the previous one waits, warm, at weight 0. */
  | 'warm'
  | 'rolling-back'
  | 'finished';

export interface RoutesView {
  canaryWeight: number;
  internalAudience: { header: string; value: string } | null;
}

export interface Transition {
  at: string;
  event: string;
  state: ReleaseState;
  step?: string;
  actor?: string;
  reason?: string;
}

/** A load result as the status shows it: the figures, without the histogram the judge weighed. */
export interface LoadFigures {
  requests: number;
  errors: number;
  errorRate: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p95: number; p99: number };
}

export interface LoadTestRecord {
  step: string;
  /** pass, fail, or inconclusive (too little load to tell: the release pauses). */
  outcome: 'pass' | 'fail' | 'inconclusive' | 'error';
  reason: string;
  canary: LoadFigures;
  stable: LoadFigures | null;
  /** The judge's verdicts, with their evidence. */
  verdicts: AnalysisRun['verdicts'];
}

/** One look of the analysis: every check judged on the evidence since the step moved traffic. */
export type AnalysisRecord = AnalysisRun;

export interface ReleaseStatus {
  releaseId: string;
  service: string;
  environment: string;
  version: string;
  /** The version that was at 100% when the release started; what a rollback returns to. */
  stableVersion: string | null;
  state: ReleaseState;
  phase: Phase | null;
  step: { index: number; name: string } | null;
  stepCount: number;
  /** The routes last verified on the router. */
  routes: RoutesView;
  pause: { cause: PauseCause; actor: string; reason: string; at: string } | null;
  activity: ReleaseActivity;
  /** Set once traffic moves to the new stable instance: the release can only finish forward, and an abort is refused. */
  pointOfNoReturn?: boolean;
  /**
   * The warm window after the promotion: the previous version still runs in the stable slot at
   * weight 0 until `until`, so a rollback to it is one weight change. Null once it is retired.
   */
  warm?: { version: string; until: string } | null;
  /** How many times the release continued as new (long bakes). */
  generation: number;
  analysis: AnalysisRecord[];
  loadTests: LoadTestRecord[];
  /** Names of the undos registered so far, oldest first; a rollback runs them newest first. */
  compensation: string[];
  history: Transition[];
  outcome: { result: Outcome; reason: string; actor?: string; at: string } | null;
  requestedBy: string;
  /** How Alertmanager's alerts steer this release (the spec's alert policy). */
  alerts: { onFiring: 'pause' | 'abort'; resumeOnResolved: boolean };
  commit?: { sha: string; time: string };
  startedAt: string;
  finishedAt: string | null;
}

/** A release's (or a rollback's) status as it starts: running, nothing done yet, all traffic where it was. */
export function startingStatus(
  fields: Pick<ReleaseStatus, 'releaseId' | 'service' | 'environment' | 'version' | 'stableVersion' | 'phase' | 'stepCount' | 'requestedBy' | 'alerts'> & { commit?: ReleaseStatus['commit'] },
): ReleaseStatus {
  const { commit, ...known } = fields;
  return {
    ...known,
    state: 'running',
    step: null,
    routes: { canaryWeight: 0, internalAudience: null },
    pause: null,
    activity: 'starting',
    analysis: [],
    loadTests: [],
    compensation: [],
    history: [],
    outcome: null,
    ...(commit ? { commit } : {}),
    generation: 0,
    // In a workflow, the workflow's deterministic clock.
    startedAt: new Date().toISOString(),
    finishedAt: null,
  };
}

/** Why a command cannot apply now, or null when it can. The API answers 409 with this text. */
export function rejectCommand(
  status: Pick<ReleaseStatus, 'state' | 'pause' | 'outcome' | 'step'> & Partial<Pick<ReleaseStatus, 'activity' | 'pointOfNoReturn'>>,
  command: CommandName,
  step?: string,
  source?: ReleaseCommand['source'],
): string | null {
  const { state } = status;
  if (TERMINAL_STATES.includes(state)) return `the release has finished (${state}); nothing to ${command}`;
  if (state === 'rolling-back') return `the release is rolling back; nothing to ${command}`;
  if (status.pointOfNoReturn && (command === 'abort' || command === 'promote' || command === 'pause')) {
    return `the release is past its point of no return (traffic is moving to the new stable instance); nothing to ${command}: roll back to a known-good version once it finishes`;
  }
  if (step !== undefined && step !== (status.step?.name ?? null)) {
    return `the ${command} was meant for step ${step}, but the release has moved on to ${status.step?.name ?? 'no step'}`;
  }
  switch (command) {
    case 'pause':
      return state === 'paused' ? `the release is already paused (${status.pause?.cause ?? 'operator'}: ${status.pause?.reason ?? ''})` : null;
    case 'resume':
      if (state !== 'paused') return `the release is not paused (it is ${state})`;
      // A resolved alert lifts only an alert's pause: a person's pause (or an inconclusive one) waits for a person.
      if (source === 'alert' && status.pause?.cause !== 'alert') return `the release was paused by ${status.pause?.cause ?? 'someone'}, not by an alert: a resolved alert does not resume it`;
      return null;
    case 'promote':
      if (state === 'awaiting-approval') return 'the release is waiting for approval at a manual gate: approve it instead';
      // A promote skips the rest of the bake in progress; sent while traffic moves it would skip the next step's whole bake.
      if (status.activity !== undefined && status.activity !== 'baking') return `the release is not baking (it is ${status.activity}): a promote skips a bake in progress, send it once the step bakes`;
      return null;
    case 'approve':
      return state === 'awaiting-approval' ? null : `the release is not waiting for approval (it is ${state})`;
    case 'abort':
      return null;
  }
}

export function isTerminal(state: ReleaseState): boolean {
  return TERMINAL_STATES.includes(state);
}
