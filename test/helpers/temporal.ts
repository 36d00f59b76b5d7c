import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
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

const outputs = new WeakMap<ChildProcess, string>();

/** A worker in its own process, as in production, so a test can kill it for real; the tail of its output is kept. */
export function spawnWorkerProcess(address: string, dataDir: string): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
    cwd: PROJECT_ROOT,
    env: workerProcessEnv(address, dataDir),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  outputs.set(child, '');
  const keep = (chunk: Buffer) => outputs.set(child, `${outputs.get(child)}${chunk.toString()}`.slice(-4_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return child;
}

/** The last few kilobytes a worker process printed, to explain one that never polls. */
export function workerOutput(child: ChildProcess): string {
  return outputs.get(child) ?? '';
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

/** A dev server and worker processes that a test may kill for real; the fleet's state lives in `dataDir`. */
export interface WorkerProcessRig {
  server: DevServer;
  connection: Connection;
  client: Client;
  releases: ReleaseClient;
  dataDir: string;
  /** Every worker process started so far, killed (if still running) once the file is done. */
  workers: ChildProcess[];
  startWorker(): ChildProcess;
}

/**
 * Registers the file's before/after hooks: a dev server and a client before the tests, and after them
 * every worker process SIGKILLed, the server stopped and the data folder removed, whatever failed.
 * The fields are filled in by the before hook, so tests read them, never the file's top level.
 */
export function workerProcessRig(prefix: string): WorkerProcessRig {
  const rig = { workers: [] as ChildProcess[] } as unknown as WorkerProcessRig;
  rig.startWorker = () => {
    const child = spawnWorkerProcess(rig.server.address, rig.dataDir);
    rig.workers.push(child);
    return child;
  };
  before(async () => {
    rig.dataDir = mkdtempSync(join(tmpdir(), `rampart-${prefix}-`));
    rig.server = await startTestServer();
    rig.connection = await Connection.connect({ address: rig.server.address });
    rig.client = new Client({ connection: rig.connection });
    rig.releases = new ReleaseClient(rig.client);
  });
  after(async () => {
    for (const worker of rig.workers) if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
    await rig.connection?.close();
    await rig.server?.stop();
    if (rig.dataDir) rmSync(rig.dataDir, { recursive: true, force: true });
  });
  return rig;
}
