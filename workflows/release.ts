import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  ContinueAsNew,
  getExternalWorkflowHandle,
  makeContinueAsNewFunc,
  patched,
  isCancellation,
  log,
  proxyActivities,
  proxyLocalActivities,
  proxySinks,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ReleaseActivities, ReleaseRef } from '../activities';
import { explainRun, judgeEvidence, judgeSyntheticLoad, type AnalysisRun } from '../src/engine/analysis';
import { afterLook, afterResume, afterRoutesReapplied, afterWait, nextBakeAction, planBake, startBake, type BakeState } from '../src/engine/bake';
import { warmWindowMs } from '../src/engine/rollback';
import { describeUndo, EMPTY_SAGA, pointOfNoReturn, register, type SagaState, type Undo } from '../src/engine/saga';
import { runUndoActivity, unwind } from './compensation';
import type { RampartSinks, ReleaseEvent, ReleaseMemo, RollbackReason } from '../src/engine/events';
import { INITIAL_LIFECYCLE, observableState, reduce, type Lifecycle, type LifecycleInput } from '../src/engine/lifecycle';
import {
  isTerminal,
  rejectCommand,
  startingStatus,
  type CommandName,
  type Outcome,
  type ReleaseCommand,
  type ReleaseState,
  type ReleaseStatus,
  type RoutesView,
} from '../src/engine/release-state';
import type { HookSpec, StepSpec } from '../src/spec/release-spec';
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
  releaseFinishedSignal,
  releaseWarmSignal,
  laneWorkflowId,
  resumeSignal,
  resumeUpdate,
  statusQuery,
  supersedeSignal,
  type ReleaseWorkflowInput,
} from './definitions';

const STEP_RETRY = { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 5 } as const;

/** Forward steps: a step that still fails after its retries rolls the release back. */
// Short attempts: an attempt lost with a crashed worker is retried elsewhere after this, not after minutes.
const forward = proxyActivities<ReleaseActivities>({ startToCloseTimeout: '30 seconds', retry: STEP_RETRY });
// Deploys heartbeat: one lost with its worker is retried elsewhere after the heartbeat timeout, not after minutes.
const deployment = proxyActivities<ReleaseActivities>({ startToCloseTimeout: '5 minutes', heartbeatTimeout: '15 seconds', retry: STEP_RETRY });
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
/**
 * A bake's look (the routes read back, then the evidence) runs as local activities, in the workflow task
 * its timer wakes: a look costs the server one workflow task and no activity task, where it cost three
 * workflow tasks and two activity tasks, which bounded how many releases a worker fleet can bake at once.
 * Both are short reads; the timeouts and retries are the ones above (a router outage is still waited out).
 */
const localTraffic = proxyLocalActivities<ReleaseActivities>({
  startToCloseTimeout: '1 minute',
  scheduleToCloseTimeout: '10 minutes',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '5s' },
});
const localForward = proxyLocalActivities<ReleaseActivities>({ startToCloseTimeout: '30 seconds', retry: STEP_RETRY });
/** Releases recorded before looks were local replay with activity tasks. */
function lookActivities(): { traffic: typeof traffic; forward: typeof forward } {
  return patched('local-looks') ? { traffic: localTraffic, forward: localForward } : { traffic, forward };
}

/**
 * Undos never give up: a rollback waits for the router or deployer to come back rather than leave
 * traffic on a bad version. Each attempt is short, so an attempt lost with a crashed worker is
 * retried on another in seconds, not after minutes (the undos take well under a second).
 */
const undo = proxyActivities<ReleaseActivities>({
  startToCloseTimeout: '20 seconds',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '5s' },
});
/** Redeploying the old stable instance takes as long as a deploy; still retried without end. */
const undoDeployment = proxyActivities<ReleaseActivities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '15 seconds',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '10s' },
});

/** Hooks get the time they declare (plus a little for the network) and the retries they declare: a migration is not posted again while it runs. */
function hookActivities(hook: HookSpec) {
  return proxyActivities<ReleaseActivities>({
    startToCloseTimeout: hook.timeout + 5_000,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: hook.retries + 1 },
  });
}

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

/** History events after which a long bake continues as new, unless the server suggests it first. */
const CONTINUE_AS_NEW_AFTER_EVENTS = 4_000;

/**
 * One release of one version of one service: the steps of its strategy in order, each moving traffic,
 * baking and analysing; commands and alerts steer it; any abort, failure or cancellation before the
 * point of no return unwinds the saga's undos newest first, in a scope nothing can cancel. A long
 * bake continues as new and carries the status, the saga and the bake with it.
 */
export async function releaseWorkflow({ releaseId, spec, carried }: ReleaseWorkflowInput): Promise<ReleaseStatus> {
  const ref: ReleaseRef = { service: spec.service, environment: spec.environment, version: spec.version, target: spec.target, ...(spec.region ? { region: spec.region } : {}) };
  const steps = spec.strategy.steps;

  const status: ReleaseStatus =
    carried?.status ??
    startingStatus({
      releaseId,
      service: spec.service,
      environment: spec.environment,
      version: spec.version,
      stableVersion: null,
      phase: null,
      stepCount: steps.length,
      requestedBy: spec.requestedBy,
      alerts: spec.alerts,
      ...(spec.commit ? { commit: spec.commit } : {}),
    });
  status.generation = carried ? carried.generation : 0;

  // The lifecycle, a pure reducer's state (src/engine/lifecycle.ts); the state the world sees is derived from it.
  let life: Lifecycle = { ...INITIAL_LIFECYCLE, pause: status.pause };
  /** Workflow time at which the release decided to roll back: the start of time-to-safe. */
  let rollbackDecidedAt: number | null = null;
  let saga: SagaState = carried?.saga ?? EMPTY_SAGA;
  let phaseStartedAt: number | null = carried?.phaseStartedAt ?? null;
  /** Why the warm window ends early (a supersede), and whether a rollback to the warm version asked for it. */
  let warmEnd: { reason: string; rollbackTo: string | null } | null = null;
  /** When all traffic reached the new version for good (the warm window's start): what DORA reads as the deploy time. */
  let promotedAt: string | null = null;
  /** How the promotion ended, when a warm window changed the usual ending. */
  let promotedReason: string | null = null;

  function state(): ReleaseState {
    return observableState(life);
  }

  /** Feeds the reducer and records what it says happened. */
  function feed(input: LifecycleInput): void {
    const { life: next, transition } = reduce(life, input);
    life = next;
    status.pause = life.pause;
    if (!transition) return;
    if (transition.paused) emit({ type: 'paused', ...where, cause: transition.paused.cause, reason: transition.paused.reason });
    record(transition.event, { ...(transition.actor ? { actor: transition.actor } : {}), ...(transition.reason ? { reason: transition.reason } : {}) });
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

  function apply(name: CommandName, command: ReleaseCommand): void {
    feed({ kind: 'command', name, command, stepIndex: status.step?.index ?? null, at: new Date().toISOString() });
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
      const rejection = rejectCommand(snapshot(), name, command?.step, command?.source);
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
          const rejection = rejectCommand(snapshot(), name, command.step, command.source);
          if (rejection) throw new Error(rejection);
        },
      },
    );
  }
  setHandler(supersedeSignal, ({ byVersion, byRelease, rollback }) => {
    if (status.warm) {
      warmEnd ??= { reason: `superseded by ${rollback ? 'a rollback to ' : ''}${byVersion} (${byRelease})`, rollbackTo: rollback ? byVersion : null };
      return;
    }
    if (saga.pastPointOfNoReturn) return;
    feed({ kind: 'supersede', byVersion, byRelease });
  });
  setHandler(statusQuery, snapshot);

  function checkStop(): void {
    if (life.stop) throw new StopRelease(life.stop.reason);
  }

  /** Holds here while paused; a pause never lets traffic move or a bake advance. */
  async function holdWhilePaused(): Promise<void> {
    if (life.pause) await condition(() => life.pause === null || life.stop !== null);
    checkStop();
  }

  function registerUndo(next: Undo): void {
    saga = register(saga, next);
    status.compensation = saga.undos.map(describeUndo);
  }

  const runUndo = (next: Undo) =>
    runUndoActivity(next, ref, { undo, undoDeployment }, (routes) => {
      status.routes = routes;
      emit({ type: 'routes', ...where, canaryWeight: routes.canaryWeight });
    });

  async function moveTraffic(routes: RoutesView): Promise<void> {
    // Registered before the move: a weight change that half-happened must still be undone.
    registerUndo({ kind: 'reset-routes' });
    status.activity = 'moving-traffic';
    status.routes = await traffic.setRoutes(ref, routes);
    emit({ type: 'routes', ...where, canaryWeight: status.routes.canaryWeight });
    record('traffic-moved', { reason: `canary ${status.routes.canaryWeight}%${routes.internalAudience ? ', internal users first' : ''}` });
  }

  /** The judge's options for this spec; stable is compared only while it takes traffic and exists. */
  function judgeOptions(step: StepSpec) {
    const { confidence, passConfidence, minCanarySamples } = spec.analysis;
    const stableServes = status.routes.canaryWeight < 100 && status.stableVersion !== null;
    return { confidence, passConfidence, minCanarySamples, stableServes, internalOnly: step.weight === 0 && !!step.internalAudience };
  }

  function recordRun(run: AnalysisRun): void {
    status.analysis.push(run);
    if (status.analysis.length > MAX_ANALYSIS_RUNS) status.analysis.shift();
  }

  /** One look: the evidence since the step moved traffic, judged here so the verdict is in the history. */
  async function look(step: StepSpec, since: number): Promise<AnalysisRun> {
    const options = judgeOptions(step);
    const evidence = await lookActivities().forward.measure(ref, {
      checks: spec.analysis.checks,
      since,
      stableVersion: options.stableServes ? status.stableVersion : null,
      canaryRouted: status.routes.canaryWeight > 0 || status.routes.internalAudience !== null,
    });
    const run = judgeEvidence(spec.analysis.checks, evidence, options, new Date().toISOString(), step.name);
    recordRun(run);
    return run;
  }

  /** Long bakes continue as new between looks, when nothing is mid-flight: no handler running, no stop pending. */
  function shouldContinueAsNew(): boolean {
    const info = workflowInfo();
    return life.stop === null && (info.continueAsNewSuggested || info.historyLength > CONTINUE_AS_NEW_AFTER_EVENTS) && allHandlersFinished();
  }

  async function continueInNewRun(index: number, bakeState: BakeState, trafficMovedAt: number, bakedMs: number): Promise<never> {
    record('continued-as-new', { reason: `generation ${status.generation + 1}, ${workflowInfo().historyLength} history events` });
    const info = workflowInfo();
    // The next run keeps the search attributes (service, phase…) the API lists releases by, and the memo.
    const next = makeContinueAsNewFunc<typeof releaseWorkflow>({ memo: info.memo ?? {}, typedSearchAttributes: info.typedSearchAttributes });
    return next({ releaseId, spec, carried: { status: snapshot(), saga, stepIndex: index, phaseStartedAt, bake: { state: bakeState, trafficMovedAt, bakedMs }, generation: status.generation + 1 } });
  }

  /**
   * Holds the step for its bake while the analysis looks on the interval; the pure planner decides.
   * The step advances only on a pass after the bake; "not enough evidence yet" extends the bake up to
   * its limit and then pauses with the reason; a failure rolls back at once. Missing data never promotes.
   */
  async function bake(index: number, step: StepSpec, trafficMovedAt: number, resumed?: { state: BakeState; bakedMs: number }): Promise<void> {
    const plan = planBake(step, spec.analysis);
    let bakeState = resumed?.state ?? startBake(plan);
    let bakedMs = resumed?.bakedMs ?? 0;
    status.activity = 'baking';
    for (;;) {
      if (life.pause) {
        await holdWhilePaused();
        bakeState = afterResume(plan, bakeState);
      }
      checkStop();
      if (life.promoteStep === index) {
        life = { ...life, promoteStep: null };
        record('bake-skipped');
        return;
      }
      const action = nextBakeAction(plan, bakeState);
      switch (action.kind) {
        case 'advance':
          if (plan.judged) record('analysis-passed', { reason: action.reason });
          return;
        case 'rollback':
          throw new RollbackRelease(action.reason, 'analysis');
        case 'pause':
          // A drill never waits for a person: a canary phase that cannot tell its fault apart failed the drill.
          if (spec.drill && spec.drillKind !== 'revert' && patched('drill-never-pauses')) {
            record('drill-fault-undetected', { reason: `the canary phase could not decide in ${step.name}: ${action.reason}` });
            throw new RollbackRelease(`drill fault not caught in ${step.name}: ${action.reason}`, 'drill-undetected');
          }
          feed({ kind: 'engine-pause', reason: action.reason, at: new Date().toISOString() });
          continue;
        case 'look': {
          // Routes just moved were verified then; later in a bake, check the router still applies them.
          if (bakeState.looks > 0) {
            const check = await lookActivities().traffic.ensureRoutes(ref, status.routes);
            status.routes = check.routes;
            checkStop();
            if (check.reapplied) {
              record('routes-reapplied', { reason: `the router had canary ${check.found.canaryWeight}%; canary ${check.routes.canaryWeight}% put back` });
              bakeState = afterRoutesReapplied(bakeState);
            }
          }
          const run = await look(step, trafficMovedAt);
          checkStop();
          bakeState = afterLook(plan, bakeState, run);
          continue;
        }
        case 'wait': {
          if (shouldContinueAsNew()) await continueInNewRun(index, bakeState, trafficMovedAt, bakedMs);
          const before = Date.now();
          await condition(() => life.stop !== null || life.pause !== null || life.promoteStep === index, Math.max(1, action.ms));
          bakedMs += Date.now() - before;
          bakeState = afterWait(bakeState, bakedMs);
          continue;
        }
      }
    }
  }

  /**
   * Runs the load test in a scope an abort can cancel, since it may run for minutes, and judges the new
   * version against stable under the same load. Too little load to tell pauses for a person.
   */
  async function runLoad(step: StepSpec): Promise<void> {
    if (!step.load) return;
    const load = step.load;
    status.activity = 'load-testing';
    const scope = new CancellationScope();
    const watcher = new CancellationScope();
    void watcher.run(() => condition(() => life.stop !== null).then(() => scope.cancel())).catch(() => undefined);
    try {
      const result = await scope.run(() => loadTest.runLoadTest(ref, load, status.stableVersion));
      const { confidence, passConfidence, minCanarySamples } = spec.analysis;
      const run = judgeSyntheticLoad(load, result, { confidence, passConfidence, minCanarySamples }, new Date().toISOString(), step.name);
      const reason = explainRun(run);
      const figures = ({ histogram: _histogram, ...rest }: typeof result.canary) => rest;
      status.loadTests.push({
        step: step.name,
        outcome: run.outcome,
        reason,
        canary: figures(result.canary),
        stable: result.stable ? figures(result.stable) : null,
        verdicts: run.verdicts,
      });
      record(`load-test-${run.outcome === 'pass' ? 'passed' : run.outcome === 'fail' ? 'failed' : 'inconclusive'}`, { reason });
      if (run.outcome === 'fail') throw new RollbackRelease(`load test failed in ${step.name}: ${reason}`, 'load-test');
      // Undecided synthetic load promotes nothing: it goes on to user traffic, judged step by step, where
      // every step needs its own pass. Pausing here would stop every change the load was too small to
      // resolve (the judgment benchmark measured it), not just the dangerous ones.
    } catch (error) {
      if (isCancellation(error) && life.stop) throw new StopRelease(life.stop.reason);
      throw error;
    } finally {
      watcher.cancel();
    }
  }

  async function runHooks(step: StepSpec, when: 'before' | 'after'): Promise<void> {
    status.activity = 'running-hooks';
    for (const hook of step[when]) {
      await hookActivities(hook).runHook(ref, hook, { releaseId, step: step.name, when, idempotencyKey: `${releaseId}/${step.name}/${when}/${hook.name}` });
      record(`hook-${when}`, { reason: hook.name });
      checkStop();
    }
  }

  /**
   * The full phase: the new version into the stable slot while the canary still carries 100%, then
   * the point of no return (traffic to the new stable instance), then the canary slot emptied. Before
   * the point an abort restores the old stable instance while the canary serves; after it nothing can
   * serve the old version, so the release only goes forward and an abort is refused.
   */
  async function finalize(): Promise<void> {
    status.activity = 'finalizing';
    const previous = status.stableVersion;
    const warmMs = warmWindowMs(spec);
    if (previous && warmMs > 0 && patched('warm-previous')) {
      await keepPreviousWarm(previous, warmMs);
      return;
    }
    if (previous) registerUndo({ kind: 'restore-stable', version: previous });
    await deployment.promoteStable(ref);
    record('stable-replaced', { reason: `${previous ?? 'nothing'} retired, ${spec.version} in the stable slot` });
    checkStop();
    saga = pointOfNoReturn(saga);
    status.pointOfNoReturn = true;
    status.compensation = [];
    record('point-of-no-return', { reason: 'traffic moves to the new stable instance; the release can only finish forward' });
    await CancellationScope.nonCancellable(async () => {
      status.routes = await undo.setRoutes(ref, { canaryWeight: 0, internalAudience: null });
      emit({ type: 'routes', ...where, canaryWeight: 0 });
      await undo.stopCanary(ref);
    });
    feed({ kind: 'finished', outcome: 'promoted' });
  }

  /**
   * The warm window, instead of retiring the previous version at once. The new version already serves
   * 100% from the canary slot and the previous one still runs in the stable slot at weight 0, so the
   * release commits here (an abort is refused from now on) and leaves the previous one warm. The lane
   * counts the new version as stable from now on. The window ends one of two ways, both in a scope
   * nothing can cancel, and both leave the usual layout (one version, in the stable slot) for the
   * lane's next release:
   * - a rollback to the warm version: traffic back to it with one weight change, the new one stopped;
   *   the rollback workflow then finds its target serving and only records the recovery;
   * - the window's end, a newer release or a cancellation: the new version into the stable slot,
   *   traffic there, the canary slot emptied, as a release without a window does at once.
   * A worker lost anywhere leaves traffic on a version that serves: every step is idempotent and retried.
   */
  async function keepPreviousWarm(previous: string, warmMs: number): Promise<void> {
    saga = pointOfNoReturn(saga);
    status.pointOfNoReturn = true;
    status.compensation = [];
    promotedAt = new Date().toISOString();
    const until = new Date(Date.now() + warmMs).toISOString();
    status.warm = { version: previous, until };
    status.activity = 'warm';
    record('point-of-no-return', { reason: `${spec.version} serves all traffic from the canary slot; ${previous} stays warm in the stable slot at weight 0 until ${until}` });
    await getExternalWorkflowHandle(laneWorkflowId(spec.service, spec.environment, spec.region))
      .signal(releaseWarmSignal, { releaseId, version: spec.version, previous, until })
      .catch((error: Error) => log.info('no lane to tell about the warm window', { releaseId, error: error.message }));
    try {
      await condition(() => warmEnd !== null, warmMs);
    } catch (error) {
      if (!isCancellation(error)) throw error;
      warmEnd = { reason: 'the release workflow was cancelled', rollbackTo: null };
    }
    const end = warmEnd ?? { reason: `the warm window ended (${until})`, rollbackTo: null };
    await CancellationScope.nonCancellable(async () => {
      if (end.rollbackTo === previous) {
        status.routes = await undo.setRoutes(ref, { canaryWeight: 0, internalAudience: null });
        emit({ type: 'routes', ...where, canaryWeight: 0 });
        record('switched-to-warm', { reason: `${end.reason}: all traffic back on ${previous}, warm in the stable slot` });
        await undo.stopCanary(ref);
        promotedReason = `${spec.version} was promoted, then ${end.reason}: traffic went back to the warm ${previous} and ${spec.version} was stopped`;
        return;
      }
      record('warm-window-ended', { reason: `${end.reason}: ${previous} retired` });
      await undoDeployment.promoteStable(ref);
      record('stable-replaced', { reason: `${previous} retired, ${spec.version} in the stable slot` });
      status.routes = await undo.setRoutes(ref, { canaryWeight: 0, internalAudience: null });
      emit({ type: 'routes', ...where, canaryWeight: 0 });
      await undo.stopCanary(ref);
    });
    status.warm = null;
    feed({ kind: 'finished', outcome: 'promoted' });
  }

  /** A drill's fault must be caught by the canary phase; one that gets past it is stopped there, and the drill fails. */
  function guardDrill(step: StepSpec): void {
    if (spec.drill && spec.drillKind !== 'revert' && step.phase !== 'synthetic' && step.phase !== 'canary') {
      record('drill-fault-undetected', { reason: `the drill's faulty build passed the canary phase; stopped before ${step.name}` });
      throw new RollbackRelease(`drill fault went undetected through the canary phase; stopped before ${step.name}`, 'drill-undetected');
    }
  }

  async function runStep(index: number, step: StepSpec, canaryDeployed: boolean): Promise<void> {
    guardDrill(step);
    const previous = status.phase && phaseStartedAt !== null ? { phase: status.phase, ms: Date.now() - phaseStartedAt } : null;
    if (status.phase !== step.phase) {
      emit({ type: 'phase', ...where, phase: step.phase, step: step.name, previous });
      phaseStartedAt = Date.now();
      // Each upsert is a visibility write on the server: only when the phase really changes.
      upsertSearchAttributes([{ key: phaseKey, value: step.phase }]);
    }
    status.step = { index, name: step.name };
    status.phase = step.phase;
    life = { ...life, promoteStep: null };
    record('step-started');

    if (step.approval) {
      status.activity = 'awaiting-approval';
      feed({ kind: 'gate' });
      await condition(() => life.approved || life.stop !== null);
      feed({ kind: 'gate-passed' });
      checkStop();
    }
    await holdWhilePaused();
    await runHooks(step, 'before');

    if (!canaryDeployed) {
      registerUndo({ kind: 'stop-canary' });
      status.activity = 'deploying';
      await deployment.deployCanary(ref);
      record('canary-deployed', { reason: spec.version });
      checkStop();
    }
    await runLoad(step);
    checkStop();
    await holdWhilePaused();

    await moveTraffic({ canaryWeight: step.weight, internalAudience: step.internalAudience ?? null });
    const trafficMovedAt = Date.now();
    checkStop();
    await runHooks(step, 'after');
    await bake(index, step, trafficMovedAt);
    if (step.phase === 'full') await finalize();
  }

  async function compensate(): Promise<string[]> {
    feed({ kind: 'rolling-back' });
    status.activity = 'rolling-back';
    record('rollback-started');
    const failures = await unwind(saga, runUndo, (event, reason) => record(event, { reason }));
    saga = EMPTY_SAGA;
    return failures;
  }

  async function finish(outcome: Outcome, reason: string, actor?: string): Promise<ReleaseStatus> {
    feed({ kind: 'finished', outcome });
    status.activity = 'finished';
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
      durationMs: Date.now() - Date.parse(status.startedAt),
      timeToSafeMs,
      lastPhase: status.phase && phaseStartedAt !== null ? { phase: status.phase, ms: Date.now() - phaseStartedAt } : null,
    });
    // What DORA and drills read back from visibility.
    // A warm window keeps the release in flight after all traffic reached it: DORA counts the deploy from then.
    const memo: ReleaseMemo = { outcome, commitTime: spec.commit?.time ?? null, finishedAt: promotedAt ?? status.finishedAt, timeToSafeMs, drill: spec.drill === true };
    upsertMemo({ release: memo });
    if (spec.notifications) {
      const text = `${spec.service} ${spec.version} in ${spec.environment}: ${outcome} (${reason})`;
      await courtesy.notify(spec.notifications.webhookUrl, { text, release: snapshot() }).catch((error: Error) => {
        log.warn('notification failed', { releaseId, error: error.message });
      });
    }
    // The lane may have continued as new since it started this release: only this tells it the next may start.
    await getExternalWorkflowHandle(laneWorkflowId(spec.service, spec.environment, spec.region))
      .signal(releaseFinishedSignal, { releaseId, outcome })
      .catch((error: Error) => log.info('no lane to tell that the release finished', { releaseId, error: error.message }));
    return snapshot();
  }

  try {
    let first = 0;
    if (carried) {
      // A new run of a long release: pick up the bake where the previous run left it.
      const step = steps[carried.stepIndex]!;
      await bake(carried.stepIndex, step, carried.bake.trafficMovedAt, carried.bake);
      if (step.phase === 'full') await finalize();
      first = carried.stepIndex + 1;
    } else {
      emit({ type: 'started', ...where, version: spec.version, drill: spec.drill === true });
      const slots = await forward.describeService(ref);
      status.stableVersion = slots.stable;
      if (slots.stable === spec.version) throw ApplicationFailure.nonRetryable(`${spec.version} is already the stable version of ${spec.service}`);
      record('started', { actor: spec.requestedBy, reason: `${slots.stable ?? 'nothing'} -> ${spec.version}` });
    }
    for (let index = first; index < steps.length; index++) {
      checkStop();
      await runStep(index, steps[index]!, carried !== undefined || index > 0);
    }
    return await finish('promoted', promotedReason ?? `${spec.version} at 100% and in the stable slot`);
  } catch (error) {
    if (error instanceof ContinueAsNew) throw error;
    rollbackDecidedAt = Date.now();
    const [outcome, reason, actor, category] = classify(error);
    log.info('release rolling back', { releaseId, service: spec.service, phase: status.phase, outcome, reason });
    emit({ type: 'rollback', ...where, reason: category, detail: reason });
    const failures = await CancellationScope.nonCancellable(compensate);
    const suffix = failures.length ? `; undo failures: ${failures.join('; ')}` : '';
    return await CancellationScope.nonCancellable(() => finish(outcome, reason + suffix, actor));
  }

  function classify(error: unknown): [Outcome, string, string | undefined, RollbackReason] {
    const stop = life.stop;
    if (stop) {
      const category = stop.outcome === 'superseded' ? 'superseded' : stop.source === 'alert' ? 'alert' : 'aborted';
      return [stop.outcome, stop.reason, stop.actor, category];
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
