import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Outcome } from '../src/engine/release-state';
import type { ReleaseSpec } from '../src/spec/release-spec';
import type { ReleaseClient } from '../src/temporal/releases';
import type { RollbackAnswer, SubmitResult } from '../workflows/definitions';

/** How often a wait for a region's release tells the server it is alive: a worker killed mid-wait is noticed in a heartbeat timeout. */
const HEARTBEAT_MS = 3_000;
/** How often a wait looks again for a release its lane has queued and not started yet. */
const NOT_STARTED_POLL_MS = 1_000;

export interface RegionSubmission extends SubmitResult {
  /** The version stable in the region's lane before this release: what a rollback of the region returns to. */
  previousStable: string | null;
}

export interface ReleaseEnd {
  finished: boolean;
  /** How it ended; null while it runs, or when it ended without one (failed, terminated). */
  outcome: Outcome | null;
}

/**
 * What a rollout asks of Temporal that no workflow can do itself: submit a release to a region's lane
 * (an update with start), wait for a release to end, and ask a lane for a rollback. Each is safe to
 * repeat: the lane answers a repeated submission as a duplicate, and a rollback already done as done.
 */
export function createRolloutActivities({ releases }: { releases: ReleaseClient }) {
  /** Waits up to `waitMs` for a workflow to end, heartbeating so a lost worker is noticed; cancellable. */
  async function waitForEnd(releaseId: string, waitMs: number): Promise<ReleaseEnd> {
      const context = Context.current();
    const stop = new AbortController();
    const onCancel = () => stop.abort();
    context.cancellationSignal.addEventListener('abort', onCancel);
    const beat = setInterval(() => context.heartbeat(), HEARTBEAT_MS);
    const deadline = setTimeout(() => stop.abort(), waitMs);
    try {
      let inspection = await releases.inspect(releaseId);
      // Queued behind a release that rolls back first: the lane starts it in seconds.
      while (inspection === null) {
        await sleep(NOT_STARTED_POLL_MS, undefined, { signal: stop.signal }).catch(() => undefined);
        if (stop.signal.aborted) return { finished: false, outcome: null };
        inspection = await releases.inspect(releaseId);
      }
      if (!inspection.running) return { finished: true, outcome: inspection.status?.outcome?.result ?? null };
      const status = await releases.result(releaseId, stop.signal).catch((error: Error) => {
        if (stop.signal.aborted) return undefined;
        if (error instanceof WorkflowNotFoundError) return undefined;
        return null;
      });
      if (status === undefined) return { finished: false, outcome: null };
      return { finished: true, outcome: status?.outcome?.result ?? null };
    } finally {
      clearInterval(beat);
      clearTimeout(deadline);
      context.cancellationSignal.removeEventListener('abort', onCancel);
    }
  }

  return {
    /**
     * Hands a region's release to its lane and waits up to `waitMs` for it to end: one activity for
     * what is most often the whole of a region's release (a longer one goes on with awaitRegionRelease).
     */
    async releaseInRegion(spec: ReleaseSpec, waitMs: number): Promise<RegionSubmission & { end: ReleaseEnd }> {
      const lane = await releases.lane(spec.service, spec.environment, spec.region);
      const stable = lane?.stable.at(-1)?.version ?? null;
      // Once the release itself has become stable here (a retried attempt), the version before it is what a rollback returns to.
      const previousStable = stable === spec.version ? (lane?.stable.at(-2)?.version ?? null) : stable;
      const submitted = await releases.submit(spec);
      if (submitted.disposition === 'stale' || submitted.disposition === 'busy') return { ...submitted, previousStable, end: { finished: true, outcome: null } };
      return { ...submitted, previousStable, end: await waitForEnd(submitted.releaseId, waitMs) };
    },

    /** Waits up to `waitMs` for a release (or rollback) to end, heartbeating; a release not started yet (queued) is still running. */
    async awaitRegionRelease(releaseId: string, waitMs: number): Promise<ReleaseEnd> {
      return waitForEnd(releaseId, waitMs);
    },

    /**
     * Asks a region's lane to return to `to`. When the lane already runs `to` with nothing in flight
     * (a retried request whose rollback is done), the answer says so rather than asking again.
     */
    async rollbackRegion(args: { service: string; environment: string; region: string; to: string; actor: string; reason: string }): Promise<RollbackAnswer & { alreadyThere?: boolean }> {
      const lane = await releases.lane(args.service, args.environment, args.region);
      if (lane && lane.stable.at(-1)?.version === args.to && !lane.current && !lane.pending) {
        return { releaseId: null, disposition: 'refused', to: args.to, from: args.to, allowed: [], alreadyThere: true, reason: `${args.to} is stable in ${args.region} already` };
      }
      try {
        return await releases.rollback(args.service, args.environment, { to: args.to, actor: args.actor, reason: args.reason }, args.region);
      } catch (error) {
        const reason = (error as Error).message;
        return { releaseId: null, disposition: 'refused', to: args.to, from: null, allowed: (error as { allowed?: string[] }).allowed ?? [], reason };
      }
    },
  };
}

export type RolloutActivities = ReturnType<typeof createRolloutActivities>;
