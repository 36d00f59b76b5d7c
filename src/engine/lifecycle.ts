// The release's lifecycle as a pure reducer: what an accepted command, a supersede or the engine's own
// pause does to the release, and the state the world sees, derived from it. The workflow keeps one
// Lifecycle, feeds it inputs from its handlers and its bake, and records the transition it returns;
// the rules for refusing a command are rejectCommand in release-state.ts.
import type { CommandName, Outcome, PauseCause, ReleaseCommand, ReleaseState } from './release-state';

export interface StopRequest {
  outcome: 'aborted' | 'superseded';
  actor: string;
  reason: string;
  source: 'operator' | 'alert' | 'lane';
}

export interface Pause {
  cause: PauseCause;
  actor: string;
  reason: string;
  at: string;
}

export interface Lifecycle {
  /** Running, rolling back, or how it ended. */
  phase: 'running' | 'rolling-back' | Outcome;
  pause: Pause | null;
  awaitingApproval: boolean;
  approved: boolean;
  /** The step index a person asked to promote past: a promote binds to the step it was sent in, never the next one. */
  promoteStep: number | null;
  stop: StopRequest | null;
}

export const INITIAL_LIFECYCLE: Lifecycle = { phase: 'running', pause: null, awaitingApproval: false, approved: false, promoteStep: null, stop: null };

/** The state the world sees: derived, so the flags and the state never disagree. */
export function observableState(life: Lifecycle): ReleaseState {
  if (life.phase !== 'running') return life.phase;
  if (life.pause) return 'paused';
  if (life.awaitingApproval) return 'awaiting-approval';
  return 'running';
}

export type LifecycleInput =
  /** An operator's (or an alert's) command that rejectCommand accepted. */
  | { kind: 'command'; name: CommandName; command: ReleaseCommand; stepIndex: number | null; at: string }
  /** The lane: a newer version arrived. */
  | { kind: 'supersede'; byVersion: string; byRelease: string }
  /** The engine pauses itself (not enough evidence, query errors). */
  | { kind: 'engine-pause'; reason: string; at: string }
  /** A step with a manual gate begins waiting. */
  | { kind: 'gate' }
  /** The gate was passed (approved or stopped). */
  | { kind: 'gate-passed' }
  /** The engine decided to roll back, or finished. */
  | { kind: 'rolling-back' }
  | { kind: 'finished'; outcome: Outcome };

/** What to write into the release's history for a transition; null when nothing happened. */
export interface Transition {
  event: string;
  actor?: string;
  reason?: string;
  /** Set when the transition paused the release (for the paused event and metric). */
  paused?: Pause;
}

export function reduce(life: Lifecycle, input: LifecycleInput): { life: Lifecycle; transition: Transition | null } {
  switch (input.kind) {
    case 'command': {
      const { actor, reason, source } = input.command;
      switch (input.name) {
        case 'pause': {
          const paused: Pause = { cause: source === 'alert' ? 'alert' : 'operator', actor, reason, at: input.at };
          return { life: { ...life, pause: paused }, transition: { event: 'paused', actor, reason, paused } };
        }
        case 'resume':
          return { life: { ...life, pause: null }, transition: { event: 'resumed', actor, reason } };
        case 'promote':
          // A person's promote also lifts a pause: they looked and decided.
          return { life: { ...life, pause: null, promoteStep: input.stepIndex }, transition: { event: 'promote-requested', actor, reason } };
        case 'approve':
          return { life: { ...life, approved: true, awaitingApproval: false }, transition: { event: 'approved', actor, reason } };
        case 'abort':
          // Rolling back at once, so a resume or promote that races the abort is refused: abort always wins.
          return {
            life: { ...life, phase: 'rolling-back', stop: { outcome: 'aborted', actor, reason, source: source ?? 'operator' } },
            transition: { event: 'abort-requested', actor, reason },
          };
      }
      break;
    }
    case 'supersede': {
      if (life.phase !== 'running') return { life, transition: null };
      const reason = `superseded by ${input.byVersion} (${input.byRelease})`;
      return { life: { ...life, phase: 'rolling-back', stop: { outcome: 'superseded', actor: 'rampart', reason, source: 'lane' } }, transition: { event: 'superseded', actor: 'rampart', reason } };
    }
    case 'engine-pause': {
      const paused: Pause = { cause: 'inconclusive', actor: 'rampart', reason: input.reason, at: input.at };
      return { life: { ...life, pause: paused }, transition: { event: 'paused', actor: 'rampart', reason: input.reason, paused } };
    }
    case 'gate':
      return { life: { ...life, awaitingApproval: true, approved: false }, transition: { event: 'awaiting-approval' } };
    case 'gate-passed':
      return { life: { ...life, awaitingApproval: false }, transition: null };
    case 'rolling-back':
      return { life: { ...life, phase: 'rolling-back' }, transition: null };
    case 'finished':
      return { life: { ...life, phase: input.outcome }, transition: null };
  }
  return { life, transition: null };
}
