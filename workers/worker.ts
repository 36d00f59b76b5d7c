import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, type InjectedSinks, type TLSConfig, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { createDrillActivities } from '../activities/drill';
import { createLaneActivities } from '../activities/lane';
import { createRolloutActivities } from '../activities/rollout';
import { ReleaseClient } from '../src/temporal/releases';
import type { RampartSinks } from '../src/engine/events';
import { DeploymentMetrics } from '../src/observability/deployment-metrics';
import { logReleaseEvent, type Logger } from '../src/observability/logger';
import { ProviderRegistry } from '../src/providers';
import type { OutboundAllowlist } from '../src/providers/outbound';
import { SimulatedFleet } from '../src/providers/simulated/fleet';
import { TASK_QUEUE } from '../workflows/definitions';

export interface ReleaseWorkerOptions {
  address: string;
  /** TLS and API key of a secured Temporal (temporalConnectionOptions); unset: plaintext. */
  tls?: TLSConfig;
  apiKey?: string;
  namespace?: string;
  taskQueue?: string;
  /** Where the simulated fleet keeps its state, so a replacement worker finds it; unset keeps it in memory. */
  simulatedStateDir?: string;
  /** The prebuilt bundle (production); unset bundles the workflow sources at start (development, tests). */
  workflowBundlePath?: string;
  /** Where release events are counted; default: a registry of the worker's own. */
  metrics?: DeploymentMetrics;
  /** Where release events are logged, one line each; default: not logged. */
  logger?: Logger;
  /** Hosts hooks and notifications may call (RAMPART_OUTBOUND_HOSTS); default none. */
  outbound?: OutboundAllowlist;
  /** Test and benchmark knobs passed through to the SDK. */
  overrides?: Partial<WorkerOptions>;
}

export interface ReleaseWorker {
  worker: Worker;
  metrics: DeploymentMetrics;
  providers: ProviderRegistry;
  fleet: SimulatedFleet;
  connection: NativeConnection;
  /** Runs until shutdown() is called; resolves when the worker has drained. */
  run(): Promise<void>;
  shutdown(): Promise<void>;
}

/** Where the workflows' events go. Called after each activation, never during replay: a restarted worker neither counts nor logs twice. */
export function releaseSinks(metrics: DeploymentMetrics, logger?: Logger): InjectedSinks<RampartSinks> {
  return {
    rampart: {
      event: {
        fn: (info, event, context) => {
          metrics.record(event);
          if (logger) logReleaseEvent(logger, info.workflowId, event, context);
        },
        callDuringReplay: false,
      },
    },
  };
}

/** The activity sets merged; a name in two sets would silently shadow one of them, so it stops the worker instead. */
export function distinctActivities(...sets: Record<string, (...args: never[]) => unknown>[]): Record<string, (...args: never[]) => unknown> {
  const merged: Record<string, (...args: never[]) => unknown> = {};
  for (const set of sets) {
    for (const [name, activity] of Object.entries(set)) {
      if (name in merged) throw new Error(`activity ${name} is defined twice`);
      merged[name] = activity;
    }
  }
  return merged;
}

export async function createReleaseWorker(options: ReleaseWorkerOptions): Promise<ReleaseWorker> {
  const secured = { address: options.address, ...(options.tls ? { tls: options.tls } : {}), ...(options.apiKey ? { apiKey: options.apiKey } : {}) };
  const connection = await NativeConnection.connect(secured);
  // Drills hand their release to the lane like any client would; this is their connection to do it.
  const clientConnection = await Connection.connect(secured);
  const releases = new ReleaseClient(new Client({ connection: clientConnection, namespace: options.namespace ?? 'default' }), options.taskQueue);
  const fleet = new SimulatedFleet(options.simulatedStateDir ? { stateDir: options.simulatedStateDir } : {});
  const providers = new ProviderRegistry({ fleet });
  const bundlePath = options.workflowBundlePath;
  const metrics = options.metrics ?? new DeploymentMetrics();
  const sinks = releaseSinks(metrics, options.logger);
  const worker = await Worker.create({
    connection,
    namespace: options.namespace ?? 'default',
    taskQueue: options.taskQueue ?? TASK_QUEUE,
    ...(bundlePath ? { workflowBundle: { codePath: bundlePath } } : { workflowsPath: require.resolve('../workflows') }),
    activities: distinctActivities(
      createActivities({ providers, ...(options.outbound ? { outbound: options.outbound } : {}) }),
      createDrillActivities({ releases }),
      createLaneActivities({ releases }),
      createRolloutActivities({ releases }),
    ),
    sinks,
    // On shutdown, running activities get this long to finish (an undo, a traffic move) before they
    // are cancelled; the load test observes the cancellation and stops its load at once.
    shutdownGraceTime: '10 seconds',
    // An activity that ignores its cancellation must not hold the worker's shutdown forever.
    shutdownForceTime: '30 seconds',
    ...options.overrides,
  });
  let running: Promise<void> | undefined;
  return {
    worker,
    metrics,
    providers,
    fleet,
    connection,
    run() {
      running ??= worker.run().finally(async () => {
        await providers.close();
        await clientConnection.close();
        await connection.close();
      });
      return running;
    },
    async shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    },
  };
}
