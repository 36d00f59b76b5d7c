import type { ReleaseClient } from '../src/temporal/releases';
import type { ReleaseInspection } from '../workflows/definitions';

/**
 * What a lane needs to know that no workflow can ask another directly: whether a release still runs,
 * and its state (why it is paused), so an alert's resume never lifts a person's pause.
 */
export function createLaneActivities({ releases }: { releases: ReleaseClient }) {
  return {
    async inspectRelease(releaseId: string): Promise<ReleaseInspection | null> {
      return releases.inspect(releaseId);
    },
  };
}

export type LaneActivities = ReturnType<typeof createLaneActivities>;
