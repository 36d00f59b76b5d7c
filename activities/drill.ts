import { Context } from '@temporalio/activity';
import type { ReleaseStatus } from '../src/engine/release-state';
import type { ReleaseSpec } from '../src/spec/release-spec';
import { setTimeout as sleep } from 'node:timers/promises';
import { isTerminal } from '../src/engine/release-state';
import { RollbackRefusedError, type ReleaseClient } from '../src/temporal/releases';
import type { RollbackAnswer, SubmitResult } from '../workflows/definitions';

/** What a revert drill's rollback command got: the lane's answer and when it was sent (epoch ms), or why it was refused. */
export type DrillRollback = { answer: RollbackAnswer; commandAt: number } | { refused: string };

/** What a drill needs from Temporal itself: the lane, to hand its release to, and the release's end. */
export function createDrillActivities({ releases }: { releases: ReleaseClient }) {
  return {
    async submitDrillRelease(spec: ReleaseSpec): Promise<SubmitResult> {
      return releases.submit(spec);
    },

    /**
     * Waits until the release has all traffic for good: promoted, or keeping the previous version warm
     * (a release in its warm window stays in flight for minutes). Answers a release that ended otherwise too.
     */
    async awaitPromotion(releaseId: string): Promise<ReleaseStatus> {
      const context = Context.current();
      for (;;) {
        context.heartbeat();
        const status = await releases.status(releaseId);
        if (status.activity === 'warm' || isTerminal(status.state)) return status;
        await sleep(200, undefined, { signal: context.cancellationSignal });
      }
    },

    /** A revert drill's rollback command, through the lane as an operator's would go; timed from just before it is sent. */
    async requestDrillRollback(service: string, environment: string, reason: string): Promise<DrillRollback> {
      const commandAt = Date.now();
      try {
        return { answer: await releases.rollback(service, environment, { actor: 'rampart-drill', reason, drill: true }), commandAt };
      } catch (error) {
        if (error instanceof RollbackRefusedError) return { refused: error.message };
        throw error;
      }
    },

    /** Waits for the release to finish, heartbeating so a lost worker is noticed within the heartbeat timeout. */
    async awaitRelease(releaseId: string): Promise<ReleaseStatus> {
      const context = Context.current();
      const beat = setInterval(() => context.heartbeat(), 5_000);
      try {
        // Heartbeats deliver a cancellation (the drill was cancelled, the worker shuts down): it aborts the wait itself.
        return await releases.result(releaseId, context.cancellationSignal);
      } finally {
        clearInterval(beat);
      }
    },
  };
}

export type DrillActivities = ReturnType<typeof createDrillActivities>;
