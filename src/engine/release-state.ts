// The release's observable state and the rules for operator commands. Pure: the workflow keeps one
// of these, the API and CLI read it through the status query, and the tests table the rules.

import type { Measurement, MeasurementPhase } from './analysis';

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
  | 'cancelled';

export const TERMINAL_STATES: readonly ReleaseState[] = ['promoted', 'rolled-back', 'aborted', 'superseded', 'cancelled'];

/** How a release ended. rolled-back: the engine decided (analysis, load test, failed step); aborted: a person or an alert. */
export type Outcome = 'promoted' | 'rolled-back' | 'aborted' | 'superseded' | 'cancelled';

export type PauseCause = 'operator' | 'alert' | 'inconclusive';

export type CommandName = 'pause' | 'resume' | 'promote' | 'abort' | 'approve';

/** An operator's (or Alertmanager's) command. Who and why stay in the workflow history: the audit trail. */
export interface ReleaseCommand {
  actor: string;
  reason: string;
  /** Where the command came from; alert pauses are told apart from operator pauses. */
  source?: 'operator' | 'alert';
}

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

export interface LoadTestRecord {
  step: string;
  passed: boolean;
  reason: string;
  result: {
    requests: number;
    errors: number;
    errorRate: number;
    requestsPerSecond: number;
    latencyMs: { p50: number; p95: number; p99: number };
  };
}

export interface AnalysisRecord {
  at: string;
  step: string;
  phase: MeasurementPhase;
  measurements: Measurement[];
}

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

/** Why a command cannot apply now, or null when it can. The API answers 409 with this text. */
export function rejectCommand(status: Pick<ReleaseStatus, 'state' | 'pause' | 'outcome'>, command: CommandName): string | null {
  const { state } = status;
  if (TERMINAL_STATES.includes(state)) return `the release has finished (${state}); nothing to ${command}`;
  if (state === 'rolling-back') return `the release is rolling back; nothing to ${command}`;
  switch (command) {
    case 'pause':
      return state === 'paused' ? `the release is already paused (${status.pause?.cause ?? 'operator'}: ${status.pause?.reason ?? ''})` : null;
    case 'resume':
      return state === 'paused' ? null : `the release is not paused (it is ${state})`;
    case 'promote':
      return state === 'awaiting-approval' ? 'the release is waiting for approval at a manual gate: approve it instead' : null;
    case 'approve':
      return state === 'awaiting-approval' ? null : `the release is not waiting for approval (it is ${state})`;
    case 'abort':
      return null;
  }
}

export function isTerminal(state: ReleaseState): boolean {
  return TERMINAL_STATES.includes(state);
}
