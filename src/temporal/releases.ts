import {
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowExecutionInfo,
} from '@temporalio/client';
import { computeDora, type DoraFigures, type ReleaseRecord } from '../engine/dora';
import type { ReleaseMemo } from '../engine/events';
import type { CommandName, Outcome, ReleaseCommand, ReleaseStatus } from '../engine/release-state';
import { rolloutPlan, type ReleaseSpec } from '../spec/release-spec';
import {
  abortUpdate,
  applyAlertsUpdate,
  enqueueReleaseSignal,
  approveUpdate,
  laneStatusQuery,
  laneWorkflowId,
  placeOf,
  releaseWorkflowId,
  pauseUpdate,
  requestRollbackUpdate,
  promoteUpdate,
  resumeUpdate,
  statusQuery,
  submitReleaseUpdate,
  TASK_QUEUE,
  abortRolloutUpdate,
  environmentKey,
  pauseRolloutUpdate,
  resumeRolloutUpdate,
  rolloutStatusQuery,
  rolloutWorkflowId,
  serviceKey,
  versionKey,
  type RolloutStatus,
  type AlertAnswer,
  type AlertNotice,
  type LaneInput,
  type LaneStatus,
  type ReleaseInspection,
  type RollbackAnswer,
  type RollbackRequest,
  type SubmitResult,
} from '../../workflows/definitions';
import { releaseLaneWorkflow } from '../../workflows/lane';
import { rolloutWorkflow } from '../../workflows/rollout';

const ROLLOUT_UPDATES = { pause: pauseRolloutUpdate, resume: resumeRolloutUpdate, abort: abortRolloutUpdate } as const;
export type RolloutCommandName = keyof typeof ROLLOUT_UPDATES;

/** A rollout's start: started, or this version's rollout already exists (it is answered). */
export interface RolloutStart {
  rolloutId: string;
  disposition: 'started' | 'duplicate';
}

/** One region as `rampart where` shows it: what is stable there, what is in flight, and when it last changed. */
export interface RegionView {
  region: string;
  stable: string | null;
  inFlight: { releaseId: string; version: string; state: string | null; step: string | null; rollback: boolean } | null;
  /** When what runs there last changed: the end of the release or rollback that made the stable version stable. */
  lastChange: string | null;
}

/** The rollout of a version does not exist. */
export class RolloutNotFoundError extends Error {
  constructor(readonly rolloutId: string) {
    super(`no rollout ${rolloutId}`);
    this.name = 'RolloutNotFoundError';
  }
}

const COMMAND_UPDATES = {
  pause: pauseUpdate,
  resume: resumeUpdate,
  promote: promoteUpdate,
  abort: abortUpdate,
  approve: approveUpdate,
} as const;

/** The release does not exist (or not yet: a queued release starts when the one it supersedes has rolled back). */
export class ReleaseNotFoundError extends Error {
  constructor(readonly releaseId: string) {
    super(`no release ${releaseId}`);
    this.name = 'ReleaseNotFoundError';
  }
}

/** The command makes no sense in the release's current state; the message says why. */
export class CommandRejectedError extends Error {
  constructor(readonly command: CommandName, reason: string) {
    super(reason);
    this.name = 'CommandRejectedError';
  }
}

/** The service's lane could not take the release (the reason says why); nothing was started. */
export class SubmitRefusedError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'SubmitRefusedError';
  }
}

/** The lane refused a rollback: the target was never stable there (or is stable now); `allowed` lists what may be asked for. */
export class RollbackRefusedError extends Error {
  constructor(reason: string, readonly allowed: string[]) {
    super(reason);
    this.name = 'RollbackRefusedError';
  }
}

/** Releases and rollbacks of promoted releases: both are changes to what runs, and both are listed and counted. */
const CHANGE_WORKFLOWS = `(WorkflowType = 'releaseWorkflow' OR WorkflowType = 'rollbackWorkflow')`;
/** What DORA reads: every change, and rollouts, each one deployment of its service (its regions' releases are the detail). */
const DORA_WORKFLOWS = `(WorkflowType = 'releaseWorkflow' OR WorkflowType = 'rollbackWorkflow' OR WorkflowType = 'rolloutWorkflow')`;

export interface ReleaseSummary {
  releaseId: string;
  service: string | undefined;
  environment: string | undefined;
  version: string | undefined;
  /** The region of a rollout this release belongs to; none for a service without regions. */
  region?: string;
  phase: string | undefined;
  outcome: string | undefined;
  status: string;
  startTime: string;
  closeTime: string | null;
}

export interface ListFilter {
  service?: string;
  environment?: string;
  /** running, or a Temporal execution status (Completed, Failed, …). */
  status?: string;
  limit?: number;
}

/** What the API, the CLI and the tests use to drive releases: Temporal's client, in Rampart's words. */
export class ReleaseClient {
  constructor(private readonly client: Client, private readonly taskQueue: string = TASK_QUEUE) {}

  /**
   * Hands the release to its service's lane, which starts it, queues it behind a superseded one, or
   * finds it a duplicate. A spec with regions starts its version's rollout instead (releaseId and
   * rolloutId are then the rollout's id), which hands each region's release to that region's lane.
   */
  async submit(spec: ReleaseSpec): Promise<SubmitResult> {
    // A drill exercises one lane's rollback path; it runs on the base target, never as a rollout.
    if (spec.regions && !spec.drill) {
      const { rolloutId, disposition } = await this.startRollout(spec);
      return { releaseId: rolloutId, rolloutId, disposition };
    }
    try {
      return await this.submitToLane(spec);
    } catch (error) {
      // The lane refused this one submission (it goes on serving others): say why, typed.
      if (error instanceof WorkflowUpdateFailedError) throw new SubmitRefusedError(error.cause?.message ?? error.message);
      throw error;
    }
  }

  private async submitToLane(spec: ReleaseSpec): Promise<SubmitResult> {
    const lane = new WithStartWorkflowOperation(releaseLaneWorkflow, {
      workflowId: laneWorkflowId(spec.service, spec.environment, spec.region),
      taskQueue: this.taskQueue,
      args: [laneInput(spec)],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    return this.client.workflow.executeUpdateWithStart(submitReleaseUpdate, { args: [spec], startWorkflowOperation: lane });
  }

  /**
   * Starts the rollout of a spec with regions: one workflow per version, which hands each region's
   * release to that region's lane, wave by wave. A second start of the same version answers the first.
   */
  async startRollout(spec: ReleaseSpec): Promise<RolloutStart> {
    const plan = rolloutPlan(spec);
    if (!plan) throw new Error(`${spec.service} declares no regions: release it with submit()`);
    const rolloutId = rolloutWorkflowId(spec.service, spec.environment, spec.version);
    try {
      await this.client.workflow.start(rolloutWorkflow, {
        workflowId: rolloutId,
        taskQueue: this.taskQueue,
        args: [{ rolloutId, service: spec.service, environment: spec.environment, version: spec.version, plan, requestedBy: spec.requestedBy }],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        typedSearchAttributes: [
          { key: serviceKey, value: spec.service },
          { key: environmentKey, value: spec.environment },
          { key: versionKey, value: spec.version },
        ],
      });
      return { rolloutId, disposition: 'started' };
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError) return { rolloutId, disposition: 'duplicate' };
      throw error;
    }
  }

  async rolloutStatus(rolloutId: string): Promise<RolloutStatus> {
    try {
      return await this.client.workflow.getHandle(rolloutId).query(rolloutStatusQuery);
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw new RolloutNotFoundError(rolloutId);
      throw error;
    }
  }

  async rolloutResult(rolloutId: string): Promise<RolloutStatus> {
    return this.client.workflow.getHandle(rolloutId).result();
  }

  /** Pause, resume or abort a whole rollout: refused with the reason when it makes no sense now, else the status after it. */
  async rolloutCommand(rolloutId: string, name: RolloutCommandName, command: ReleaseCommand): Promise<RolloutStatus> {
    const handle = this.client.workflow.getHandle(rolloutId);
    try {
      return await handle.executeUpdate(ROLLOUT_UPDATES[name], { args: [command] });
    } catch (error) {
      if (error instanceof WorkflowUpdateFailedError) throw new CommandRejectedError(name, error.cause?.message ?? error.message);
      if (error instanceof WorkflowNotFoundError) {
        const finished = await handle.query(rolloutStatusQuery).catch(() => null);
        if (finished) throw new CommandRejectedError(name, `the rollout has finished (${finished.state}); nothing to ${name}`);
        throw new RolloutNotFoundError(rolloutId);
      }
      throw error;
    }
  }

  /** The newest rollout of a service in an environment, or null. */
  async latestRollout(service: string, environment: string): Promise<RolloutStatus | null> {
    const query = `WorkflowType = 'rolloutWorkflow' AND RampartService = ${quote(service)} AND RampartEnvironment = ${quote(environment)}`;
    for await (const info of this.client.workflow.list({ query, pageSize: 1 })) {
      return this.rolloutStatus(info.workflowId).catch(() => null);
    }
    return null;
  }

  /**
   * What runs where: per region, the version stable in its lane, the release or rollback in flight and
   * its step, and when the stable version became stable. `regions` default: the newest rollout's.
   */
  async where(service: string, environment: string, regions?: readonly string[]): Promise<RegionView[]> {
    const names = regions ?? (await this.latestRollout(service, environment))?.regions.map((r) => r.region) ?? [];
    return Promise.all(
      names.map(async (region): Promise<RegionView> => {
        const lane = await this.lane(service, environment, region);
        const stable = lane?.stable.at(-1) ?? null;
        const current = lane?.current ?? null;
        const [stableStatus, currentStatus] = await Promise.all([
          stable ? this.status(stable.releaseId).catch(() => null) : null,
          current ? this.status(current.releaseId).catch(() => null) : null,
        ]);
        const running = current && currentStatus && !currentStatus.finishedAt ? current : null;
        return {
          region,
          stable: stable?.version ?? null,
          inFlight: running
            ? { releaseId: running.releaseId, version: running.version, state: currentStatus?.state ?? null, step: currentStatus?.step?.name ?? null, rollback: running.rollback === true }
            : null,
          lastChange: stableStatus?.finishedAt ?? null,
        };
      }),
    );
  }

  /**
   * Hands the release to its lane with signal-with-start and returns at once: as cheap as starting a
   * workflow. The lane then decides exactly as for submit(); the release id is the same either way.
   */
  async enqueue(spec: ReleaseSpec): Promise<SubmitResult> {
    // Starting a rollout is one server call already: nothing to defer.
    if (spec.regions && !spec.drill) return this.submit(spec);
    await this.client.workflow.signalWithStart(releaseLaneWorkflow, {
      workflowId: laneWorkflowId(spec.service, spec.environment, spec.region),
      taskQueue: this.taskQueue,
      args: [laneInput(spec)],
      signal: enqueueReleaseSignal,
      signalArgs: [spec],
    });
    return { releaseId: releaseWorkflowId(spec.service, spec.environment, spec.version, spec.region), disposition: 'accepted' };
  }

  /**
   * Asks the service's lane to roll back to a version that was stable there (default: the one before
   * the current). Answered with the rollback's id; refused (RollbackRefusedError) with the allowed
   * versions when the target was never stable, or when the lane has never released anything.
   */
  async rollback(service: string, environment: string, request: RollbackRequest, region?: string): Promise<RollbackAnswer> {
    let answer: RollbackAnswer;
    try {
      answer = await this.client.workflow.getHandle(laneWorkflowId(service, environment, region)).executeUpdate(requestRollbackUpdate, { args: [request] });
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) {
        throw new RollbackRefusedError(`nothing was ever released for ${service} in ${placeOf(environment, region)}: nothing to roll back`, []);
      }
      if (error instanceof WorkflowUpdateFailedError) throw new SubmitRefusedError(error.cause?.message ?? error.message);
      throw error;
    }
    if (answer.disposition === 'refused') throw new RollbackRefusedError(answer.reason ?? 'the lane refused the rollback', answer.allowed);
    return answer;
  }

  async status(releaseId: string): Promise<ReleaseStatus> {
    try {
      return await this.client.workflow.getHandle(releaseId).query(statusQuery);
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw new ReleaseNotFoundError(releaseId);
      throw error;
    }
  }

  /** Sends a command as an update: refused with the reason when it makes no sense now, else answered with the status after it. */
  async command(releaseId: string, name: CommandName, command: ReleaseCommand): Promise<ReleaseStatus> {
    const handle = this.client.workflow.getHandle(releaseId);
    try {
      return await handle.executeUpdate(COMMAND_UPDATES[name], { args: [command] });
    } catch (error) {
      if (error instanceof WorkflowUpdateFailedError) throw new CommandRejectedError(name, error.cause?.message ?? error.message);
      if (error instanceof WorkflowNotFoundError) {
        // The server answers an update to a closed workflow as "not found"; tell the two apart.
        const finished = await handle.query(statusQuery).catch(() => null);
        if (finished) throw new CommandRejectedError(name, `the release has finished (${finished.state}); nothing to ${name}`);
        throw new ReleaseNotFoundError(releaseId);
      }
      throw error;
    }
  }

  /** Null when Temporal knows no such release; the status is null when the workflow cannot answer (terminated before its first task). */
  async inspect(releaseId: string): Promise<ReleaseInspection | null> {
    const handle = this.client.workflow.getHandle(releaseId);
    try {
      const { status } = await handle.describe();
      return { running: status.name === 'RUNNING', status: await handle.query(statusQuery).catch(() => null) };
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return null;
      throw error;
    }
  }

  /**
   * Hands alerts to the lane of one service and environment, which remembers which fire and steers
   * its release in flight; null when the lane does not exist (nothing was ever released there).
   */
  async applyAlerts(service: string, environment: string, batch: { actor: string; alerts: AlertNotice[] }, region?: string): Promise<AlertAnswer[] | null> {
    try {
      return await this.client.workflow.getHandle(laneWorkflowId(service, environment, region)).executeUpdate(applyAlertsUpdate, { args: [batch] });
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return null;
      throw error;
    }
  }

  /** Waits for the release to finish; an abort of `signal` cancels the server call itself, so nothing is left polling. */
  async result(releaseId: string, signal?: AbortSignal): Promise<ReleaseStatus> {
    const wait = () => this.client.workflow.getHandle(releaseId).result();
    return signal ? this.client.withAbortSignal(signal, wait) : wait();
  }

  async lane(service: string, environment: string, region?: string): Promise<LaneStatus | null> {
    try {
      return await this.client.workflow.getHandle(laneWorkflowId(service, environment, region)).query(laneStatusQuery);
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return null;
      throw error;
    }
  }

  /** The four DORA keys per service over the last `days`, from the releases' own records. */
  async dora(filter: { service?: string; environment?: string; days?: number; now?: Date } = {}): Promise<DoraFigures[]> {
    const to = filter.now ?? new Date();
    const from = new Date(to.getTime() - (filter.days ?? 30) * 86_400_000);
    const clauses = [DORA_WORKFLOWS, `ExecutionStatus != 'Running'`, `CloseTime >= ${quote(from.toISOString())}`];
    if (filter.service) clauses.push(`RampartService = ${quote(filter.service)}`);
    if (filter.environment) clauses.push(`RampartEnvironment = ${quote(filter.environment)}`);
    const records: ReleaseRecord[] = [];
    for await (const info of this.client.workflow.list({ query: clauses.join(' AND '), pageSize: 500 })) records.push(toRecord(info));
    return computeDora(records, { from, to });
  }

  async list(filter: ListFilter = {}): Promise<ReleaseSummary[]> {
    const clauses = [CHANGE_WORKFLOWS];
    if (filter.service) clauses.push(`RampartService = ${quote(filter.service)}`);
    if (filter.environment) clauses.push(`RampartEnvironment = ${quote(filter.environment)}`);
    if (filter.status) clauses.push(`ExecutionStatus = ${quote(filter.status === 'running' ? 'Running' : filter.status)}`);
    const releases: ReleaseSummary[] = [];
    for await (const info of this.client.workflow.list({ query: clauses.join(' AND '), pageSize: 100 })) {
      releases.push(summarize(info));
      if (releases.length >= (filter.limit ?? 100)) break;
    }
    return releases;
  }
}

/** A lane's start input: a region's lane knows its region. */
function laneInput(spec: ReleaseSpec): LaneInput {
  return { service: spec.service, environment: spec.environment, ...(spec.region ? { region: spec.region } : {}) };
}

/** Visibility's view of a release plus the memo it left when it finished. */
export function toRecord(info: WorkflowExecutionInfo): ReleaseRecord {
  const memo = (info.memo?.release ?? null) as ReleaseMemo | null;
  return {
    service: keyword(info, 'RampartService') ?? 'unknown',
    environment: keyword(info, 'RampartEnvironment') ?? 'unknown',
    version: keyword(info, 'RampartVersion') ?? 'unknown',
    outcome: (memo?.outcome ?? (keyword(info, 'RampartOutcome') as Outcome | undefined) ?? null),
    startTime: info.startTime.toISOString(),
    closeTime: memo?.finishedAt ?? info.closeTime?.toISOString() ?? null,
    commitTime: memo?.commitTime ?? null,
    timeToSafeMs: memo?.timeToSafeMs ?? null,
    drill: memo?.drill ?? false,
    ...(memo?.rollback ? { rollback: true } : {}),
    ...(keyword(info, 'RampartRegion') ? { region: keyword(info, 'RampartRegion')! } : {}),
  };
}

function quote(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function keyword(info: WorkflowExecutionInfo, name: string): string | undefined {
  const value = info.searchAttributes?.[name];
  return Array.isArray(value) && typeof value[0] === 'string' ? value[0] : undefined;
}

function summarize(info: WorkflowExecutionInfo): ReleaseSummary {
  return {
    releaseId: info.workflowId,
    service: keyword(info, 'RampartService'),
    environment: keyword(info, 'RampartEnvironment'),
    version: keyword(info, 'RampartVersion'),
    ...(keyword(info, 'RampartRegion') ? { region: keyword(info, 'RampartRegion') } : {}),
    phase: keyword(info, 'RampartPhase'),
    outcome: keyword(info, 'RampartOutcome'),
    status: info.status.name,
    startTime: info.startTime.toISOString(),
    closeTime: info.closeTime?.toISOString() ?? null,
  };
}
