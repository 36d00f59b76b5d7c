import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../../workflows/definitions';
import { canConnect, freePort } from '../net';

export interface DevServerOptions {
  cliPath: string;
  /** SQLite file; releases survive a restart of the server on the same file. Unset: in memory. */
  dbFile?: string;
  host?: string;
  port?: number;
  /** Port of the Temporal UI; 0 turns it off. */
  uiPort?: number;
  namespace?: string;
  /** How long to wait for the server to answer; generous, since a shared machine can be slow. */
  startTimeoutMs?: number;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Where the server's output goes; default: discarded. */
  onOutput?: (chunk: string) => void;
  /**
   * Extra dynamic config (`--dynamic-config-value key=value`), e.g. a small
   * limit.historyCount.suggestContinueAsNew so tests reach continue-as-new in minutes. Values are JSON.
   */
  dynamicConfig?: Record<string, string | number | boolean>;
}

export interface DevServer {
  address: string;
  uiUrl: string | null;
  namespace: string;
  process: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `temporal server start-dev` ourselves rather than through the SDK, which allows it only
 * 5 s: on a loaded two-core machine the first start with a fresh SQLite file can take longer.
 * Rampart's search attributes are registered at start, so releases are listable at once.
 */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (await freePort(host));
  const uiPort = options.uiPort ?? (await freePort(host));
  const namespace = options.namespace ?? 'default';
  const args = ['server', 'start-dev', '--ip', host, '--port', String(port), '--namespace', namespace, '--log-level', options.logLevel ?? 'warn'];
  if (uiPort > 0) args.push('--ui-port', String(uiPort));
  else args.push('--headless');
  if (options.dbFile) {
    mkdirSync(dirname(options.dbFile), { recursive: true });
    args.push('--db-filename', options.dbFile);
  }
  for (const key of SEARCH_ATTRIBUTES) args.push('--search-attribute', `${key.name}=Keyword`);
  // Let visibility see newly registered search attributes without waiting for its cache.
  args.push('--dynamic-config-value', 'system.forceSearchAttributesCacheRefreshOnRead=true');
  for (const [key, value] of Object.entries(options.dynamicConfig ?? {})) args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);

  // Its own process group: a Ctrl-C in the terminal reaches Rampart, which drains the worker first
  // and then stops the server; an exit of ours for any other reason still takes the server along.
  const child = spawn(options.cliPath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let output = '';
  const collect = (chunk: Buffer) => {
    const text = chunk.toString();
    output = (output + text).slice(-4_000);
    options.onOutput?.(text);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));

  const address = `${host}:${port}`;
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  let ready = false;
  while (Date.now() < deadline && child.exitCode === null) {
    if (await canConnect({ host, port })) {
      try {
        const connection = await Connection.connect({ address, connectTimeout: 2_000 });
        await connection.workflowService.getSystemInfo({});
        await connection.close();
        ready = true;
        break;
      } catch {
        // the port opens before the frontend serves; try again
      }
    }
    await sleep(200);
  }
  if (!ready) {
    child.kill('SIGKILL');
    throw new Error(`the Temporal dev server did not become ready on ${address}: ${child.exitCode !== null ? `it exited with ${child.exitCode}` : 'timed out'}\n${output}`);
  }

  return {
    address,
    uiUrl: uiPort > 0 ? `http://${host}:${uiPort}` : null,
    namespace,
    process: child,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      process.removeListener('exit', killOnExit);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
