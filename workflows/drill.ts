import { proxyActivities, proxySinks, sleep, upsertMemo, workflowInfo } from '@temporalio/workflow';
import type { ReleaseActivities } from '../activities';
import type { DrillActivities } from '../activities/drill';
import { drillSpec, drillVersion, judgeDrill, judgeRevertDrill, revertDrillSpec, type DrillInput, type DrillResult } from '../src/engine/drill';
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
  const kind = input.kind ?? 'canary-fault';
  // Results of canary-fault drills keep their shape from before revert drills.
  const base = { ...(kind === 'revert' ? { kind } : {}), service: input.service, environment: input.environment, sloMs: input.sloMs, startedAt, version };

  const done = async (result: Omit<DrillResult, keyof typeof base | 'finishedAt'>): Promise<DrillResult> => {
    const full: DrillResult = { ...base, ...result, finishedAt: new Date().toISOString() };
    rampart.event(
      { type: 'drill', ...(kind === 'revert' ? { kind } : {}), service: input.service, environment: input.environment, result: full.result, reason: full.reason, timeToDetectMs: full.timeToDetectMs, timeToSafeMs: full.timeToSafeMs },
      { phase: null, step: null },
    );
    upsertMemo({ drill: full });
    if (input.spec.notifications) {
      const text = `${kind === 'revert' ? 'revert' : 'rollback'} drill of ${input.service} in ${input.environment}: ${full.result} (${full.reason})`;
      await courtesy.notify(input.spec.notifications.webhookUrl, { text, drill: full }).catch(() => undefined);
    }
    return full;
  };

  /**
   * A revert drill once its healthy build is in flight: wait until the build has all traffic, roll it
   * back with the rollback command as an operator would, and time the command to all traffic on the
   * previous version. Inside the warm window that is a route switch, outside it a cold deploy.
   */
  async function revert(releaseId: string): Promise<Omit<DrillResult, keyof typeof base | 'finishedAt'>> {
    const none = { releaseId, timeToDetectMs: null, timeToSafeMs: null, rollbackId: null };
    const promoted = await watch.awaitPromotion(releaseId);
    if (promoted.activity !== 'warm' && promoted.outcome?.result !== 'promoted') {
      const outcome = promoted.outcome?.result ?? null;
      return { ...none, outcome, result: 'failed', reason: `the healthy drill build did not reach 100% (outcome ${outcome ?? 'none'}: ${promoted.outcome?.reason ?? ''})` };
    }
    const rollback = await lane.requestDrillRollback(input.service, input.environment, `revert drill: ${version} back to the version stable before it`);
    if ('refused' in rollback || !rollback.answer.releaseId) {
      // The build stays stable: the lane had nothing to return to (a service's first release), and the next drill has.
      const why = 'refused' in rollback ? rollback.refused : (rollback.answer.reason ?? rollback.answer.disposition);
      return { ...none, outcome: 'promoted', result: 'skipped', reason: `the rollback was refused: ${why}` };
    }
    // The release gives way first (the rollback supersedes it), then the lane starts the rollback.
    const release = await watch.awaitRelease(releaseId);
    const rolledBack = await watch.awaitRelease(rollback.answer.releaseId);
    return {
      ...judgeRevertDrill(rollback.commandAt, rolledBack, release, input.sloMs),
      releaseId,
      rollbackId: rollback.answer.releaseId,
      outcome: rolledBack.outcome?.result ?? null,
    };
  }

  const deadline = Date.now() + input.maxWaitMs;
  let waited = false;
  for (;;) {
    const answer = await lane.submitDrillRelease(kind === 'revert' ? revertDrillSpec(input, version) : drillSpec(input, version));
    if (answer.disposition === 'busy') {
      if (input.whenBusy === 'skip' || Date.now() >= deadline) {
        const how = waited ? `waited ${input.maxWaitMs} ms, ` : '';
        return done({ result: 'skipped', reason: `${how}release ${answer.releaseId} is in flight; a drill never runs over a real release`, releaseId: null, outcome: null, timeToDetectMs: null, timeToSafeMs: null });
      }
      waited = true;
      await sleep(Math.min(10_000, Math.max(1, deadline - Date.now())));
      continue;
    }
    if (kind === 'revert') return done(await revert(answer.releaseId));
    const status = await watch.awaitRelease(answer.releaseId);
    return done({ ...judgeDrill(status, input.sloMs), releaseId: answer.releaseId, outcome: status.outcome?.result ?? null });
  }
}
