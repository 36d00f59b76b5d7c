import { spawn, type ChildProcess } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { projectPath } from '../../src/config';
import { PROJECT_ROOT } from '../../src/paths';
import { resolveTemporalCli } from '../../src/temporal/cli';
import { startDevServer, type DevServer } from '../../src/temporal/dev-server';
import { ReleaseClient } from '../../src/temporal/releases';
import { createReleaseWorker, type ReleaseWorker, type ReleaseWorkerOptions } from '../../workers/worker';

/** A real Temporal dev server for one test file (in memory unless a SQLite file is given), no UI. */
export async function startTestServer(options: { dbFile?: string; port?: number; dynamicConfig?: Record<string, string | number | boolean> } = {}): Promise<DevServer> {
  const cli = await resolveTemporalCli({ explicitPath: process.env.TEMPORAL_CLI_PATH, toolsDir: projectPath('.tools'), install: true });
  return startDevServer({ cliPath: cli.path, uiPort: 0, ...options });
}

export interface TestRig {
  server: DevServer;
  connection: Connection;
  client: Client;
  releases: ReleaseClient;
  worker: ReleaseWorker;
  workerRun: Promise<void>;
  close(): Promise<void>;
}

let quiet = false;
/** The SDK logs every worker state change at INFO; tests want warnings only. Once per process. */
export function quietSdkLogs(): void {
  if (quiet) return;
  quiet = true;
  Runtime.install({ logger: new DefaultLogger('WARN') });
}

/** Server, client and an in-process worker: what most workflow tests need. */
export async function startRig(workerOptions: Partial<ReleaseWorkerOptions> = {}, serverOptions: Parameters<typeof startTestServer>[0] = {}): Promise<TestRig> {
  quietSdkLogs();
  const server = await startTestServer(serverOptions);
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const worker = await createReleaseWorker({ address: server.address, ...workerOptions });
  const workerRun = worker.run();
  return {
    server,
    connection,
    client,
    releases: new ReleaseClient(client),
    worker,
    workerRun,
    async close() {
      await worker.shutdown();
      await connection.close();
      await server.stop();
    },
  };
}

let counter = 0;
/** A service name no other test uses, so each test has its own lane. */
export function uniqueService(prefix = 'svc'): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}

/** A git-SHA-shaped version, distinct per call. */
export function sha(seed: number | string): string {
  const text = String(seed);
  let hex = '';
  for (let i = 0; hex.length < 40; i++) hex += ((text.charCodeAt(i % text.length) * 31 + i * 7) % 16).toString(16);
  return hex;
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** A worker in its own process, as in production, so a test can kill it for real; its output is drained. */
export function spawnWorkerProcess(address: string, dataDir: string): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
    cwd: PROJECT_ROOT,
    env: workerProcessEnv(address, dataDir),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.resume();
  child.stderr!.resume();
  return child;
}

/** Environment of a stand-alone worker process in tests: no fixed metrics ports, so several can run at once. */
export function workerProcessEnv(address: string, dataDir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    TEMPORAL_ADDRESS: address,
    RAMPART_DATA_DIR: dataDir,
    RAMPART_SDK_METRICS_ADDRESS: 'off',
    RAMPART_WORKER_METRICS_PORT: '0',
    RAMPART_LOG_LEVEL: 'warn',
  };
}
