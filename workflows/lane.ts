import {
  allHandlersFinished,
  ApplicationFailure,
  log,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  ParentClosePolicy,
  setHandler,
  startChild,
  workflowInfo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { ReleaseSpec } from '../src/spec/release-spec';
import {
  enqueueReleaseSignal,
  environmentKey,
  laneStatusQuery,
  releaseWorkflowId,
  serviceKey,
  submitReleaseUpdate,
  supersedeSignal,
  versionKey,
  type LaneInput,
  type LaneRecord,
  type SubmitResult,
} from './definitions';
import { releaseWorkflow } from './release';

const RECENT_KEPT = 100;

interface Submission {
  spec: ReleaseSpec;
  answer?: SubmitResult;
  /** Why this submission could not be handled; the lane itself goes on. */
  error?: string;
}

/**
 * The lane of one service in one environment: it owns the rule "at most one release in flight".
 * Every release request for the lane arrives here as an update and is handled in order:
 * - the version in flight, queued, or released recently: a duplicate, answered with the existing release;
 * - a new version while one is in flight: the one in flight is superseded (rolls back cleanly, as
 *   Argo Rollouts does) and the new one starts when that rollback is done; a newer one still
 *   replaces it in the queue before it starts;
 * - otherwise the release starts at once as a child workflow.
 * Release workflow ids are derived from the version and Temporal refuses to reuse them, so even a
 * lane that lost its memory cannot start the same version twice.
 */
export async function releaseLaneWorkflow(input: LaneInput): Promise<void> {
  const { service, environment } = input;
  const recent: LaneRecord[] = [...(input.recent ?? [])];
  const inbox: Submission[] = [];
  // Kept in one object: handlers and the loop both change it, and the compiler must not assume it stays null.
  const lane: {
    current: (LaneRecord & { done: boolean; supersedeSent: boolean }) | null;
    pending: (LaneRecord & { spec: ReleaseSpec }) | null;
  } = { current: null, pending: null };

  setHandler(laneStatusQuery, () => ({
    service,
    environment,
    current: lane.current ? { releaseId: lane.current.releaseId, version: lane.current.version } : null,
    pending: lane.pending ? { releaseId: lane.pending.releaseId, version: lane.pending.version } : null,
    recent,
  }));

  setHandler(
    submitReleaseUpdate,
    async (spec) => {
      const submission: Submission = { spec };
      inbox.push(submission);
      await condition(() => submission.answer !== undefined || submission.error !== undefined);
      if (submission.error !== undefined) throw ApplicationFailure.nonRetryable(submission.error, 'SubmitFailed');
      return submission.answer!;
    },
    {
      validator: (spec) => {
        if (spec?.service !== service || spec?.environment !== environment) {
          throw new Error(`this lane is ${service}/${environment}; the release is for ${spec?.service}/${spec?.environment}`);
        }
      },
    },
  );

  setHandler(enqueueReleaseSignal, (spec) => {
    // Nobody waits for this answer: a submission for another lane is dropped with a log line.
    if (spec?.service !== service || spec?.environment !== environment) {
      log.warn('submission for another lane ignored', { lane: `${service}/${environment}`, service: spec?.service, environment: spec?.environment });
      return;
    }
    inbox.push({ spec });
  });

  function remember(record: LaneRecord): void {
    recent.push(record);
    if (recent.length > RECENT_KEPT) recent.shift();
  }

  async function start(spec: ReleaseSpec): Promise<SubmitResult> {
    const releaseId = releaseWorkflowId(service, environment, spec.version);
    try {
      const child = await startChild(releaseWorkflow, {
        workflowId: releaseId,
        args: [{ releaseId, spec }],
        // The lane may continue-as-new while nothing is in flight; releases must never depend on it.
        parentClosePolicy: ParentClosePolicy.ABANDON,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        typedSearchAttributes: [
          { key: serviceKey, value: service },
          { key: environmentKey, value: environment },
          { key: versionKey, value: spec.version },
        ],
      });
      const started = { releaseId, version: spec.version, done: false, supersedeSent: false };
      lane.current = started;
      remember({ releaseId, version: spec.version });
      child.result().then(
        () => (started.done = true),
        () => (started.done = true),
      );
      return { releaseId, disposition: 'started' };
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError) return { releaseId, disposition: 'duplicate' };
      throw error;
    }
  }

  async function handle(spec: ReleaseSpec): Promise<SubmitResult> {
    const known = [lane.current, lane.pending, ...recent].find((r) => r?.version === spec.version);
    if (known) return { releaseId: known.releaseId, disposition: 'duplicate' };
    if (!lane.current) return start(spec);
    // A drill waits its turn or is skipped; a real release arriving during a drill supersedes it, as any newer version does.
    if (spec.drill) return { releaseId: lane.current.releaseId, disposition: 'busy' };

    const inFlight = lane.current;
    const releaseId = releaseWorkflowId(service, environment, spec.version);
    if (!inFlight.supersedeSent) {
      try {
        await getExternalWorkflowHandle(inFlight.releaseId).signal(supersedeSignal, { byVersion: spec.version, byRelease: releaseId });
        inFlight.supersedeSent = true;
      } catch {
        // It finished before its completion reached the lane: nothing to supersede, the lane is free.
        lane.current = null;
        return start(spec);
      }
    }
    // A queued version replaced by a newer one never starts; remembered, so a redelivery stays a duplicate.
    if (lane.pending) remember({ releaseId: lane.pending.releaseId, version: lane.pending.version });
    lane.pending = { releaseId, version: spec.version, spec };
    return { releaseId, disposition: 'queued', supersedes: inFlight.releaseId };
  }

  for (;;) {
    await condition(() => inbox.length > 0 || lane.current?.done === true || (lane.current === null && workflowInfo().continueAsNewSuggested));
    if (lane.current?.done) {
      lane.current = null;
      if (lane.pending) {
        const next = lane.pending;
        lane.pending = null;
        // Its submitter was answered "queued" long ago; a failure here is logged, never fatal to the lane.
        await start(next.spec).catch((error: Error) => log.error('queued release could not start', { version: next.version, error: error.message }));
      }
    }
    while (inbox.length > 0) {
      const submission = inbox.shift()!;
      try {
        submission.answer = await handle(submission.spec);
      } catch (error) {
        submission.error = `the lane could not handle ${submission.spec.version}: ${(error as Error).message}`;
      }
    }
    if (lane.current === null && lane.pending === null && workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof releaseLaneWorkflow>({ service, environment, recent });
    }
  }
}
