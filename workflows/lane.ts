import {
  allHandlersFinished,
  ApplicationFailure,
  log,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  ParentClosePolicy,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  uuid4,
  workflowInfo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { LaneActivities } from '../activities/lane';
import { AlertTracker } from '../src/engine/alerts';
import { rejectCommand, type ReleaseCommand } from '../src/engine/release-state';
import { rollbackTarget } from '../src/engine/rollback';
import type { ReleaseSpec } from '../src/spec/release-spec';
import {
  abortSignal,
  ALERTS_PER_NOTIFICATION,
  applyAlertsUpdate,
  enqueueReleaseSignal,
  environmentKey,
  laneStatusQuery,
  pauseSignal,
  releaseFinishedSignal,
  placeOf,
  regionKey,
  releaseWorkflowId,
  requestRollbackUpdate,
  resumeSignal,
  rollbackWorkflowId,
  serviceKey,
  submitReleaseUpdate,
  supersedeSignal,
  versionKey,
  type AlertAnswer,
  type AlertNotice,
  type CarriedRelease,
  type LaneInput,
  type LaneRecord,
  type PendingRelease,
  type ReleaseInspection,
  type RollbackAnswer,
  type RollbackRequest,
  type RollbackWorkflowInput,
  type StableRecord,
  type SubmitResult,
} from './definitions';
import { releaseWorkflow } from './release';
import { rollbackWorkflow } from './rollback';

const RECENT_KEPT = 100;
/** Versions that were stable, kept as rollback targets: a rollback further back than this is a new release. */
const STABLE_KEPT = 20;
const ALERTS_KEPT = 1_000;
/** A run continues as new past this many events even if the server has not suggested it (it suggests at about 4,000). */
const HISTORY_BOUND = 10_000;
/**
 * How long a queued release waits before the lane looks at an inherited release itself: the release
 * reports its end by signal, but one terminated by hand, or running code older than that signal, never does.
 */
const INHERITED_CHECK_MS = 15_000;

const temporal = proxyActivities<LaneActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '2s', maximumAttempts: 5 },
});

/** One piece of work for the lane's loop, answered there, in arrival order. */
interface Submission {
  kind: 'submit';
  spec: ReleaseSpec;
  answer?: SubmitResult;
  /** Why it could not be handled; the lane itself goes on. */
  error?: string;
}
interface AlertBatch {
  kind: 'alerts';
  actor: string;
  alerts: AlertNotice[];
  answer?: AlertAnswer[];
  error?: string;
}
interface RollbackWork {
  kind: 'rollback';
  request: RollbackRequest;
  answer?: RollbackAnswer;
  error?: string;
}
type Work = Submission | AlertBatch | RollbackWork;

interface InFlight extends CarriedRelease {
  /** Started by this run, so its completion reaches this run; an inherited one reports by signal, or is checked on. */
  watched: boolean;
}

/**
 * The lane of one service in one environment: it owns the rule "at most one release in flight".
 * Every release request for the lane arrives here and is handled in order:
 * - the version in flight, queued, or released recently: a duplicate, answered with the existing release;
 * - a commit older than the newest one started or queued: refused as stale (versions never go back);
 * - a new version while one is in flight: the one in flight is superseded (rolls back cleanly, as
 *   Argo Rollouts does) and the new one starts when that rollback is done; a newer one still
 *   replaces it in the queue before it starts;
 * - otherwise the release starts at once as a child workflow.
 * Release workflow ids are derived from the version and Temporal refuses to reuse them, so even a
 * lane that lost its memory cannot start the same version twice.
 *
 * Alertmanager's alerts for the service arrive here too, whichever API replica took them: the lane
 * remembers which fire and pauses, aborts or resumes its release in flight, in the order it decides.
 *
 * The lane continues as new when Temporal suggests it, busy or not, handing the release in flight,
 * the queued one and its memory to the next run. Releases are children with ParentClosePolicy
 * ABANDON, so they run on; their completion reaches only the run that started them, so a release
 * also reports its end to the lane by releaseFinishedSignal, which reaches whichever run is current.
 */
export async function releaseLaneWorkflow(input: LaneInput): Promise<void> {
  const { service, environment, region } = input;
  const generation = input.generation ?? 0;
  const recent: LaneRecord[] = [...(input.recent ?? [])];
  const stable: StableRecord[] = [...(input.stable ?? [])];
  const alerts = new AlertTracker(ALERTS_KEPT, input.alerts ?? []);
  const work: Work[] = (input.unhandled ?? []).map((spec) => ({ kind: 'submit', spec }));
  // Kept in one object: handlers and the loop both change it, and the compiler must not assume it stays null.
  const lane: {
    current: InFlight | null;
    pending: PendingRelease | null;
    newest: LaneRecord | null;
  } = {
    current: input.current ? { ...input.current, watched: false } : null,
    pending: input.pending ?? null,
    newest: input.newest ?? null,
  };

  const plain = (r: LaneRecord): LaneRecord => ({
    releaseId: r.releaseId,
    version: r.version,
    ...(r.commitTime ? { commitTime: r.commitTime } : {}),
    ...(r.rollback ? { rollback: true } : {}),
  });
  setHandler(laneStatusQuery, () => ({
    service,
    environment,
    ...(region ? { region } : {}),
    current: lane.current ? plain(lane.current) : null,
    pending: lane.pending ? plain(lane.pending) : null,
    recent,
    stable: stable.map(plain),
    newest: lane.newest,
    firingAlerts: alerts.firingFor(service, environment, ''),
    generation,
  }));

  /** Waits for the loop to answer; the loop never waits for handlers before it has answered all they wait for, so this cannot deadlock. */
  async function taken(item: Work): Promise<void> {
    work.push(item);
    await condition(() => item.answer !== undefined || item.error !== undefined);
    if (item.error !== undefined) throw ApplicationFailure.nonRetryable(item.error, 'SubmitFailed');
  }

  const forThisLane = (spec: ReleaseSpec | undefined) => spec?.service === service && spec?.environment === environment && spec?.region === region;
  const laneName = placeOf(environment, region);

  setHandler(
    submitReleaseUpdate,
    async (spec) => {
      const submission: Submission = { kind: 'submit', spec };
      await taken(submission);
      return submission.answer!;
    },
    {
      validator: (spec) => {
        if (!forThisLane(spec)) throw new Error(`this lane is ${service}/${laneName}; the release is for ${spec?.service}/${placeOf(spec?.environment ?? '', spec?.region)}`);
      },
    },
  );

  setHandler(enqueueReleaseSignal, (spec) => {
    // Nobody waits for this answer: a submission for another lane is dropped with a log line.
    if (!forThisLane(spec)) {
      log.warn('submission for another lane ignored', { lane: `${service}/${laneName}`, service: spec?.service, environment: spec?.environment, region: spec?.region });
      return;
    }
    work.push({ kind: 'submit', spec });
  });

  setHandler(
    applyAlertsUpdate,
    async ({ actor, alerts: notices }) => {
      const batch: AlertBatch = { kind: 'alerts', actor, alerts: notices };
      await taken(batch);
      return batch.answer!;
    },
    {
      validator: (batch) => {
        if (!batch || typeof batch.actor !== 'string' || !Array.isArray(batch.alerts)) throw new Error('alerts need an actor and a list of alerts');
        if (batch.alerts.length > ALERTS_PER_NOTIFICATION) throw new Error(`at most ${ALERTS_PER_NOTIFICATION} alerts at once`);
      },
    },
  );

  setHandler(
    requestRollbackUpdate,
    async (request) => {
      const item: RollbackWork = { kind: 'rollback', request };
      await taken(item);
      return item.answer!;
    },
    {
      validator: (request) => {
        if (!request || typeof request.actor !== 'string' || !request.actor) throw new Error('a rollback needs an actor');
        if (typeof request.reason !== 'string' || !request.reason) throw new Error('a rollback needs a reason');
        if (request.to !== undefined && (typeof request.to !== 'string' || !request.to)) throw new Error('to names a version');
      },
    },
  );

  setHandler(releaseFinishedSignal, ({ releaseId, outcome }) => {
    if (lane.current?.releaseId !== releaseId) return;
    lane.current.done = true;
    lane.current.outcome ??= outcome;
  });

  function remember(record: LaneRecord): void {
    recent.push(plain(record));
    if (recent.length > RECENT_KEPT) recent.shift();
  }

  function record(spec: ReleaseSpec, releaseId: string): LaneRecord {
    return { releaseId, version: spec.version, ...(spec.commit ? { commitTime: spec.commit.time } : {}) };
  }

  /** Moves the watermark that versions may not go back before. */
  function advance(entry: LaneRecord): void {
    if (!entry.commitTime) return;
    if (!lane.newest?.commitTime || Date.parse(entry.commitTime) > Date.parse(lane.newest.commitTime)) lane.newest = entry;
  }

  /** Why a submission goes back in time, or null. Without a commit time there is no order but arrival. */
  function staleness(spec: ReleaseSpec): string | null {
    const newest = lane.newest;
    if (!spec.commit || !newest?.commitTime) return null;
    if (Date.parse(spec.commit.time) >= Date.parse(newest.commitTime)) return null;
    // Lanes recorded before this rule took every version; they replay that way.
    if (!patched('lane-refuses-stale-commits')) return null;
    return `commit ${spec.commit.sha} (${spec.commit.time}) is older than ${newest.version} (${newest.commitTime}), already started or queued as ${newest.releaseId}: versions never go back`;
  }

  async function start(spec: ReleaseSpec): Promise<SubmitResult> {
    const releaseId = releaseWorkflowId(service, environment, spec.version, region);
    try {
      const child = await startChild(releaseWorkflow, {
        workflowId: releaseId,
        args: [{ releaseId, spec }],
        // The lane continues as new while releases run; releases must never depend on it.
        parentClosePolicy: ParentClosePolicy.ABANDON,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        typedSearchAttributes: [
          { key: serviceKey, value: service },
          { key: environmentKey, value: environment },
          { key: versionKey, value: spec.version },
          ...(region ? [{ key: regionKey, value: region }] : []),
        ],
      });
      const started: InFlight = { ...record(spec, releaseId), done: false, supersedeSent: false, alertPolicy: spec.alerts, target: spec.target, watched: true };
      lane.current = started;
      remember(started);
      advance(started);
      child.result().then(
        (status) => {
          started.outcome ??= status.outcome?.result;
          started.done = true;
        },
        () => (started.done = true),
      );
      return { releaseId, disposition: 'started' };
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError) return { releaseId, disposition: 'duplicate' };
      throw error;
    }
  }

  async function startRollback(rollback: RollbackWorkflowInput): Promise<void> {
    const child = await startChild(rollbackWorkflow, {
      workflowId: rollback.releaseId,
      args: [rollback],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      typedSearchAttributes: [
        { key: serviceKey, value: service },
        { key: environmentKey, value: environment },
        { key: versionKey, value: rollback.to },
        ...(region ? [{ key: regionKey, value: region }] : []),
      ],
    });
    const started: InFlight = {
      releaseId: rollback.releaseId,
      version: rollback.to,
      rollback: true,
      ...(rollback.commit ? { commitTime: rollback.commit.time } : {}),
      done: false,
      supersedeSent: false,
      // Never consulted: alerts do not steer a rollback (they are most likely about the version it leaves).
      alertPolicy: { onFiring: 'pause', resumeOnResolved: false },
      target: rollback.target,
      watched: true,
    };
    lane.current = started;
    remember(started);
    advance(started);
    child.result().then(
      (status) => {
        started.outcome ??= status.outcome?.result;
        started.done = true;
      },
      () => (started.done = true),
    );
  }

  /** What a finished release means for the lane's memory of stable versions: a promotion adds one, a rollback's arrival returns to one. */
  function noteEnd(release: InFlight): void {
    if (!release.target) return;
    const current = stable.at(-1);
    if (release.outcome === 'rolled-back-to' && current && current.version !== release.version) {
      for (const entry of stable) if (entry.version === current.version) entry.rolledBackFrom = true;
    }
    if ((release.outcome === 'promoted' || release.outcome === 'rolled-back-to') && current?.version !== release.version) {
      stable.push({ ...plain(release), target: release.target });
      if (stable.length > STABLE_KEPT) stable.shift();
    }
  }

  /** The release in flight is over (or gone): remembered for what it did, and the lane is free. */
  function settle(current: InFlight): void {
    noteEnd(current);
    if (lane.current === current) lane.current = null;
  }

  /** Asks Temporal whether a release still runs: undefined when it could not tell. */
  async function inspect(release: InFlight): Promise<ReleaseInspection | null | undefined> {
    const found = await temporal.inspectRelease(release.releaseId).catch(() => undefined);
    if (found === null || found?.running === false) release.done = true;
    if (found?.status?.outcome) release.outcome ??= found.status.outcome.result;
    return found;
  }

  /** An inherited release may have ended unreported; a release this run started reports by itself. */
  async function checkOn(release: InFlight): Promise<void> {
    if (!release.watched && !release.done) await inspect(release);
  }

  /**
   * A revert: a version that was stable before, built again from a commit newer than any the lane has
   * started (a `git revert` rebuilds the same digest). It takes the rollback path; a redelivery of it,
   * or of any release, carries no newer commit and stays a duplicate.
   */
  function isRevert(spec: ReleaseSpec): boolean {
    if (!spec.commit || spec.drill || !lane.newest?.commitTime) return false;
    if (Date.parse(spec.commit.time) <= Date.parse(lane.newest.commitTime)) return false;
    if (!rollbackTarget(stable, spec.version).allowed.includes(spec.version)) return false;
    // Lanes recorded before rollbacks took such a version as a duplicate; they replay that way.
    return patched('lane-rollback');
  }

  async function handle(spec: ReleaseSpec): Promise<SubmitResult> {
    if (isRevert(spec)) {
      const answer = await rollBack(
        { to: spec.version, actor: spec.requestedBy, reason: `revert: commit ${spec.commit!.sha} (${spec.commit!.time}) rebuilds ${spec.version}`, target: spec.target },
        spec.commit,
      );
      if (answer.disposition !== 'refused' && answer.releaseId) {
        return { releaseId: answer.releaseId, disposition: answer.disposition, ...(answer.supersedes ? { supersedes: answer.supersedes } : {}) };
      }
    }
    // Newest first: a version released and later returned to by a rollback answers with the rollback.
    const known = [lane.current, lane.pending, ...[...recent].reverse()].find((r) => r?.version === spec.version);
    if (known) return { releaseId: known.releaseId, disposition: 'duplicate' };
    const releaseId = releaseWorkflowId(service, environment, spec.version, region);
    const stale = staleness(spec);
    if (stale) return { releaseId, disposition: 'stale', reason: stale };
    if (lane.current && spec.drill && !lane.current.watched) {
      // An inherited release may have ended unreported; a drill must not be turned away by it.
      await checkOn(lane.current);
      if (lane.current.done) settle(lane.current);
    }
    if (!lane.current) return start(spec);
    // A drill waits its turn or is skipped; a real release arriving during a drill supersedes it, as any newer version does.
    if (spec.drill) return { releaseId: lane.current.releaseId, disposition: 'busy' };

    const queued = await supersede(lane.current, { ...record(spec, releaseId), spec });
    if (!queued) return start(spec);
    return { releaseId, disposition: 'queued', supersedes: queued };
  }

  /**
   * Asks the release in flight to give way and queues the next entry behind it: the id of the release
   * it supersedes, or null when that one had already finished (the lane is free, nothing was queued).
   */
  async function supersede(inFlight: InFlight, next: PendingRelease): Promise<string | null> {
    if (!inFlight.supersedeSent) {
      try {
        await getExternalWorkflowHandle(inFlight.releaseId).signal(supersedeSignal, { byVersion: next.version, byRelease: next.releaseId });
        inFlight.supersedeSent = true;
      } catch {
        // It finished before its completion reached the lane: nothing to supersede, the lane is free.
        settle(inFlight);
        return null;
      }
    }
    // A queued version replaced by a newer one never starts; remembered, so a redelivery stays a duplicate.
    if (lane.pending) remember(lane.pending);
    lane.pending = next;
    advance(lane.pending);
    return inFlight.releaseId;
  }

  /**
   * A rollback to a version that was stable in the lane: by default the one stable before the current
   * one (skipping versions a rollback already left), else the one asked for, if it was stable here.
   * It supersedes a release in flight, as a new version does, and starts once that has rolled back.
   */
  async function rollBack(request: RollbackRequest, commit?: { sha: string; time: string }): Promise<RollbackAnswer> {
    const choice = rollbackTarget(stable, request.to);
    const from = stable.at(-1)?.version ?? null;
    const base = { from, allowed: choice.allowed };
    if (!('target' in choice)) return { ...base, releaseId: null, disposition: 'refused', to: request.to ?? null, reason: choice.refusal };
    if (!patched('lane-rollback')) return { ...base, releaseId: null, disposition: 'refused', to: choice.target.version, reason: 'this lane predates rollbacks' };
    const to = choice.target.version;
    // The same rollback asked for twice (a double click, a retried request) is one rollback.
    for (const entry of [lane.current?.done ? null : lane.current, lane.pending]) {
      if (entry?.rollback && entry.version === to) return { ...base, releaseId: entry.releaseId, disposition: 'duplicate', to };
    }
    const releaseId = rollbackWorkflowId(service, environment, to, uuid4().slice(0, 8), region);
    const rollback: RollbackWorkflowInput = {
      releaseId,
      service,
      environment,
      ...(region ? { region } : {}),
      target: request.target ?? choice.target.target,
      from,
      to,
      actor: request.actor,
      reason: request.reason,
      requestedAt: new Date().toISOString(),
      ...(commit ? { commit } : {}),
    };
    const entry: PendingRelease = { releaseId, version: to, rollback: true, ...(commit ? { commitTime: commit.time } : {}), rollbackInput: rollback };
    if (lane.current?.done) settle(lane.current);
    if (lane.current) {
      const queued = await supersede(lane.current, entry);
      if (queued) return { ...base, releaseId, disposition: 'queued', to, supersedes: queued };
    }
    await startRollback(rollback);
    return { ...base, releaseId, disposition: 'started', to };
  }

  /** Steers the release in flight by one alert: pause or abort on firing; resume once no alert fires, if its policy says so. */
  async function steer(release: InFlight, inspection: ReleaseInspection | undefined, notice: AlertNotice, actor: string): Promise<Pick<AlertAnswer, 'action' | 'detail'>> {
    const status = inspection?.status ?? null;
    const command: ReleaseCommand = { actor, reason: notice.reason, source: 'alert' };
    const send = async (signal: typeof pauseSignal, action: AlertAnswer['action'], name: string): Promise<Pick<AlertAnswer, 'action' | 'detail'>> => {
      try {
        await getExternalWorkflowHandle(release.releaseId).signal(signal, command);
        return { action, detail: `${name} applied: ${notice.reason}` };
      } catch {
        return { action: 'none', detail: 'the release is gone' };
      }
    };

    if (notice.status === 'firing') {
      const wanted = notice.requested ?? release.alertPolicy.onFiring;
      // Unread state errs towards stopping: the release itself ignores a command that no longer applies.
      const rejection = status ? rejectCommand(status, wanted) : null;
      if (rejection) return { action: 'none', detail: rejection };
      return wanted === 'abort' ? send(abortSignal, 'aborting', 'abort') : send(pauseSignal, 'paused', 'pause');
    }

    if (!status) return { action: 'none', detail: 'the release stays paused: its state could not be read' };
    if (status.state !== 'paused' || status.pause?.cause !== 'alert') {
      return { action: 'none', detail: `nothing to resume: the release is ${status.state}${status.pause ? ` (paused by ${status.pause.cause})` : ''}` };
    }
    if (!release.alertPolicy.resumeOnResolved) return { action: 'none', detail: 'the release stays paused: its alert policy does not resume on resolve' };
    const stillFiring = alerts.firingFor(service, environment, notice.fingerprint);
    if (stillFiring.length > 0) return { action: 'none', detail: `the release stays paused: ${stillFiring.length} other alert(s) still firing` };
    return send(resumeSignal, 'resumed', 'resume');
  }

  async function applyAlerts(notices: AlertNotice[], actor: string): Promise<AlertAnswer[]> {
    const answers: AlertAnswer[] = [];
    for (const notice of notices) {
      const base = { fingerprint: notice.fingerprint };
      const fresh = alerts.observe(notice.fingerprint, {
        status: notice.status,
        startsAt: notice.startsAt,
        endsAt: notice.endsAt ?? Number.POSITIVE_INFINITY,
        service,
        environment: notice.environment,
      });
      if (!fresh) {
        answers.push({ ...base, releaseId: null, action: 'none', detail: 'a late notification: a newer one for this alert was already handled' });
        continue;
      }
      const inFlight = lane.current;
      if (inFlight?.rollback && !inFlight.done) {
        answers.push({ ...base, releaseId: inFlight.releaseId, action: 'none', detail: `a rollback to known-good ${inFlight.version} is in flight; alerts do not steer it` });
        continue;
      }
      const inspection = inFlight && !inFlight.done ? await inspect(inFlight) : undefined;
      if (!inFlight || inFlight.done || inspection === null) {
        answers.push({ ...base, releaseId: null, action: 'none', detail: `no release of ${service} in ${laneName} is in flight` });
        continue;
      }
      answers.push({ ...base, releaseId: inFlight.releaseId, ...(await steer(inFlight, inspection, notice, actor)) });
    }
    return answers;
  }

  async function serve(item: Work): Promise<void> {
    try {
      if (item.kind === 'submit') item.answer = await handle(item.spec);
      else if (item.kind === 'rollback') item.answer = await rollBack(item.request);
      else item.answer = await applyAlerts(item.alerts, item.actor);
    } catch (error) {
      const what = item.kind === 'submit' ? item.spec.version : item.kind === 'rollback' ? 'the rollback' : 'the alerts';
      item.error = `the lane could not handle ${what}: ${(error as Error).message}`;
    }
  }

  /** The release in flight has ended: the queued one, if any, starts. */
  async function startQueued(): Promise<void> {
    if (lane.current) settle(lane.current);
    if (!lane.pending) return;
    const next = lane.pending;
    lane.pending = null;
    // Its submitter was answered "queued" long ago; a failure here is logged, never fatal to the lane.
    const failed = (error: Error) => log.error('queued release could not start', { version: next.version, error: error.message });
    if (next.rollbackInput) await startRollback(next.rollbackInput).catch(failed);
    else await start(next.spec).catch(failed);
  }

  // Lanes recorded before this could continue only when idle, and replay that way: decided once, at the first chance.
  let continueInFlight: boolean | undefined;
  const mayContinue = () => {
    if (lane.current === null && lane.pending === null) return workflowInfo().continueAsNewSuggested;
    return continueInFlight !== false && (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > HISTORY_BOUND);
  };

  /**
   * Answers every piece of work taken in until no handler runs, then continues as new in the same
   * activation, so nothing can slip in between. Updates the server has not yet delivered are sent
   * to the next run by Temporal itself; signals taken in but not handled travel in the input.
   */
  async function continueAsNewSafely(): Promise<never> {
    for (;;) {
      while (work.length > 0 && !allHandlersFinished()) await serve(work.shift()!);
      if (allHandlersFinished()) break;
      await condition(() => work.length > 0 || allHandlersFinished());
    }
    const current: CarriedRelease | null = lane.current
      ? {
          ...plain(lane.current),
          done: lane.current.done,
          supersedeSent: lane.current.supersedeSent,
          alertPolicy: lane.current.alertPolicy,
          ...(lane.current.outcome ? { outcome: lane.current.outcome } : {}),
          ...(lane.current.target ? { target: lane.current.target } : {}),
        }
      : null;
    return continueAsNew<typeof releaseLaneWorkflow>({
      service,
      environment,
      ...(region ? { region } : {}),
      recent,
      stable,
      current,
      pending: lane.pending,
      unhandled: work.flatMap((item) => (item.kind === 'submit' ? [item.spec] : [])),
      newest: lane.newest,
      alerts: alerts.records(),
      generation: generation + 1,
    });
  }

  const ready = () => work.length > 0 || lane.current?.done === true || mayContinue();
  /** Workflow time of the next look at an inherited release a queued one waits on; submissions arriving meanwhile do not put it off. */
  let inheritedCheckAt: number | null = null;
  for (;;) {
    const inherited = lane.current !== null && !lane.current.watched && !lane.current.done && lane.pending !== null ? lane.current : null;
    if (!inherited) {
      inheritedCheckAt = null;
      await condition(ready);
    } else {
      inheritedCheckAt ??= Date.now() + INHERITED_CHECK_MS;
      if (Date.now() < inheritedCheckAt) {
        await condition(ready, inheritedCheckAt - Date.now());
      } else {
        inheritedCheckAt = null;
        await checkOn(inherited);
      }
    }
    if (lane.current?.done) await startQueued();
    while (work.length > 0) await serve(work.shift()!);
    if (!mayContinue()) continue;
    if (lane.current !== null || lane.pending !== null) continueInFlight ??= patched('lane-continue-in-flight');
    if (continueInFlight !== false || (lane.current === null && lane.pending === null)) await continueAsNewSafely();
  }
}
