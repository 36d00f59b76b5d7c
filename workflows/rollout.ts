import {
  condition,
  getExternalWorkflowHandle,
  proxyActivities,
  proxySinks,
  setHandler,
  sleep,
  upsertMemo,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { RolloutActivities } from '../activities/rollout';
import type { ReleaseMemo, RampartSinks } from '../src/engine/events';
import type { Outcome, ReleaseCommand } from '../src/engine/release-state';
import {
  abortRolloutUpdate,
  abortSignal,
  outcomeKey,
  pauseRolloutUpdate,
  releaseWorkflowId,
  pauseSignal,
  resumeRolloutUpdate,
  resumeSignal,
  rolloutStatusQuery,
  type RegionState,
  type RolloutInput,
  type RolloutRegion,
  type RolloutState,
  type RolloutStatus,
} from './definitions';

/** Rollback requests: a lane answers in well under a second, unless the server is down. */
const lanes = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '10s' },
});
/**
 * One wait for a release to end: up to WAIT_MS per activity (heartbeats are not history events), so a
 * release held for days costs a few events an hour per region, and a worker killed mid-wait is noticed
 * within the heartbeat timeout and the wait resumed.
 */
const WAIT_MS = 60 * 60_000;
const waits = proxyActivities<RolloutActivities>({
  startToCloseTimeout: WAIT_MS + 30_000,
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '10s' },
});
const { rampart } = proxySinks<RampartSinks>();

const MAX_HISTORY = 200;
/** Tries at reaching a region's release that the lane is still starting (every 500 ms). */
const SIGNAL_ATTEMPTS = 20;

/**
 * A rollout: one version of a service with regions, released region by region, wave by wave. Each
 * region's release goes through that region's own lane (one release in flight per service,
 * environment and region, as ever), which starts it as a child of the lane; the rollout waits for it
 * to end. The first wave runs the spec's strategy, later waves rollout.laterWaves; a soak (a durable
 * timer) separates waves. When a region's release does not promote, the regions still running in its
 * wave are aborted, later waves never start, and with rollback-all (or an operator's abort) every
 * region this rollout promoted returns to the version stable there before, newest wave first, on the
 * lane's fast rollback path.
 */
export async function rolloutWorkflow(input: RolloutInput): Promise<RolloutStatus> {
  const { plan, service, environment, version } = input;
  const now = () => new Date().toISOString();
  const status: RolloutStatus = {
    rolloutId: input.rolloutId,
    service,
    environment,
    version,
    state: 'running',
    onFailure: plan.onFailure,
    soakMs: plan.soakMs,
    currentWave: 0,
    soakUntil: null,
    paused: null,
    waves: plan.waves.map((regions, index) => ({ index, regions, state: 'waiting', startedAt: null, finishedAt: null })),
    regions: plan.waves.flatMap((regions, wave) => regions.map((region): RolloutRegion => ({ region, wave, state: 'waiting', releaseId: null, previousStable: null, outcome: null, rollbackId: null, detail: null, startedAt: null, finishedAt: null }))),
    startedAt: now(),
    finishedAt: null,
    reason: null,
    history: [],
  };
  let abortCommand: ReleaseCommand | null = null;
  const regionOf = (name: string) => status.regions.find((r) => r.region === name)!;
  const inFlight = () => status.regions.filter((r) => r.state === 'running' && r.releaseId);

  function record(event: string, detail: string, actor?: string): void {
    status.history.push({ at: now(), event, detail, ...(actor ? { actor } : {}) });
    if (status.history.length > MAX_HISTORY) status.history.splice(0, status.history.length - MAX_HISTORY);
  }

  function set(region: RolloutRegion, state: RegionState, detail: string | null = region.detail): void {
    region.state = state;
    region.detail = detail;
    if (['promoted', 'failed', 'rolled-back', 'rollback-failed', 'cancelled'].includes(state)) region.finishedAt ??= now();
    record(`region-${state}`, `${region.region}${detail ? `: ${detail}` : ''}`);
  }

  /**
   * Sends a command to a region's release. The release may not exist yet (the lane is starting it):
   * tried again for a few seconds while the region runs; a release that has ended ignores it.
   */
  async function signalRelease(region: RolloutRegion, signal: typeof pauseSignal, command: ReleaseCommand): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await getExternalWorkflowHandle(region.releaseId!).signal(signal, command);
        return;
      } catch {
        if (attempt >= SIGNAL_ATTEMPTS || region.state !== 'running') return;
        await sleep(500);
      }
    }
  }

  /** Sends a command to each region's release in flight. */
  async function tellInFlight(signal: typeof pauseSignal, command: ReleaseCommand): Promise<void> {
    await Promise.all(inFlight().map((r) => signalRelease(r, signal, command)));
  }

  const finished = () => ['promoted', 'halted', 'rolled-back', 'aborted', 'superseded'].includes(status.state);
  setHandler(rolloutStatusQuery, () => status);
  setHandler(
    pauseRolloutUpdate,
    async (command) => {
      status.paused = { actor: command.actor, reason: command.reason, at: now() };
      record('paused', command.reason, command.actor);
      await tellInFlight(pauseSignal, { ...command, source: command.source ?? 'operator' });
      return status;
    },
    { validator: (command) => refuse(command, finished() ? `the rollout has finished (${status.state})` : status.paused ? 'the rollout is paused already' : abortCommand ? 'the rollout is being aborted' : null) },
  );
  setHandler(
    resumeRolloutUpdate,
    async (command) => {
      status.paused = null;
      record('resumed', command.reason, command.actor);
      await tellInFlight(resumeSignal, { ...command, source: command.source ?? 'operator' });
      return status;
    },
    { validator: (command) => refuse(command, finished() ? `the rollout has finished (${status.state})` : !status.paused ? 'the rollout is not paused' : null) },
  );
  setHandler(
    abortRolloutUpdate,
    async (command) => {
      abortCommand = command;
      status.paused = null;
      record('abort', command.reason, command.actor);
      await tellInFlight(abortSignal, { ...command, source: command.source ?? 'operator' });
      return status;
    },
    { validator: (command) => refuse(command, finished() ? `the rollout has finished (${status.state})` : abortCommand ? 'the rollout is being aborted already' : null) },
  );

  /** Waits for a release or rollback to end, one bounded activity at a time. */
  async function awaitEnd(workflowId: string): Promise<Outcome | null> {
    for (;;) {
      const end = await waits.awaitRegionRelease(workflowId, WAIT_MS);
      if (end.finished) return end.outcome;
    }
  }

  /**
   * Runs one region's release through its lane, to its end. Its id is known before it starts
   * (releaseWorkflowId of the region), so commands can reach it from the moment it is handed over.
   */
  async function runRegion(region: RolloutRegion): Promise<void> {
    const spec = plan.specs[region.region]!;
    region.startedAt = now();
    region.releaseId = releaseWorkflowId(service, environment, version, region.region);
    set(region, 'running', null);
    // A pause or abort in force reaches this release too, once the lane has started it.
    if (abortCommand) void signalRelease(region, abortSignal, abortCommand);
    else if (status.paused) void signalRelease(region, pauseSignal, { actor: status.paused.actor, reason: status.paused.reason, source: 'operator' });
    const answer = await waits.releaseInRegion(spec, WAIT_MS);
    region.releaseId = answer.releaseId;
    region.previousStable = answer.previousStable;
    if (answer.disposition === 'stale' || answer.disposition === 'busy') {
      set(region, 'failed', answer.reason ?? `the lane answered ${answer.disposition}`);
      return;
    }
    if (answer.disposition === 'queued') record('region-queued', `${region.region}: queued behind ${answer.supersedes}, which rolls back first`);
    let end = answer.end;
    while (!end.finished) end = await waits.awaitRegionRelease(answer.releaseId, WAIT_MS);
    region.outcome = end.outcome;
    if (region.outcome === 'promoted') set(region, 'promoted', null);
    else set(region, 'failed', `its release ended ${region.outcome ?? 'without an outcome (failed or terminated)'}`);
  }

  /** Returns a promoted region to the version stable there before this rollout, through its lane's rollback. */
  async function rollBackRegion(region: RolloutRegion, why: string): Promise<void> {
    if (!region.previousStable) {
      set(region, 'rollback-failed', `no version was stable in ${region.region} before ${version}: nothing to roll back to`);
      return;
    }
    set(region, 'rolling-back', `to ${region.previousStable}`);
    const answer = await lanes.rollbackRegion({
      service,
      environment,
      region: region.region,
      to: region.previousStable,
      actor: abortCommand?.actor ?? 'rampart',
      reason: `rollout ${input.rolloutId}: ${why}`,
    });
    if (answer.alreadyThere) {
      set(region, 'rolled-back', `${region.previousStable} was already stable`);
      return;
    }
    if (answer.disposition === 'refused' || !answer.releaseId) {
      set(region, 'rollback-failed', answer.reason ?? 'the lane refused the rollback');
      return;
    }
    region.rollbackId = answer.releaseId;
    const outcome = await awaitEnd(answer.releaseId);
    if (outcome === 'rolled-back-to') set(region, 'rolled-back', `back on ${region.previousStable}`);
    else set(region, 'rollback-failed', `the rollback ended ${outcome ?? 'without an outcome'}`);
  }

  async function finish(state: RolloutState, reason: string): Promise<RolloutStatus> {
    status.state = state;
    status.reason = reason;
    status.finishedAt = now();
    status.soakUntil = null;
    record('finished', `${state}: ${reason}`, abortCommand?.actor);
    const outcome: Outcome = state === 'promoted' ? 'promoted' : state === 'aborted' ? 'aborted' : state === 'superseded' ? 'superseded' : 'rolled-back';
    upsertSearchAttributes([{ key: outcomeKey, value: outcome }]);
    // DORA reads one rollout as one deployment of the service; the regions' own releases are its detail.
    const memo: ReleaseMemo = { outcome, commitTime: plan.specs[plan.waves[0]![0]!]?.commit?.time ?? null, finishedAt: status.finishedAt, timeToSafeMs: null, drill: false };
    upsertMemo({ release: memo, regions: Object.fromEntries(status.regions.map((r) => [r.region, r.state])) });
    rampart.event(
      { type: 'rollout', service, environment, version, state, regions: status.regions.map((r) => ({ region: r.region, state: r.state })), durationMs: Date.now() - Date.parse(status.startedAt) },
      { phase: null, step: null },
    );
    return status;
  }

  record('started', `${plan.waves.length} wave(s): ${plan.waves.map((w) => `[${w.join(', ')}]`).join(' then ')}; on failure ${plan.onFailure}`, input.requestedBy);
  let failure: string | null = null;
  /** A region's release was superseded: a newer version is on its way there, and this rollout gives way without undoing anything. */
  let supersededIn: string | null = null;
  for (const [index, wave] of status.waves.entries()) {
    if (index > 0 && plan.soakMs > 0 && !abortCommand) {
      status.soakUntil = new Date(Date.now() + plan.soakMs).toISOString();
      wave.state = 'soaking';
      record('soak', `${plan.soakMs} ms before wave ${index + 1}`);
      await condition(() => abortCommand !== null, plan.soakMs);
      status.soakUntil = null;
    }
    // A pause between waves holds the next wave; an abort ends the rollout.
    if (status.paused && !abortCommand) {
      wave.state = 'paused';
      await condition(() => !status.paused || abortCommand !== null);
    }
    if (abortCommand) break;
    status.currentWave = index;
    wave.state = 'running';
    wave.startedAt = now();
    record('wave', `wave ${index + 1}: ${wave.regions.join(', ')}`);
    const regions = wave.regions.map(regionOf);
    const runs = regions.map(async (region) => {
      await runRegion(region);
      if (region.state === 'failed' && !failure) {
        failure = `${region.region}: ${region.detail}`;
        if (region.outcome === 'superseded') supersededIn = region.region;
        // The version is bad somewhere: the rest of this wave stops too.
        await tellInFlight(abortSignal, { actor: 'rampart', reason: `rollout ${input.rolloutId}: ${failure}`, source: 'operator' });
      }
    });
    await Promise.all(runs);
    wave.finishedAt = now();
    wave.state = regions.every((r) => r.state === 'promoted') ? 'promoted' : 'failed';
    if (failure || abortCommand) break;
  }
  for (const region of status.regions) if (region.state === 'waiting') set(region, 'cancelled', 'never started: the rollout stopped before its wave');
  for (const wave of status.waves) if (wave.state === 'waiting' || wave.state === 'soaking' || wave.state === 'paused') wave.state = 'cancelled';

  if (!failure && !abortCommand) return finish('promoted', `${version} promoted in every region`);
  if (supersededIn && !abortCommand) {
    return finish('superseded', `a newer version superseded ${version} in ${supersededIn}; later waves never start and nothing is rolled back (the newer rollout owns the regions now)`);
  }
  const why = abortCommand ? `aborted by ${(abortCommand as ReleaseCommand).actor}: ${(abortCommand as ReleaseCommand).reason}` : `failed in ${failure}`;
  if (!abortCommand && plan.onFailure === 'halt') return finish('halted', `${why}; later waves halted, promoted regions left as they are`);
  // Newest wave first, the regions of one wave together.
  for (const wave of [...status.waves].reverse()) {
    await Promise.all(wave.regions.map(regionOf).filter((r) => r.state === 'promoted').map((r) => rollBackRegion(r, why)));
  }
  return finish(abortCommand ? 'aborted' : 'rolled-back', `${why}; every region this rollout promoted rolled back`);
}

function refuse(command: ReleaseCommand | undefined, reason: string | null): void {
  if (!command || typeof command.actor !== 'string' || !command.actor) throw new Error('a command needs an actor');
  if (typeof command.reason !== 'string' || !command.reason) throw new Error('a command needs a reason');
  if (reason) throw new Error(reason);
}
