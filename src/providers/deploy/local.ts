import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { canConnect } from '../../net';
import { PROJECT_ROOT } from '../../paths';
import type { Deployer, Slot, SlotState } from './deployer';

export interface LocalDeployerOptions {
  /** Command that starts one instance; its environment is instanceEnvironment(): env, RAMPART_VERSION, PORT and a short allowlist. */
  command: string[];
  /** Path answering 2xx once an instance is ready; default /healthz. */
  healthPath?: string;
  stablePort: number;
  canaryPort: number;
  /** Environment the instances get on top of INHERITED_ENV. */
  env?: Record<string, string>;
  /** Where instance records and logs live; default .run/deploy in the repository. */
  stateDir?: string;
  /** Working directory of the instances; default the repository root. */
  cwd?: string;
  /** How long an instance may take to answer its health path; default 20 s. */
  healthTimeoutMs?: number;
  /** How long an instance may take to exit after SIGTERM before it is killed; default 5 s. */
  stopTimeoutMs?: number;
}

/** What the deployer knows about an instance it started; written before the instance is healthy, so a retry finds it. */
export interface InstanceRecord {
  service: string;
  slot: Slot;
  version: string;
  pid: number;
  port: number;
  /** Kernel start time of the process (/proc/<pid>/stat field 22), to tell our process from a reused pid. */
  processStart: string | null;
  startedAt: string;
}

const SERVICE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * What an instance inherits from the worker, and nothing more. PATH finds the runtime the command
 * names; HOME, LANG, LC_ALL and TZ keep tools and formatting behaving as on any login; TMPDIR keeps
 * temporary files where the machine wants them. NODE_OPTIONS is left out on purpose: the worker's
 * own flags (an --import of its loader, an --inspect port, a heap size) are not the service's, and
 * a service that needs some declares them in its target's env.
 */
export const INHERITED_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'] as const;

/**
 * An instance's whole environment: the inherited allowlist, then what its target declares, then
 * RAMPART_VERSION and PORT, which no declaration can change. The worker's own variables (API
 * tokens, webhook secrets, Temporal addresses) never reach a deployed process.
 */
export function instanceEnvironment(declared: Readonly<Record<string, string>>, version: string, port: number, parent: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const inherited: Record<string, string> = {};
  for (const name of INHERITED_ENV) {
    const value = parent[name];
    if (value !== undefined) inherited[name] = value;
  }
  return { ...inherited, ...declared, RAMPART_VERSION: version, PORT: String(port) };
}

/**
 * Runs versions as child processes on this machine, one per slot, each in its own process group (detached)
 * so it outlives the worker that started it and can be stopped with everything it spawned. State lives in
 * files, not memory: a retried activity or a new worker process finds the instance already running and does
 * not start a second one.
 */
export class LocalDeployer implements Deployer {
  readonly type = 'local';
  private readonly stateDir: string;
  private readonly healthPath: string;
  /** In-process queue per slot; the lock file covers other processes. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(private readonly options: LocalDeployerOptions) {
    if (options.command.length === 0 || !options.command[0]) throw new Error('the local target needs a command that starts one instance');
    for (const port of [options.stablePort, options.canaryPort]) {
      if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new RangeError(`slot port ${port} is not a TCP port`);
    }
    if (options.stablePort === options.canaryPort) throw new Error(`stable and canary slots share port ${options.stablePort}`);
    this.stateDir = path.resolve(options.stateDir ?? path.join(PROJECT_ROOT, '.run', 'deploy'));
    this.healthPath = options.healthPath ?? '/healthz';
  }

  deploy(service: string, slot: Slot, version: string): Promise<void> {
    return this.exclusive(service, slot, async () => {
      const existing = await this.liveInstance(service, slot);
      if (existing?.version === version) {
        // Started by an earlier attempt: wait for it rather than starting another; replace it only if it never gets healthy.
        const healthy = await this.waitHealthy(existing, () => null).then(
          () => true,
          () => false,
        );
        if (healthy) return;
      }
      if (existing) await this.stopInstance(existing);
      await this.startInstance(service, slot, version);
    }).catch((error: unknown) => {
      throw new Error(`deploying ${service} ${version} to the ${slot} slot failed: ${(error as Error).message}`, { cause: error });
    });
  }

  stop(service: string, slot: Slot): Promise<void> {
    return this.exclusive(service, slot, async () => {
      const record = await this.readRecord(service, slot);
      if (record && isRunning(record)) await this.stopInstance(record);
      await rm(this.recordPath(service, slot), { force: true });
    }).catch((error: unknown) => {
      throw new Error(`stopping the ${slot} slot of ${service} failed: ${(error as Error).message}`, { cause: error });
    });
  }

  async slots(service: string): Promise<SlotState> {
    const [stable, canary] = await Promise.all([this.liveInstance(service, 'stable'), this.liveInstance(service, 'canary')]);
    return { stable: stable?.version ?? null, canary: canary?.version ?? null };
  }

  /** The running instance of a slot, or null; for operators and tests. */
  async instance(service: string, slot: Slot): Promise<InstanceRecord | null> {
    return this.liveInstance(service, slot);
  }

  portOf(slot: Slot): number {
    return slot === 'stable' ? this.options.stablePort : this.options.canaryPort;
  }

  private async startInstance(service: string, slot: Slot, version: string): Promise<void> {
    const port = this.portOf(slot);
    if (await canConnect({ host: '127.0.0.1', port }, { timeoutMeans: true })) {
      throw new Error(`port ${port} is taken by a process this deployer did not start (no live record in ${this.recordPath(service, slot)})`);
    }
    const logPath = this.logPath(service, slot);
    const log = openSync(logPath, 'a');
    writeSync(log, `--- ${new Date().toISOString()} starting ${service} ${version} in the ${slot} slot on port ${port}\n`);
    // Errors quote this start's lines only, not an earlier instance's.
    const logOffset = fstatSync(log).size;
    let child;
    try {
      const [executable, ...args] = this.options.command as [string, ...string[]];
      child = spawn(executable, args, {
        cwd: this.options.cwd ?? PROJECT_ROOT,
        env: instanceEnvironment(this.options.env ?? {}, version, port),
        detached: true,
        stdio: ['ignore', log, log],
      });
    } finally {
      closeSync(log);
    }
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    if (child.pid === undefined) throw new Error(`could not start ${this.options.command.join(' ')}: ${(await spawnError).message}`);
    child.unref();

    const record: InstanceRecord = {
      service,
      slot,
      version,
      pid: child.pid,
      port,
      processStart: processStartTime(child.pid),
      startedAt: new Date().toISOString(),
    };
    await this.writeRecord(record);
    let exitCode: number | string | null = null;
    let exited = false;
    child.once('exit', (code, signal) => {
      exited = true;
      exitCode = code ?? signal;
    });
    try {
      await this.waitHealthy(record, () => (exited ? `the instance exited (${exitCode}) before it was healthy` : null));
    } catch (error) {
      await this.stopInstance(record).catch(() => undefined);
      await rm(this.recordPath(service, slot), { force: true });
      throw new Error(`${(error as Error).message}; last lines of ${logPath}:\n${tail(logPath, logOffset)}`, { cause: error });
    }
  }

  private async waitHealthy(record: InstanceRecord, failure: () => string | null): Promise<void> {
    const timeoutMs = this.options.healthTimeoutMs ?? 20_000;
    const deadline = Date.now() + timeoutMs;
    const url = `http://127.0.0.1:${record.port}${this.healthPath}`;
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      const reason = failure();
      if (reason) throw new Error(reason);
      if (!isRunning(record)) throw new Error(`the instance (pid ${record.pid}) is gone`);
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
        await response.arrayBuffer();
        if (response.ok) return;
        last = `HTTP ${response.status}`;
      } catch (error) {
        last = (error as Error).message;
      }
      await sleep(100);
    }
    throw new Error(`${url} did not answer 2xx within ${timeoutMs} ms (last: ${last})`);
  }

  private async stopInstance(record: InstanceRecord): Promise<void> {
    const timeoutMs = this.options.stopTimeoutMs ?? 5_000;
    signalGroup(record.pid, 'SIGTERM');
    const deadline = Date.now() + timeoutMs;
    while (groupAlive(record.pid) && Date.now() < deadline) await sleep(50);
    if (groupAlive(record.pid)) {
      signalGroup(record.pid, 'SIGKILL');
      while (groupAlive(record.pid) && Date.now() < deadline + 2_000) await sleep(50);
      if (groupAlive(record.pid)) throw new Error(`process group ${record.pid} survived SIGKILL`);
    }
    // The next instance of this slot needs the port.
    while (await canConnect({ host: '127.0.0.1', port: record.port }, { timeoutMeans: true })) {
      if (Date.now() > deadline + 5_000) throw new Error(`port ${record.port} is still taken after the instance (pid ${record.pid}) exited`);
      await sleep(50);
    }
  }

  private async liveInstance(service: string, slot: Slot): Promise<InstanceRecord | null> {
    const record = await this.readRecord(service, slot);
    return record && isRunning(record) ? record : null;
  }

  private async readRecord(service: string, slot: Slot): Promise<InstanceRecord | null> {
    let text: string;
    try {
      text = await readFile(this.recordPath(service, slot), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    try {
      return JSON.parse(text) as InstanceRecord;
    } catch (error) {
      throw new Error(`instance record ${this.recordPath(service, slot)} is not JSON; remove it after stopping the instance by hand`, { cause: error });
    }
  }

  private async writeRecord(record: InstanceRecord): Promise<void> {
    const file = this.recordPath(record.service, record.slot);
    // Write then rename: a crash never leaves a half-written record.
    await writeFile(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`);
    await rename(`${file}.tmp`, file);
  }

  private recordPath(service: string, slot: Slot): string {
    return path.join(this.serviceDir(service), `${slot}.json`);
  }

  private logPath(service: string, slot: Slot): string {
    return path.join(this.serviceDir(service), `${slot}.log`);
  }

  private serviceDir(service: string): string {
    if (!SERVICE_NAME.test(service)) throw new Error(`"${service}" is not a service name`);
    return path.join(this.stateDir, service);
  }

  /** One operation per slot at a time: in this process by a queue, across processes by a lock file. */
  private exclusive<T>(service: string, slot: Slot, operation: () => Promise<T>): Promise<T> {
    const key = `${service}/${slot}`;
    const previous = this.queues.get(key) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(async () => {
      await mkdir(this.serviceDir(service), { recursive: true });
      const release = await acquireLock(path.join(this.serviceDir(service), `${slot}.lock`));
      try {
        return await operation();
      } finally {
        await release();
      }
    });
    this.queues.set(key, next);
    void next.finally(() => {
      if (this.queues.get(key) === next) this.queues.delete(key);
    }).catch(() => undefined);
    return next;
  }
}

async function acquireLock(lockPath: string, timeoutMs = 60_000): Promise<() => Promise<void>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(lockPath, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    // A lock whose owner died is stale.
    const owner = Number(await readFile(lockPath, 'utf8').catch(() => ''));
    if (Number.isInteger(owner) && owner > 0 && !pidAlive(owner)) {
      await rm(lockPath, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`${lockPath} is held by process ${owner} for more than ${timeoutMs} ms`);
    await sleep(50);
  }
}

function isRunning(record: InstanceRecord): boolean {
  if (!groupAlive(record.pid)) return false;
  // A pid reused by an unrelated process has another start time.
  const start = processStartTime(record.pid);
  return record.processStart === null || start === null || start === record.processStart;
}

/** Field 22 of /proc/<pid>/stat; null where /proc is missing. */
function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // The signal reaches zombies too: a group whose members all exited but are not yet reaped by their parent
  // (an orphan waits for init) is gone.
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // After the command name: state, ppid, pgrp, …
    const [state, , group] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(group) === pgid && state !== 'Z') return true;
  }
  return false;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

function tail(file: string, fromByte: number, lines = 20): string {
  try {
    const text = readFileSync(file).subarray(fromByte).toString('utf8').trimEnd();
    return text ? text.split('\n').slice(-lines).join('\n') : '(nothing logged)';
  } catch {
    return '(no log)';
  }
}
