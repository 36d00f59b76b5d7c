import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxySinks,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { ReleaseActivities, ReleaseRef } from '../activities';
import {
  decide,
  EMPTY_TALLY,
  judgeMeasurement,
  runPhase,
  tally,
  type AnalysisTally,
} from '../src/engine/analysis';
import type { RampartSinks, ReleaseEvent, ReleaseMemo, RollbackReason } from '../src/engine/events';
import {
  isTerminal,
  rejectCommand,
  type CommandName,
  type Outcome,
  type PauseCause,
  type ReleaseCommand,
  type ReleaseState,
  type ReleaseStatus,
  type RoutesView,
} from '../src/engine/release-state';
import type { StepSpec } from '../src/spec/release-spec';
import {
  abortSignal,
  abortUpdate,
  approveSignal,
  approveUpdate,
  outcomeKey,
  pauseSignal,
  pauseUpdate,
  phaseKey,
  promoteSignal,
  promoteUpdate,
  resumeSignal,
  resumeUpdate,
  statusQuery,
  supersedeSignal,
  type ReleaseWorkflowInput,
} from './definitions';

const STEP_RETRY = { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 5 } as const;

/** Forward steps: a step that still fails after its retries rolls the release back. */
const forward = proxyActivities<ReleaseActivities>({ startToCloseTimeout: '1 minute', retry: STEP_RETRY });
const deployment = proxyActivities<ReleaseActivities>({ startToCloseTimeout: '5 minutes', retry: STEP_RETRY });
const loadTest = proxyActivities<ReleaseActivities>({
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '30 seconds',
  retry: { ...STEP_RETRY, maximumAttempts: 2 },
});
/**
 * Traffic moves wait out a router outage (up to 10 minutes) rather than roll back because of it: a
 * weight is never reported unverified, and the release goes on when the router returns.
 */
const traffic = proxyActivities<ReleaseActivities>({
  startToCloseTimeout: '1 minute',
  scheduleToCloseTimeout: '10 minutes',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '5s' },
});
/** Undos never give up: a rollback waits for the router or deployer to come back rather than leave traffic on a bad version. */
const undo = proxyActivities<ReleaseActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '10s' },
});

/** Notifications are a courtesy: a few tries, then the release finishes without them. */
const courtesy = proxyActivities<ReleaseActivities>({ startToCloseTimeout: '30 seconds', retry: { ...STEP_RETRY, maximumAttempts: 3 } });
const { rampart } = proxySinks<RampartSinks>();

const MAX_HISTORY = 200;
const MAX_ANALYSIS_RUNS = 50;

/** Thrown inside the workflow when an operator abort or a supersede stops the release. */
class StopRelease extends Error {}
/** Thrown when the engine itself decides to roll back: failed analysis, failed load test. */
class RollbackRelease extends Error {
  constructor(message: string, readonly reason: RollbackReason) {
    super(message);
  }
}

interface Undo {
  name: string;
  run: () => Promise<unknown>;
}

/**
 * One release of one version of one service: the steps of its strategy in order, each moving traffic,
 * baking and analysing; commands and alerts steer it; any abort, failure or cancellation unwinds the
 * registered undos in reverse, in a scope nothing can cancel.
 */
export async function releaseWorkflow({ releaseId, spec }: ReleaseWorkflowInput): Promise<ReleaseStatus> {
  const ref: ReleaseRef = { service: spec.service, environment: spec.environment, version: spec.version, target: spec.target };
  const steps = spec.strategy.steps;
  const startedAt = new Date().toISOString();

  const status: ReleaseStatus = {
    releaseId,
    service: spec.service,
    environment: spec.environment,
    version: spec.version,
    stableVersion: null,
    state: 'running',
    phase: null,
    step: null,
    stepCount: steps.length,
    routes: { canaryWeight: 0, internalAudience: null },
    pause: null,
    analysis: [],
    loadTests: [],
    compensation: [],
    history: [],
    outcome: null,
    requestedBy: spec.requestedBy,
    alerts: spec.alerts,
    ...(spec.commit ? { commit: spec.commit } : {}),
    startedAt,
    finishedAt: null,
  };

  // Lifecycle flags; the state the world sees is derived from them, so they never disagree.
  let lifecycle: 'running' | 'rolling-back' | Outcome = 'running';
  let awaitingApproval = false;
  let approved = false;
  let promoteRequested = false;
  let stopRequest: { outcome: 'aborted' | 'superseded'; actor: string; reason: string; source: 'operator' | 'alert' | 'lane' } | null = null;
  /** Workflow time at which the release decided to roll back: the start of time-to-safe. */
  let rollbackDecidedAt: number | null = null;
  const undos: Undo[] = [];
  let phaseStartedAt: number | null = null;

  function state(): ReleaseState {
    if (lifecycle !== 'running') return lifecycle;
    if (status.pause) return 'paused';
    if (awaitingApproval) return 'awaiting-approval';
    return 'running';
  }

  function snapshot(): ReleaseStatus {
    status.state = state();
    return status;
  }

  const where = { service: spec.service, environment: spec.environment };

  function emit(event: ReleaseEvent): void {
    rampart.event(event, { phase: status.phase, step: status.step?.name ?? null });
  }

  function record(event: string, extra: { actor?: string; reason?: string } = {}): void {
    emit({ type: 'transition', ...where, event, phase: status.phase, step: status.step?.name ?? null, ...extra });
    status.history.push({
      at: new Date().toISOString(),
      event,
      state: state(),
      ...(status.step ? { step: status.step.name } : {}),
      ...extra,
    });
    if (status.history.length > MAX_HISTORY) status.history.splice(0, status.history.length - MAX_HISTORY);
  }

  function pause(cause: PauseCause, actor: string, reason: string): void {
    status.pause = { cause, actor, reason, at: new Date().toISOString() };
    emit({ type: 'paused', ...where, cause, reason });
    record('paused', { actor, reason });
  }

  function apply(command: CommandName, { actor, reason, source }: ReleaseCommand): void {
    switch (command) {
      case 'pause':
        pause(source === 'alert' ? 'alert' : 'operator', actor, reason);
        return;
      case 'resume':
        status.pause = null;
        record('resumed', { actor, reason });
        return;
      case 'promote':
        // A person's promote also lifts a pause: they looked and decided.
        status.pause = null;
        promoteRequested = true;
        record('promote-requested', { actor, reason });
        return;
      case 'approve':
        approved = true;
        awaitingApproval = false;
        record('approved', { actor, reason });
        return;
      case 'abort':
        stopRequest = { outcome: 'aborted', actor, reason, source: source ?? 'operator' };
        // Set at once, so a resume or promote that races the abort is refused: abort always wins.
        lifecycle = 'rolling-back';
        record('abort-requested', { actor, reason });
        return;
    }
  }

  const commands: Array<[CommandName, typeof pauseSignal, typeof pauseUpdate]> = [
    ['pause', pauseSignal, pauseUpdate],
    ['resume', resumeSignal, resumeUpdate],
    ['promote', promoteSignal, promoteUpdate],
    ['approve', approveSignal, approveUpdate],
    ['abort', abortSignal, abortUpdate],
  ];
  for (const [name, signal, update] of commands) {
    setHandler(signal, (command) => {
      const rejection = rejectCommand(snapshot(), name);
      if (rejection) record(`${name}-ignored`, { actor: command.actor, reason: rejection });
      else apply(name, command);
    });
    setHandler(
      update,
      async (command) => {
        apply(name, command);
        // An abort answers once the release is safe, so the caller sees the rollback done.
        if (name === 'abort') await condition(() => isTerminal(state()));
        return snapshot();
      },
      {
        validator: (command) => {
          if (!command || typeof command.actor !== 'string' || !command.actor) throw new Error('a command needs an actor');
          const rejection = rejectCommand(snapshot(), name);
          if (rejection) throw new Error(rejection);
        },
      },
    );
  }
  setHandler(supersedeSignal, ({ byVersion, byRelease }) => {
    if (lifecycle !== 'running') return;
    stopRequest = { outcome: 'superseded', actor: 'rampart', reason: `superseded by ${byVersion} (${byRelease})`, source: 'lane' };
    lifecycle = 'rolling-back';
    record('superseded', { actor: 'rampart', reason: stopRequest.reason });
  });
  setHandler(statusQuery, snapshot);

  function checkStop(): void {
    if (stopRequest) throw new StopRelease(stopRequest.reason);
  }

  /** Holds here while paused; a pause never lets traffic move or a bake advance. */
  async function holdWhilePaused(): Promise<void> {
    if (status.pause) await condition(() => status.pause === null || stopRequest !== null);
    checkStop();
  }

  function registerUndo(name: string, run: () => Promise<unknown>): void {
    undos.push({ name, run });
    status.compensation.push(name);
  }

  async function moveTraffic(routes: RoutesView): Promise<void> {
    if (!status.compensation.includes('reset-routes')) {
      // Registered before the move: a weight change that half-happened must still be undone.
      registerUndo('reset-routes', async () => {
        status.routes = await undo.resetRoutes(ref);
        emit({ type: 'routes', ...where, canaryWeight: status.routes.canaryWeight });
      });
    }
    status.routes = await traffic.setRoutes(ref, routes);
    emit({ type: 'routes', ...where, canaryWeight: status.routes.canaryWeight });
    record('traffic-moved', { reason: `canary ${status.routes.canaryWeight}%${routes.internalAudience ? ', internal users first' : ''}` });
  }

  async function analyse(step: StepSpec, counts: AnalysisTally): Promise<{ counts: AnalysisTally; healthy: boolean }> {
    // At 100% stable serves nothing: comparing with it would only ever be inconclusive.
    const stableServes = status.routes.canaryWeight < 100 || !patched('no-stable-comparison-at-full');
    const raw = await forward.measure(ref, spec.analysis, stableServes ? status.stableVersion : null);
    const measurements = raw.map((m) =>
      judgeMeasurement(spec.analysis.checks.find((c) => c.name === m.check) ?? { name: m.check }, m, { stableServes }),
    );
    const run = { at: new Date().toISOString(), step: step.name, phase: runPhase(measurements), measurements };
    status.analysis.push(run);
    if (status.analysis.length > MAX_ANALYSIS_RUNS) status.analysis.shift();
    const next = tally(counts, run.phase);
    const decision = decide(spec.analysis, next, run);
    if (decision.kind === 'fail') throw new RollbackRelease(decision.reason, 'analysis');
    if (decision.kind === 'pause') {
      pause('inconclusive', 'rampart', decision.reason);
      // A person resumes with a fresh allowance of inconclusive runs; failures still count.
      return { counts: { ...next, inconclusive: 0 }, healthy: false };
    }
    return { counts: next, healthy: decision.healthy };
  }

  /**
   * Holds the step for its bake, analysing on the interval. The step ends when the bake is over and
   * the analysis is healthy: with no data it never ends on its own, so missing data never promotes.
   */
  async function bake(step: StepSpec): Promise<void> {
    const analysisOn = step.analysis && spec.analysis.checks.length > 0;
    const interval = spec.analysis.interval;
    let counts = EMPTY_TALLY;
    let healthy = !analysisOn;
    let baked = 0;
    let nextAnalysisAt = Math.min(interval, step.bake);
    for (;;) {
      await holdWhilePaused();
      if (promoteRequested) {
        promoteRequested = false;
        record('bake-skipped');
        return;
      }
      if (analysisOn && baked >= nextAnalysisAt) {
        // Routes just moved were verified then; later in a bake, check the router still applies them.
        if (baked > 0 && patched('verify-routes-in-bake')) {
          const check = await traffic.ensureRoutes(ref, status.routes);
          status.routes = check.routes;
          checkStop();
          if (check.reapplied) {
            record('routes-reapplied', { reason: `the router had canary ${check.found.canaryWeight}%; canary ${check.routes.canaryWeight}% put back` });
            // Measurements taken while the router had other routes judged other traffic.
            counts = { ...counts, consecutiveSuccesses: 0 };
          }
        }
        ({ counts, healthy } = await analyse(step, counts));
        checkStop();
        nextAnalysisAt = baked + interval;
        continue;
      }
      if (baked >= step.bake && healthy) return;
      const wakeAt = analysisOn ? nextAnalysisAt : step.bake;
      const before = Date.now();
      await condition(() => stopRequest !== null || status.pause !== null || promoteRequested, Math.max(1, wakeAt - baked));
      baked += Date.now() - before;
    }
  }

  /** Runs the load test in a scope an abort can cancel, since it may run for minutes. */
  async function runLoad(step: StepSpec): Promise<void> {
    if (!step.load) return;
    const load = step.load;
    const scope = new CancellationScope();
    const watcher = new CancellationScope();
    void watcher.run(() => condition(() => stopRequest !== null).then(() => scope.cancel())).catch(() => undefined);
    try {
      const result = await scope.run(() => loadTest.runLoadTest(ref, load));
      const problems: string[] = [];
      if (result.errorRate > load.maxErrorRate) problems.push(`error rate ${result.errorRate.toFixed(4)} above ${load.maxErrorRate}`);
      if (result.latencyMs.p99 > load.maxP99LatencyMs) problems.push(`p99 ${result.latencyMs.p99} ms above ${load.maxP99LatencyMs} ms`);
      if (load.maxP95LatencyMs !== undefined && result.latencyMs.p95 > load.maxP95LatencyMs) {
        problems.push(`p95 ${result.latencyMs.p95} ms above ${load.maxP95LatencyMs} ms`);
      }
      const passed = problems.length === 0;
      const reason = passed ? 'within limits' : problems.join('; ');
      status.loadTests.push({ step: step.name, passed, reason, result });
      record(passed ? 'load-test-passed' : 'load-test-failed', { reason });
      if (!passed) throw new RollbackRelease(`load test failed in ${step.name}: ${reason}`, 'load-test');
    } catch (error) {
      if (isCancellation(error) && stopRequest) throw new StopRelease(stopRequest.reason);
      throw error;
    } finally {
      watcher.cancel();
    }
  }

  async function runHooks(step: StepSpec, when: 'before' | 'after'): Promise<void> {
    for (const hook of step[when]) {
      await forward.runHook(ref, hook, { releaseId, step: step.name, when });
      record(`hook-${when}`, { reason: hook.name });
      checkStop();
    }
  }

  /** The full phase: verify at 100%, move the new version into the stable slot, route back to it, empty the canary slot. */
  async function finalize(): Promise<void> {
    const previous = status.stableVersion;
    if (previous) registerUndo('restore-stable', () => undo.restoreStable(ref, previous));
    await deployment.promoteStable(ref);
    record('stable-replaced', { reason: `${previous ?? 'nothing'} retired, ${spec.version} in the stable slot` });
    checkStop();
    status.routes = await traffic.setRoutes(ref, { canaryWeight: 0, internalAudience: null });
    emit({ type: 'routes', ...where, canaryWeight: 0 });
    checkStop();
    await forward.stopCanary(ref);
    // From here nothing is left to undo: the release is done, and must not be reported as anything else.
    undos.length = 0;
    lifecycle = 'promoted';
  }

  async function runStep(index: number, step: StepSpec, canaryDeployed: boolean): Promise<void> {
    const previous = status.phase && phaseStartedAt !== null ? { phase: status.phase, ms: Date.now() - phaseStartedAt } : null;
    if (status.phase !== step.phase) {
      emit({ type: 'phase', ...where, phase: step.phase, step: step.name, previous });
      phaseStartedAt = Date.now();
    }
    status.step = { index, name: step.name };
    // Each upsert is a visibility write on the server: only when the phase really changes. Releases
    // started before this change upserted at every step, and replay the way they were recorded.
    if (status.phase !== step.phase || !patched('upsert-phase-on-change')) upsertSearchAttributes([{ key: phaseKey, value: step.phase }]);
    status.phase = step.phase;
    record('step-started');

    if (step.approval) {
      awaitingApproval = true;
      approved = false;
      record('awaiting-approval');
      await condition(() => approved || stopRequest !== null);
      awaitingApproval = false;
      checkStop();
    }
    await holdWhilePaused();
    await runHooks(step, 'before');

    if (!canaryDeployed) {
      registerUndo('stop-canary', () => undo.stopCanary(ref));
      await deployment.deployCanary(ref);
      record('canary-deployed', { reason: spec.version });
      checkStop();
    }
    await runLoad(step);
    checkStop();
    await holdWhilePaused();

    await moveTraffic({ canaryWeight: step.weight, internalAudience: step.internalAudience ?? null });
    checkStop();
    await runHooks(step, 'after');
    await bake(step);
    if (step.phase === 'full') await finalize();
  }

  async function compensate(): Promise<string[]> {
    lifecycle = 'rolling-back';
    record('rollback-started');
    const failures: string[] = [];
    while (undos.length > 0) {
      const next = undos.pop()!;
      try {
        await next.run();
        record('undo', { reason: next.name });
      } catch (error) {
        failures.push(`${next.name}: ${(error as Error).message}`);
        record('undo-failed', { reason: `${next.name}: ${(error as Error).message}` });
      }
    }
    return failures;
  }

  async function finish(outcome: Outcome, reason: string, actor?: string): Promise<ReleaseStatus> {
    lifecycle = outcome;
    status.outcome = { result: outcome, reason, ...(actor ? { actor } : {}), at: new Date().toISOString() };
    status.finishedAt = status.outcome.at;
    record('finished', { reason: `${outcome}: ${reason}`, ...(actor ? { actor } : {}) });
    upsertSearchAttributes([{ key: outcomeKey, value: outcome }]);
    const timeToSafeMs = rollbackDecidedAt === null ? null : Date.now() - rollbackDecidedAt;
    emit({
      type: 'finished',
      ...where,
      version: spec.version,
      outcome,
      reason,
      drill: spec.drill === true,
      durationMs: Date.now() - Date.parse(startedAt),
      timeToSafeMs,
      lastPhase: status.phase && phaseStartedAt !== null ? { phase: status.phase, ms: Date.now() - phaseStartedAt } : null,
    });
    // What DORA and drills read back from visibility. Releases recorded before the memo existed replay without it.
    if (patched('memo-at-finish')) {
      const memo: ReleaseMemo = { outcome, commitTime: spec.commit?.time ?? null, finishedAt: status.finishedAt, timeToSafeMs, drill: spec.drill === true };
      upsertMemo({ release: memo });
    }
    if (spec.notifications) {
      const text = `${spec.service} ${spec.version} in ${spec.environment}: ${outcome} (${reason})`;
      await courtesy.notify(spec.notifications.webhookUrl, { text, release: snapshot() }).catch((error: Error) => {
        log.warn('notification failed', { releaseId, error: error.message });
      });
    }
    return snapshot();
  }

  try {
    emit({ type: 'started', ...where, version: spec.version, drill: spec.drill === true });
    const slots = await forward.describeService(ref);
    status.stableVersion = slots.stable;
    if (slots.stable === spec.version) throw ApplicationFailure.nonRetryable(`${spec.version} is already the stable version of ${spec.service}`);
    record('started', { actor: spec.requestedBy, reason: `${slots.stable ?? 'nothing'} -> ${spec.version}` });
    let canaryDeployed = false;
    for (const [index, step] of steps.entries()) {
      checkStop();
      await runStep(index, step, canaryDeployed);
      canaryDeployed = true;
    }
    return await finish('promoted', `${spec.version} at 100% and in the stable slot`);
  } catch (error) {
    rollbackDecidedAt = Date.now();
    const [outcome, reason, actor, category] = classify(error);
    log.info('release rolling back', { releaseId, service: spec.service, phase: status.phase, outcome, reason });
    emit({ type: 'rollback', ...where, reason: category, detail: reason });
    const failures = await CancellationScope.nonCancellable(compensate);
    const suffix = failures.length ? `; undo failures: ${failures.join('; ')}` : '';
    return await CancellationScope.nonCancellable(() => finish(outcome, reason + suffix, actor));
  }

  function classify(error: unknown): [Outcome, string, string | undefined, RollbackReason] {
    if (stopRequest) {
      const category = stopRequest.outcome === 'superseded' ? 'superseded' : stopRequest.source === 'alert' ? 'alert' : 'aborted';
      return [stopRequest.outcome, stopRequest.reason, stopRequest.actor, category];
    }
    if (isCancellation(error)) return ['cancelled', 'the release workflow was cancelled', undefined, 'cancelled'];
    if (error instanceof RollbackRelease) return ['rolled-back', error.message, undefined, error.reason];
    if (error instanceof ActivityFailure) {
      const cause = error.cause?.message ?? error.message;
      return ['rolled-back', `step ${status.step?.name ?? 'start'} failed after retries: ${error.activityType}: ${cause}`, undefined, 'step-failed'];
    }
    return ['rolled-back', `release failed: ${(error as Error).message}`, undefined, 'step-failed'];
  }
}
