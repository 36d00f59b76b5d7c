// A worker process on its own: polls the release task queue of the Temporal at TEMPORAL_ADDRESS.
// Run many of these to scale out; Temporal spreads the releases over them.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, projectPath } from '../src/config';
import { DeploymentMetrics } from '../src/observability/deployment-metrics';
import { installRuntime, serveMetrics } from '../src/observability/runtime';
import { WORKFLOW_BUNDLE_PATH } from '../src/paths';
import { OutboundAllowlist } from '../src/providers/outbound';
import { temporalConnectionOptions } from '../src/temporal/connect';
import { createReleaseWorker } from './worker';

async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.TEMPORAL_ADDRESS) throw new Error('TEMPORAL_ADDRESS is not set: a stand-alone worker needs a Temporal server (npm start runs one embedded)');
  // Compiled (production) workers load the bundle built by `npm run build`; from sources they bundle at start.
  const compiled = __filename.endsWith('.js');
  const logger = installRuntime(config);
  const metrics = new DeploymentMetrics();
  const metricsServer = config.RAMPART_WORKER_METRICS_PORT > 0 ? await serveMetrics(metrics.registry, config.RAMPART_WORKER_METRICS_PORT) : null;
  if (compiled && !existsSync(WORKFLOW_BUNDLE_PATH)) throw new Error(`no workflow bundle at ${WORKFLOW_BUNDLE_PATH}: run npm run build`);
  const release = await createReleaseWorker({
    ...temporalConnectionOptions(config)!,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.RAMPART_TASK_QUEUE,
    simulatedStateDir: join(projectPath(config.RAMPART_DATA_DIR), 'simulated'),
    outbound: OutboundAllowlist.parse(config.RAMPART_OUTBOUND_HOSTS),
    metrics,
    logger,
    ...(compiled ? { workflowBundlePath: WORKFLOW_BUNDLE_PATH } : {}),
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void release.shutdown());
  logger.info(
    { taskQueue: config.RAMPART_TASK_QUEUE, temporal: config.TEMPORAL_ADDRESS, sdkMetrics: config.RAMPART_SDK_METRICS_ADDRESS, metricsPort: config.RAMPART_WORKER_METRICS_PORT },
    'worker polling',
  );
  await release.run();
  metricsServer?.close();
}

main().catch((error) => {
  console.error((error as Error).message ?? error);
  process.exit(1);
});
