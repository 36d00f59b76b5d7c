// The embedded default: one command runs Rampart on one machine — the Temporal dev server on a
// SQLite file (unless TEMPORAL_ADDRESS points elsewhere), a release worker, and the API.
import { join } from 'node:path';
import { createReleaseWorker } from '../workers/worker';
import { ApiMetrics } from './api/metrics';
import { startApi } from './api/server';
import { loadConfig, projectPath } from './config';
import { DeploymentMetrics } from './observability/deployment-metrics';
import { installRuntime } from './observability/runtime';
import { OutboundAllowlist } from './providers/outbound';
import { connectTemporal } from './temporal/connect';

async function main(): Promise<void> {
  const config = loadConfig();
  const say = (line: string) => console.log(`[rampart] ${line}`);
  // Before any worker exists: SDK log lines go to pino, SDK runtime metrics to their own port.
  const logger = installRuntime(config);
  const temporal = await connectTemporal(config, say);
  // One process: the worker's deployment metrics are served on the API's /metrics page.
  const deploymentMetrics = new DeploymentMetrics();
  const worker = await createReleaseWorker({
    address: temporal.address,
    ...temporal.connectionOptions,
    namespace: temporal.namespace,
    taskQueue: config.RAMPART_TASK_QUEUE,
    simulatedStateDir: join(projectPath(config.RAMPART_DATA_DIR), 'simulated'),
    outbound: OutboundAllowlist.parse(config.RAMPART_OUTBOUND_HOSTS),
    metrics: deploymentMetrics,
    logger,
  });
  const running = worker.run();

  say(`Temporal   ${temporal.address} (namespace ${temporal.namespace})${temporal.devServer ? ', embedded dev server' : ''}`);
  if (temporal.uiUrl) say(`Temporal UI ${temporal.uiUrl}`);
  say(`worker     polling task queue ${config.RAMPART_TASK_QUEUE}`);
  if (config.RAMPART_SDK_METRICS_ADDRESS !== 'off') say(`SDK metrics http://${config.RAMPART_SDK_METRICS_ADDRESS}/metrics (Temporal SDK runtime)`);
  const api = await startApi({
    config,
    client: temporal.client,
    localTokenDir: projectPath(config.RAMPART_DATA_DIR),
    metrics: new ApiMetrics(undefined, { include: [deploymentMetrics.registry] }),
  });
  say(`API        ${api.url} (docs ${api.url}/docs)`);
  if (api.localTokenFile) say(`API token  generated in ${api.localTokenFile}: export RAMPART_TOKEN=$(grep -v '^#' ${api.localTokenFile} | cut -d: -f3)`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: shutting down`);
    await api.close();
    await worker.shutdown();
    await temporal.close();
    say('stopped');
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  await running;
}

main().catch((error) => {
  console.error(`[rampart] ${(error as Error).message ?? error}`);
  process.exit(1);
});
