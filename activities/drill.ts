import { Context } from '@temporalio/activity';
import type { ReleaseStatus } from '../src/engine/release-state';
import type { ReleaseSpec } from '../src/spec/release-spec';
import type { ReleaseClient } from '../src/temporal/releases';
import type { SubmitResult } from '../workflows/definitions';

/** What a drill needs from Temporal itself: the lane, to hand its release to, and the release's end. */
export function createDrillActivities({ releases }: { releases: ReleaseClient }) {
  return {
    async submitDrillRelease(spec: ReleaseSpec): Promise<SubmitResult> {
      return releases.submit(spec);
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
