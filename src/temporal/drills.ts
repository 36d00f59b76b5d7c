import { ScheduleNotFoundError, type Client, type ScheduleOverlapPolicy } from '@temporalio/client';
import { z } from 'zod';
import { parseDuration } from '../engine/duration';
import type { DrillInput, DrillKind, DrillResult } from '../engine/drill';
import { durationSchema, nameSchema, releaseSpecSchema } from '../spec/release-spec';
import { drillScheduleId, TASK_QUEUE } from '../../workflows/definitions';
import { rollbackDrillWorkflow } from '../../workflows/drill';

/** When and how a drill runs: the part of a drill schedule that is the same whether its spec is registered or inline. */
export const drillTimingShape = {
  kind: z
    .enum(['canary-fault', 'revert'])
    .default('canary-fault')
    .describe(
      'canary-fault: a faulty build the engine must catch in the canary phase and roll back. revert: a healthy build released to 100%, then rolled back with the rollback command; timed from the command to all traffic on the previous version.',
    ),
  fault: z
    .object({
      errorRate: z.number().min(0).max(1).default(0.5).describe('Share of requests the drill build fails.'),
      latencyMs: z.number().min(0).optional().describe('Latency of the drill build in ms.'),
    })
    .strict()
    .default({ errorRate: 0.5 })
    .describe('The fault the drill build carries (canary-fault drills; a revert drill\'s build is healthy).'),
  slo: durationSchema.default(120_000).describe('Time to safe a passing drill stays under (default 2m).'),
  whenBusy: z.enum(['skip', 'wait']).default('skip').describe('With a release in flight: skip the drill, or wait for the lane.'),
  maxWait: durationSchema.default(600_000).describe('With whenBusy=wait: how long to wait before skipping.'),
  every: z.string().optional().describe('Interval between drills, e.g. "1h", "30m" (one of every or cron).'),
  cron: z.string().min(9).max(100).optional().describe('Cron expression, e.g. "0 3 1 * *" (one of every or cron).'),
  overlap: z.enum(['skip', 'buffer-one', 'cancel-other', 'allow-all']).default('skip').describe('What a drill due while the last still runs does.'),
  paused: z.boolean().default(false).describe('Create the schedule paused.'),
};

/** Exactly one of every and cron, and an interval a schedule can keep. */
export function refineDrillTiming(value: { every?: string | undefined; cron?: string | undefined }, ctx: z.RefinementCtx): void {
  if (!value.every === !value.cron) ctx.addIssue({ code: 'custom', path: ['every'], message: 'give exactly one of every or cron' });
  if (value.every && (parseDuration(value.every) ?? 0) < 1_000) {
    ctx.addIssue({ code: 'custom', path: ['every'], message: 'an interval such as 30s, 15m or 1h, at least 1s' });
  }
}

/**
 * A drill schedule with the release spec it drills with, already decided. This client trusts the
 * spec as given; the API decides it from the registered spec (or an inline simulated one) first.
 */
export const drillScheduleSchema = z
  .object({
    service: nameSchema.describe('The service to drill.'),
    environment: nameSchema.default('production').describe('Its environment; the drill goes through the same lane as its releases.'),
    spec: releaseSpecSchema
      .omit({ service: true, environment: true, version: true })
      .partial()
      .default({})
      .describe('The release spec to drill with (target, strategy, analysis); the version is made per drill.'),
    ...drillTimingShape,
  })
  .strict()
  .superRefine(refineDrillTiming);

export type DrillScheduleInput = z.input<typeof drillScheduleSchema>;

const OVERLAP: Record<z.infer<typeof drillScheduleSchema>['overlap'], ScheduleOverlapPolicy> = {
  skip: 'SKIP',
  'buffer-one': 'BUFFER_ONE',
  'cancel-other': 'CANCEL_OTHER',
  'allow-all': 'ALLOW_ALL',
};

export interface DrillScheduleSummary {
  scheduleId: string;
  service: string;
  environment: string;
  kind: DrillKind;
  paused: boolean;
  note: string | null;
  every: string | null;
  cron: string | null;
  nextRuns: string[];
  recentRuns: Array<{ workflowId: string; at: string }>;
}

export class DrillNotFoundError extends Error {
  constructor(readonly scheduleId: string) {
    super(`no drill schedule ${scheduleId}`);
    this.name = 'DrillNotFoundError';
  }
}

/** Rollback drills on Temporal Schedules: create, list, pause, resume, trigger now, delete, and their results. */
export class DrillClient {
  constructor(private readonly client: Client, private readonly taskQueue: string = TASK_QUEUE) {}

  async create(raw: DrillScheduleInput): Promise<DrillScheduleSummary> {
    const input = drillScheduleSchema.parse(raw);
    const spec = releaseSpecSchema.parse({ ...input.spec, service: input.service, environment: input.environment, version: '0000000' });
    const args: DrillInput = {
      // Only revert drills carry a kind: a canary-fault drill's input stays as it was before revert drills.
      ...(input.kind === 'revert' ? { kind: input.kind } : {}),
      service: input.service,
      environment: input.environment,
      spec,
      fault: input.fault,
      sloMs: input.slo,
      whenBusy: input.whenBusy,
      maxWaitMs: input.maxWait,
    };
    const scheduleId = drillScheduleId(input.service, input.environment);
    await this.client.schedule.create({
      scheduleId,
      spec: input.every ? { intervals: [{ every: parseDuration(input.every)! }] } : { cronExpressions: [input.cron!] },
      action: {
        type: 'startWorkflow',
        workflowType: rollbackDrillWorkflow,
        workflowId: `drill-run/${input.service}/${input.environment}`,
        taskQueue: this.taskQueue,
        args: [args],
      },
      policies: { overlap: OVERLAP[input.overlap], catchupWindow: '1 minute' },
      state: { paused: input.paused, note: input.paused ? 'created paused' : 'created' },
      memo: { service: input.service, environment: input.environment, kind: input.kind, every: input.every ?? null, cron: input.cron ?? null },
    });
    return this.describe(scheduleId);
  }

  async describe(scheduleId: string): Promise<DrillScheduleSummary> {
    try {
      const d = await this.client.schedule.getHandle(scheduleId).describe();
      const memo = (d.memo ?? {}) as Record<string, string | null>;
      return {
        scheduleId,
        service: memo.service ?? '',
        environment: memo.environment ?? '',
        kind: memo.kind === 'revert' ? 'revert' : 'canary-fault',
        paused: d.state.paused,
        note: d.state.note ?? null,
        every: memo.every ?? null,
        cron: memo.cron ?? null,
        nextRuns: d.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()),
        recentRuns: d.info.recentActions.slice(-5).map((a) => ({
          workflowId: a.action.type === 'startWorkflow' ? a.action.workflow.workflowId : '',
          at: a.takenAt.toISOString(),
        })),
      };
    } catch (error) {
      if (error instanceof ScheduleNotFoundError) throw new DrillNotFoundError(scheduleId);
      throw error;
    }
  }

  async list(): Promise<DrillScheduleSummary[]> {
    const found: DrillScheduleSummary[] = [];
    for await (const s of this.client.schedule.list()) {
      if (s.scheduleId.startsWith('drill/')) found.push(await this.describe(s.scheduleId));
    }
    return found;
  }

  async pause(scheduleId: string, note: string): Promise<DrillScheduleSummary> {
    await this.handle(scheduleId, (h) => h.pause(note));
    return this.describe(scheduleId);
  }

  async resume(scheduleId: string, note: string): Promise<DrillScheduleSummary> {
    await this.handle(scheduleId, (h) => h.unpause(note));
    return this.describe(scheduleId);
  }

  /** Runs a drill now, under the schedule's overlap policy. */
  async trigger(scheduleId: string): Promise<DrillScheduleSummary> {
    await this.handle(scheduleId, (h) => h.trigger());
    return this.describe(scheduleId);
  }

  async delete(scheduleId: string): Promise<void> {
    await this.handle(scheduleId, (h) => h.delete());
  }

  /** Finished drills, newest first, read back from their memo in visibility. */
  async results(filter: { service?: string; limit?: number } = {}): Promise<Array<DrillResult & { kind: DrillKind }>> {
    const results: Array<DrillResult & { kind: DrillKind }> = [];
    for await (const info of this.client.workflow.list({ query: `WorkflowType = 'rollbackDrillWorkflow' AND ExecutionStatus = 'Completed'` })) {
      const result = info.memo?.drill as DrillResult | undefined;
      if (!result || (filter.service && result.service !== filter.service)) continue;
      results.push({ ...result, kind: result.kind ?? 'canary-fault' });
      if (results.length >= (filter.limit ?? 50)) break;
    }
    return results.sort((a, b) => b.finishedAt.localeCompare(a.finishedAt));
  }

  private async handle(scheduleId: string, act: (h: ReturnType<Client['schedule']['getHandle']>) => Promise<unknown>): Promise<void> {
    try {
      await act(this.client.schedule.getHandle(scheduleId));
    } catch (error) {
      if (error instanceof ScheduleNotFoundError) throw new DrillNotFoundError(scheduleId);
      throw error;
    }
  }
}
