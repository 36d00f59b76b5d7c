// Engine efficiency: releases per second through all phases (simulated target, zero bake) against a
// bare workflow running the same number of no-op activities, on the same server and worker, side by side.
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { ProviderRegistry } from '../src/providers';
import { SimulatedFleet } from '../src/providers/simulated/fleet';
import { ReleaseClient } from '../src/temporal/releases';
import { laneWorkflowId, TASK_QUEUE, releaseWorkflowId } from '../workflows/definitions';
import { releaseWorkflow } from '../workflows/release';
import { fastSpec } from '../test/helpers/specs';
import { sha } from '../test/helpers/temporal';
import { DeploymentMetrics } from '../src/observability/deployment-metrics';
import { releaseSinks } from '../workers/worker';
import { benchActivities } from './activities';
import type { DevServer } from '../src/temporal/dev-server';
import { round } from './stats';

export interface EngineResult {
  activitiesPerRelease: number;
  batch: number;
  rounds: number;
  bareWorkflowsPerSecond: number;
  releasesViaLanePerSecond: number;
  releasesDirectPerSecond: number;
  ratioViaLane: number;
  ratioDirect: number;
  /** Workflow tasks completed per workflow: what each path costs the server and worker beyond its activities. */
  workflowTasks: { bare: number; release: number; lanePerRelease: number };
}

/** Activities a workflow ran, local ones (a marker each) included: the bare floor runs as many, all as activity tasks. */
async function countActivities(client: Client, workflowId: string): Promise<number> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes || e.markerRecordedEventAttributes?.markerName === 'core_local_activity').length;
}

async function countWorkflowTasks(client: Client, workflowId: string): Promise<number> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).filter((e) => e.workflowTaskCompletedEventAttributes).length;
}

export async function benchEngine(server: Pick<DevServer, 'address'>, options: { batch?: number; rounds?: number } = {}): Promise<EngineResult> {
  const batch = options.batch ?? 20;
  const rounds = options.rounds ?? 3;
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const releases = new ReleaseClient(client);
  const nativeConnection = await NativeConnection.connect({ address: server.address });
  const worker = await Worker.create({
    connection: nativeConnection,
    taskQueue: TASK_QUEUE,
    workflowsPath: require.resolve('./workflows'),
    activities: { ...createActivities({ providers: new ProviderRegistry({ fleet: new SimulatedFleet() }) }), ...benchActivities },
    // As in production: the release's events feed the deployment metrics.
    sinks: releaseSinks(new DeploymentMetrics()),
  });
  const running = worker.run();
  try {
    const run = randomUUID().slice(0, 8);
    let n = 0;
    // The same `batch` services every round, a new version each time: lanes are long-lived, as in use.
    let firstLane = '';
    const spec = () => {
      n += 1;
      const s = fastSpec(`bench-${run}-${n % batch}`, sha(`${run}-${n}`));
      if (n === 1) firstLane = laneWorkflowId(s.service, s.environment);
      return s;
    };

    // One warm-up round creates the lanes and tells how many activities a release runs: the bare workflow runs as many.
    const warm = await Promise.all(Array.from({ length: batch }, () => releases.submit(spec())));
    await Promise.all(warm.map((w) => releases.result(w.releaseId)));
    const activitiesPerRelease = await countActivities(client, warm[0]!.releaseId);

    let lastBare = '';
    const bare = async () => {
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: batch }, () => {
          lastBare = `bare-${randomUUID()}`;
          return client.workflow.execute('bareWorkflow', { taskQueue: TASK_QUEUE, workflowId: lastBare, args: [activitiesPerRelease] });
        }),
      );
      return performance.now() - t0;
    };
    const viaLane = async () => {
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: batch }, async () => {
          const { releaseId } = await releases.submit(spec());
          await releases.result(releaseId);
        }),
      );
      return performance.now() - t0;
    };
    const direct = async () => {
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: batch }, (_, i) => {
          const s = fastSpec(`bench-direct-${run}-${i}`, sha(`${run}-direct-${n++}`));
          const releaseId = releaseWorkflowId(s.service, s.environment, s.version);
          return client.workflow.execute(releaseWorkflow, { taskQueue: TASK_QUEUE, workflowId: releaseId, args: [{ releaseId, spec: s }] });
        }),
      );
      return performance.now() - t0;
    };

    await bare(); // warm the bare path too
    const totals = { bare: 0, viaLane: 0, direct: 0 };
    for (let r = 0; r < rounds; r++) {
      // Interleaved, so a noisy neighbour hurts all three alike.
      totals.bare += await bare();
      totals.viaLane += await viaLane();
      totals.direct += await direct();
    }
    // The lane of the first service has handled the warm-up release and one per round.
    const workflowTasks = {
      bare: await countWorkflowTasks(client, lastBare),
      release: await countWorkflowTasks(client, warm[0]!.releaseId),
      lanePerRelease: round((await countWorkflowTasks(client, firstLane)) / (rounds + 1), 2),
    };
    const perSecond = (ms: number) => (batch * rounds * 1000) / ms;
    const bareRate = perSecond(totals.bare);
    return {
      activitiesPerRelease,
      batch,
      rounds,
      bareWorkflowsPerSecond: round(bareRate),
      releasesViaLanePerSecond: round(perSecond(totals.viaLane)),
      releasesDirectPerSecond: round(perSecond(totals.direct)),
      ratioViaLane: round(perSecond(totals.viaLane) / bareRate, 3),
      ratioDirect: round(perSecond(totals.direct) / bareRate, 3),
      workflowTasks,
    };
  } finally {
    worker.shutdown();
    await running;
    await nativeConnection.close();
    await connection.close();
  }
}
