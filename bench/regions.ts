// Fan-out overhead: a six-region rollout against the same six regional releases handed to their
// lanes one after another by a client, on the same server and worker. What is compared is the work
// the Temporal server does, read back from the histories: every event of the rollout, of the six
// releases and of what the six lanes added, and among them the workflow tasks and activity tasks
// (the units of work the server hands to workers). Wall time is reported too, but it mostly measures
// the wave order (a rollout runs waves one after another) and is not the figure judged.
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { validateReleaseSpec } from '../src/spec/parse';
import { rolloutPlan, type ReleaseSpec } from '../src/spec/release-spec';
import type { DevServer } from '../src/temporal/dev-server';
import { ReleaseClient } from '../src/temporal/releases';
import { fastSpec } from '../test/helpers/specs';
import { sha } from '../test/helpers/temporal';
import { laneWorkflowId } from '../workflows/definitions';
import { createReleaseWorker } from '../workers/worker';
import { round } from './stats';

export interface ServerWork {
  events: number;
  workflowTasks: number;
  activityTasks: number;
}

export interface RegionsResult {
  regions: number;
  waves: string[][];
  rounds: number;
  /** Per rollout (or per six sequential releases), averaged over the rounds. */
  sequential: ServerWork & { seconds: number };
  rollout: ServerWork & { seconds: number };
  /** Extra server work of the rollout, in percent of the sequential releases'. */
  overheadEventsPercent: number;
  overheadTasksPercent: number;
}

const REGIONS = ['r1', 'r2', 'r3', 'r4', 'r5', 'r6'];
const WAVES = [['r1'], ['r2', 'r3'], ['r4', 'r5', 'r6']];

async function work(client: Client, workflowId: string, firstEvent = 0): Promise<ServerWork & { length: number }> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = (history.events ?? []).slice(firstEvent);
  return {
    length: firstEvent + events.length,
    events: events.length,
    workflowTasks: events.filter((e) => e.workflowTaskCompletedEventAttributes).length,
    activityTasks: events.filter((e) => e.activityTaskScheduledEventAttributes).length,
  };
}

const add = (a: ServerWork, b: ServerWork): ServerWork => ({
  events: a.events + b.events,
  workflowTasks: a.workflowTasks + b.workflowTasks,
  activityTasks: a.activityTasks + b.activityTasks,
});
const ZERO: ServerWork = { events: 0, workflowTasks: 0, activityTasks: 0 };

/** The same six regional specs either way: one spec with six regions (simulated, one fleet each). */
function regioned(service: string, version: string): ReleaseSpec {
  return validateReleaseSpec({ ...fastSpec(service, version), regions: Object.fromEntries(REGIONS.map((r) => [r, {}])), waves: WAVES });
}

export async function benchRegions(server: DevServer, options: { rounds?: number } = {}): Promise<RegionsResult> {
  const rounds = options.rounds ?? 3;
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const releases = new ReleaseClient(client);
  const worker = await createReleaseWorker({ address: server.address });
  const running = worker.run();
  const run = randomUUID().slice(0, 8);
  // Lanes are long-lived: a warm-up release in each creates them, and each measurement counts only the events it adds.
  const laneLengths = new Map<string, number>();
  const laneWork = async (service: string): Promise<ServerWork> => {
    let total = ZERO;
    for (const region of REGIONS) {
      const id = laneWorkflowId(service, 'production', region);
      const measured = await work(client, id, laneLengths.get(id) ?? 0);
      laneLengths.set(id, measured.length);
      total = add(total, measured);
    }
    return total;
  };

  try {
    const sequentialService = `bench-seq-${run}`;
    const rolloutService = `bench-roll-${run}`;
    let n = 0;
    const version = () => sha(`${run}-${(n += 1)}`);

    const sequential = async (): Promise<ServerWork & { seconds: number }> => {
      const plan = rolloutPlan(regioned(sequentialService, version()))!;
      const t0 = performance.now();
      let total = ZERO;
      for (const region of REGIONS) {
        const { releaseId } = await releases.submit(plan.specs[region]!);
        await releases.result(releaseId);
        total = add(total, await work(client, releaseId));
      }
      const seconds = (performance.now() - t0) / 1_000;
      return { ...add(total, await laneWork(sequentialService)), seconds };
    };
    const rollout = async (): Promise<ServerWork & { seconds: number }> => {
      const t0 = performance.now();
      const { rolloutId } = await releases.startRollout(regioned(rolloutService, version()));
      const status = await releases.rolloutResult(rolloutId);
      if (status.state !== 'promoted') throw new Error(`bench rollout ended ${status.state}: ${status.reason}`);
      const seconds = (performance.now() - t0) / 1_000;
      let total: ServerWork = await work(client, rolloutId);
      for (const region of status.regions) total = add(total, await work(client, region.releaseId!));
      return { ...add(total, await laneWork(rolloutService)), seconds };
    };

    // Warm-up: creates the twelve lanes (and warms the worker's caches); not counted.
    await sequential();
    await rollout();
    const totals = { sequential: { ...ZERO, seconds: 0 }, rollout: { ...ZERO, seconds: 0 } };
    for (let r = 0; r < rounds; r++) {
      // Interleaved, so a noisy neighbour hurts both alike.
      const s = await sequential();
      const o = await rollout();
      totals.sequential = { ...add(totals.sequential, s), seconds: totals.sequential.seconds + s.seconds };
      totals.rollout = { ...add(totals.rollout, o), seconds: totals.rollout.seconds + o.seconds };
    }
    const mean = (w: ServerWork & { seconds: number }) => ({
      events: round(w.events / rounds, 1),
      workflowTasks: round(w.workflowTasks / rounds, 1),
      activityTasks: round(w.activityTasks / rounds, 1),
      seconds: round(w.seconds / rounds, 2),
    });
    const tasks = (w: ServerWork) => w.workflowTasks + w.activityTasks;
    return {
      regions: REGIONS.length,
      waves: WAVES,
      rounds,
      sequential: mean(totals.sequential),
      rollout: mean(totals.rollout),
      overheadEventsPercent: round((100 * (totals.rollout.events - totals.sequential.events)) / totals.sequential.events, 1),
      overheadTasksPercent: round((100 * (tasks(totals.rollout) - tasks(totals.sequential))) / tasks(totals.sequential), 1),
    };
  } finally {
    await worker.shutdown();
    await running;
    await connection.close();
  }
}
