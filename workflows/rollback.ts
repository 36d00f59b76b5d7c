import {
  ActivityFailure,
  CancellationScope,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  proxyActivities,
  proxySinks,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { ReleaseActivities, ReleaseRef } from '../activities';
import type { RampartSinks, ReleaseEvent, ReleaseMemo } from '../src/engine/events';
import { startingStatus, type Outcome, type ReleaseStatus } from '../src/engine/release-state';
import { describeUndo, EMPTY_SAGA, pointOfNoReturn, register, type SagaState, type Undo } from '../src/engine/saga';
import { runUndoActivity, unwind } from './compensation';
import { laneWorkflowId, outcomeKey, phaseKey, releaseFinishedSignal, statusQuery, supersedeSignal, type RollbackWorkflowInput } from './definitions';

// The target is known-good: every forward attempt is short and retried a few times, so a rollback
// that cannot go forward undoes itself in seconds rather than leaving the lane waiting for minutes.
const FAST_RETRY = { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '2s', maximumAttempts: 4 } as const;
/** Deploying the known-good version and waiting for its health check: a process start. */
const deploy = proxyActivities<ReleaseActivities>({ startToCloseTimeout: '30 seconds', heartbeatTimeout: '10 seconds', retry: FAST_RETRY });
/** Reads and weight changes: one runtime-API call each. */
const quick = proxyActivities<ReleaseActivities>({ startToCloseTimeout: '10 seconds', retry: FAST_RETRY });
/** Undos never give up (the release's rule): each attempt is short, so a crashed worker's attempt is retried in seconds. */
const undo = proxyActivities<ReleaseActivities>({ startToCloseTimeout: '10 seconds', retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '5s' } });
const undoDeployment = proxyActivities<ReleaseActivities>({ startToCloseTimeout: '1 minute', heartbeatTimeout: '10 seconds', retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '10s' } });
const { rampart } = proxySinks<RampartSinks>();

const STEPS = ['deploy', 'switch', 'retire'] as const;

class StopRollback extends Error {}

/**
 * A rollback of a promoted release to a version that was stable before: the fast path, since the
 * target is known-good. No synthetic load, analysis or bakes: the known-good version goes into the
 * canary slot, its health is checked, all traffic moves to it, then it replaces the bad version in
 * the stable slot and traffic returns to that slot. Each side effect registers its undo; a failure
 * or a supersede before the point of no return unwinds them newest first where nothing can cancel
 * them, which leaves traffic where it was. It reports its end to the lane exactly as a release does.
 */
export async function rollbackWorkflow(input: RollbackWorkflowInput): Promise<ReleaseStatus> {
  const { releaseId, service, environment, to } = input;
  const ref: ReleaseRef = { service, environment, version: to, target: input.target, ...(input.region ? { region: input.region } : {}) };
  const where = { service, environment };
  const status: ReleaseStatus = startingStatus({
    releaseId,
    service,
    environment,
    version: to,
    stableVersion: input.from,
    phase: 'full',
    stepCount: STEPS.length,
    requestedBy: input.actor,
    alerts: { onFiring: 'pause', resumeOnResolved: false },
    ...(input.commit ? { commit: input.commit } : {}),
  });
  let saga: SagaState = EMPTY_SAGA;
  // In an object: the supersede handler sets it, and the compiler must not assume it stays null.
  const stop: { reason: string | null } = { reason: null };
  /** Workflow time at which all traffic reached the known-good version: the end of time to safe. */
  let safeAt: number | null = null;

  const emit = (event: ReleaseEvent) => rampart.event(event, { phase: status.phase, step: status.step?.name ?? null });
  function record(event: string, extra: { actor?: string; reason?: string } = {}): void {
    emit({ type: 'transition', ...where, event, phase: status.phase, step: status.step?.name ?? null, ...extra });
    status.history.push({ at: new Date().toISOString(), event, state: status.state, ...(status.step ? { step: status.step.name } : {}), ...extra });
  }
  function registerUndo(next: Undo): void {
    saga = register(saga, next);
    status.compensation = saga.undos.map(describeUndo);
  }
  function step(index: number): void {
    status.step = { index, name: STEPS[index]! };
    record('step-started');
  }
  function checkStop(): void {
    if (stop.reason !== null) throw new StopRollback(stop.reason);
  }

  setHandler(statusQuery, () => status);
  // A newer version may supersede a rollback as it would a release, until the known-good version holds the stable slot.
  setHandler(supersedeSignal, ({ byVersion, byRelease }) => {
    if (status.state !== 'running' || saga.pastPointOfNoReturn) return;
    stop.reason = `superseded by ${byVersion} (${byRelease})`;
    status.state = 'rolling-back';
    record('superseded', { actor: 'rampart', reason: stop.reason });
  });

  const runUndo = (next: Undo) =>
    runUndoActivity(next, ref, { undo, undoDeployment }, (routes) => {
      status.routes = routes;
      emit({ type: 'routes', ...where, canaryWeight: routes.canaryWeight });
    });

  async function compensate(): Promise<string[]> {
    status.state = 'rolling-back';
    status.activity = 'rolling-back';
    record('rollback-started');
    const failures = await unwind(saga, runUndo, (event, reason) => record(event, { reason }));
    saga = EMPTY_SAGA;
    return failures;
  }

  async function finish(outcome: Outcome, reason: string): Promise<ReleaseStatus> {
    status.state = outcome;
    status.activity = 'finished';
    status.outcome = { result: outcome, reason, actor: input.actor, at: new Date().toISOString() };
    status.finishedAt = status.outcome.at;
    record('finished', { reason: `${outcome}: ${reason}`, actor: input.actor });
    upsertSearchAttributes([{ key: outcomeKey, value: outcome }]);
    const timeToSafeMs = safeAt === null ? null : safeAt - Date.parse(input.requestedAt);
    emit({ type: 'finished', ...where, version: to, outcome, reason, drill: input.drill === true, durationMs: Date.now() - Date.parse(status.startedAt), timeToSafeMs, lastPhase: null });
    // What DORA reads back from visibility: a rollback that arrived is a recovery, timed from the request.
    const memo: ReleaseMemo = { outcome, commitTime: input.commit?.time ?? null, finishedAt: status.finishedAt, timeToSafeMs: outcome === 'rolled-back-to' ? timeToSafeMs : null, drill: input.drill === true, rollback: true };
    upsertMemo({ release: memo });
    await getExternalWorkflowHandle(laneWorkflowId(service, environment, input.region))
      .signal(releaseFinishedSignal, { releaseId, outcome })
      .catch((error: Error) => log.info('no lane to tell that the rollback finished', { releaseId, error: error.message }));
    return status;
  }

  try {
    emit({ type: 'started', ...where, version: to, drill: input.drill === true });
    upsertSearchAttributes([{ key: phaseKey, value: 'full' }]);
    const slots = await quick.describeService(ref);
    const from = slots.stable;
    status.stableVersion = from;
    record('rollback-requested', { actor: input.actor, reason: `${from ?? 'nothing'} -> ${to}: ${input.reason}` });
    if (from === to && input.from !== null && input.from !== to && slots.canary === null) {
      // The release this rollback superseded kept `to` warm and switched all traffic back to it (one
      // weight change) before giving way: the rollback has arrived. Timed to now, an upper bound.
      safeAt = Date.now();
      status.stableVersion = input.from;
      record('traffic-moved', { reason: `all traffic already on ${to}: the superseded release of ${input.from} switched back to its warm instance` });
      return await finish('rolled-back-to', `${input.from} retired, all traffic on ${to} (warm instance, a route switch): ${input.reason}`);
    }
    if (from === to) return await finish('rolled-back-to', `${to} is already the stable version; nothing to do (${input.reason})`);

    step(0);
    registerUndo({ kind: 'stop-canary' });
    status.activity = 'deploying';
    await deploy.deployCanary(ref);
    record('canary-deployed', { reason: `${to}, healthy` });
    checkStop();

    step(1);
    registerUndo({ kind: 'reset-routes' });
    status.activity = 'moving-traffic';
    status.routes = await quick.setRoutes(ref, { canaryWeight: 100, internalAudience: null });
    safeAt = Date.now();
    emit({ type: 'routes', ...where, canaryWeight: status.routes.canaryWeight });
    record('traffic-moved', { reason: `all traffic on ${to}` });
    checkStop();

    step(2);
    status.activity = 'finalizing';
    if (from) registerUndo({ kind: 'restore-stable', version: from });
    await deploy.promoteStable(ref);
    record('stable-replaced', { reason: `${from ?? 'nothing'} retired, ${to} in the stable slot` });
    checkStop();
    saga = pointOfNoReturn(saga);
    status.pointOfNoReturn = true;
    status.compensation = [];
    record('point-of-no-return', { reason: `traffic returns to the stable slot, now ${to}` });
    await CancellationScope.nonCancellable(async () => {
      status.routes = await undo.setRoutes(ref, { canaryWeight: 0, internalAudience: null });
      emit({ type: 'routes', ...where, canaryWeight: 0 });
      await undo.stopCanary(ref);
    });
    return await finish('rolled-back-to', `${from ?? 'nothing'} retired, all traffic on ${to}: ${input.reason}`);
  } catch (error) {
    safeAt = null;
    const [outcome, reason]: [Outcome, string] = stop.reason !== null
      ? ['superseded', stop.reason]
      : isCancellation(error)
        ? ['cancelled', 'the rollback workflow was cancelled']
        : ['rolled-back', `the rollback to ${to} failed and was undone: ${error instanceof ActivityFailure ? `${error.activityType}: ${error.cause?.message ?? error.message}` : (error as Error).message}`];
    emit({ type: 'rollback', ...where, reason: outcome === 'superseded' ? 'superseded' : outcome === 'cancelled' ? 'cancelled' : 'step-failed', detail: reason });
    const failures = await CancellationScope.nonCancellable(compensate);
    const suffix = failures.length ? `; undo failures: ${failures.join('; ')}` : '';
    return await CancellationScope.nonCancellable(() => finish(outcome, reason + suffix));
  }
}
