import { proxyActivities, proxySinks, sleep, upsertMemo, workflowInfo } from '@temporalio/workflow';
import type { ReleaseActivities } from '../activities';
import type { DrillActivities } from '../activities/drill';
import { drillSpec, drillVersion, judgeDrill, type DrillInput, type DrillResult } from '../src/engine/drill';
import type { RampartSinks } from '../src/engine/events';

const lane = proxyActivities<DrillActivities>({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 5 } });
const watch = proxyActivities<DrillActivities>({ startToCloseTimeout: '2 hours', heartbeatTimeout: '30 seconds' });
const courtesy = proxyActivities<ReleaseActivities>({ startToCloseTimeout: '30 seconds', retry: { maximumAttempts: 3 } });
const { rampart } = proxySinks<RampartSinks>();

/**
 * A rollback drill: releases a deliberately faulty build of a service through its lane, lets the
 * engine detect it and roll back on its own, and measures time to detect and time to safe against an
 * SLO. It never runs over a real release: the lane refuses a drill while anything is in flight, and
 * the drill then skips or waits, and says which.
 */
export async function rollbackDrillWorkflow(input: DrillInput): Promise<DrillResult> {
  const startedAt = new Date().toISOString();
  const version = drillVersion(workflowInfo().runId);
  const base = { service: input.service, environment: input.environment, sloMs: input.sloMs, startedAt, version };

  const done = async (result: Omit<DrillResult, keyof typeof base | 'finishedAt'>): Promise<DrillResult> => {
    const full: DrillResult = { ...base, ...result, finishedAt: new Date().toISOString() };
    rampart.event(
      { type: 'drill', service: input.service, environment: input.environment, result: full.result, reason: full.reason, timeToDetectMs: full.timeToDetectMs, timeToSafeMs: full.timeToSafeMs },
      { phase: null, step: null },
    );
    upsertMemo({ drill: full });
    if (input.spec.notifications) {
      const text = `rollback drill of ${input.service} in ${input.environment}: ${full.result} (${full.reason})`;
      await courtesy.notify(input.spec.notifications.webhookUrl, { text, drill: full }).catch(() => undefined);
    }
    return full;
  };

  const deadline = Date.now() + input.maxWaitMs;
  let waited = false;
  for (;;) {
    const answer = await lane.submitDrillRelease(drillSpec(input, version));
    if (answer.disposition === 'busy') {
      if (input.whenBusy === 'skip' || Date.now() >= deadline) {
        const how = waited ? `waited ${input.maxWaitMs} ms, ` : '';
        return done({ result: 'skipped', reason: `${how}release ${answer.releaseId} is in flight; a drill never runs over a real release`, releaseId: null, outcome: null, timeToDetectMs: null, timeToSafeMs: null });
      }
      waited = true;
      await sleep(Math.min(10_000, Math.max(1, deadline - Date.now())));
      continue;
    }
    const status = await watch.awaitRelease(answer.releaseId);
    return done({ ...judgeDrill(status, input.sloMs), releaseId: answer.releaseId, outcome: status.outcome?.result ?? null });
  }
}
