// What a release tells the world as it goes, outside its history: metrics and log lines. Emitted
// through a workflow sink, so it costs no command and is not repeated when a worker replays.

import type { Sinks } from '@temporalio/workflow';
import type { Outcome, PauseCause, Phase } from './release-state';

/** Why a release rolled back, as a small set of labels a dashboard can group by. */
export type RollbackReason = 'analysis' | 'load-test' | 'step-failed' | 'aborted' | 'alert' | 'superseded' | 'cancelled' | 'drill-undetected';

export type ReleaseEvent =
  | { type: 'started'; service: string; environment: string; version: string; drill: boolean }
  | { type: 'phase'; service: string; environment: string; phase: Phase; step: string; previous: { phase: Phase; ms: number } | null }
  | { type: 'routes'; service: string; environment: string; canaryWeight: number }
  | { type: 'paused'; service: string; environment: string; cause: PauseCause; reason: string }
  | { type: 'rollback'; service: string; environment: string; reason: RollbackReason; detail: string }
  | {
      type: 'finished';
      service: string;
      environment: string;
      version: string;
      outcome: Outcome;
      reason: string;
      drill: boolean;
      durationMs: number;
      /** From the decision to roll back to traffic verified back on stable. */
      timeToSafeMs: number | null;
      /** The phase the release ended in and how long it spent there. */
      lastPhase: { phase: Phase; ms: number } | null;
    }
  | {
      type: 'drill';
      service: string;
      environment: string;
      result: 'passed' | 'failed' | 'skipped';
      reason: string;
      timeToDetectMs: number | null;
      timeToSafeMs: number | null;
    }
  | { type: 'transition'; service: string; environment: string; event: string; phase: Phase | null; step: string | null; actor?: string; reason?: string }
  /** A rollout across regions ended: one deployment of the service, with each region's end state. */
  | { type: 'rollout'; service: string; environment: string; version: string; state: string; regions: { region: string; state: string }[]; durationMs: number };

/** Where the release was when the event happened: every log line carries it. */
export interface EventContext {
  phase: Phase | null;
  step: string | null;
}

export interface RampartSinks extends Sinks {
  rampart: {
    event(event: ReleaseEvent, context: EventContext): void;
  };
}

/** What a finished release leaves in its memo, for DORA and drills to read from visibility without a second store. */
export interface ReleaseMemo {
  outcome: Outcome;
  commitTime: string | null;
  finishedAt: string;
  timeToSafeMs: number | null;
  drill: boolean;
  /** Left by a rollback of a promoted release: only its arrival (rolled-back-to) says anything about a change. */
  rollback?: boolean;
}
