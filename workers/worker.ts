import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { ProviderRegistry } from '../src/providers';
import { SimulatedFleet } from '../src/providers/simulated/fleet';
import { TASK_QUEUE } from '../workflows/definitions';

export interface ReleaseWorkerOptions {
  address: string;
  namespace?: string;
  taskQueue?: string;
  /** Where the simulated fleet keeps its state, so a replacement worker finds it; unset keeps it in memory. */
  simulatedStateDir?: string;
  /** The prebuilt bundle (production); unset bundles the workflow sources at start (development, tests). */
  workflowBundlePath?: string;
  /** Test and benchmark knobs passed through to the SDK. */
  overrides?: Partial<WorkerOptions>;
}

export interface ReleaseWorker {
  worker: Worker;
  providers: ProviderRegistry;
  fleet: SimulatedFleet;
  connection: NativeConnection;
  /** Runs until shutdown() is called; resolves when the worker has drained. */
  run(): Promise<void>;
  shutdown(): Promise<void>;
}

export async function createReleaseWorker(options: ReleaseWorkerOptions): Promise<ReleaseWorker> {
  const connection = await NativeConnection.connect({ address: options.address });
  const fleet = new SimulatedFleet(options.simulatedStateDir ? { stateDir: options.simulatedStateDir } : {});
  const providers = new ProviderRegistry({ fleet });
  const bundlePath = options.workflowBundlePath;
  const worker = await Worker.create({
    connection,
    namespace: options.namespace ?? 'default',
    taskQueue: options.taskQueue ?? TASK_QUEUE,
    ...(bundlePath ? { workflowBundle: { codePath: bundlePath } } : { workflowsPath: require.resolve('../workflows') }),
    activities: createActivities({ providers }),
    ...options.overrides,
  });
  let running: Promise<void> | undefined;
  return {
    worker,
    providers,
    fleet,
    connection,
    run() {
      running ??= worker.run().finally(async () => {
        await providers.close();
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
