import { rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { canConnect } from '../../net';
import { PROJECT_ROOT } from '../../paths';
import { LockQueue } from '../../process/lock';
import { isRunning, logTail, readRecord, spawnDetached, stopGroup, writeRecord, type ProcessRecord } from '../../process/supervisor';
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
  /**
   * The region whose slots these are: a rollout runs the same service once per region on this machine, each region's
   * instances recorded apart (<stateDir>/<service>@<region>/), so one region's deploy never finds another's instance.
   */
  region?: string;
  /** Working directory of the instances; default the repository root. */
  cwd?: string;
  /** How long an instance may take to answer its health path; default 20 s. */
  healthTimeoutMs?: number;
  /** How long an instance may take to exit after SIGTERM before it is killed; default 5 s. */
  stopTimeoutMs?: number;
}

/** What the deployer knows about an instance it started; written before the instance is healthy, so a retry finds it. */
export interface InstanceRecord extends ProcessRecord {
  service: string;
  slot: Slot;
  version: string;
  port: number;
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
  /** One operation per slot: queued in this process, locked across processes. */
  private readonly slotLocks = new LockQueue();

  constructor(private readonly options: LocalDeployerOptions) {
    if (options.command.length === 0 || !options.command[0]) throw new Error('the local target needs a command that starts one instance');
    for (const port of [options.stablePort, options.canaryPort]) {
      if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new RangeError(`slot port ${port} is not a TCP port`);
    }
    if (options.stablePort === options.canaryPort) throw new Error(`stable and canary slots share port ${options.stablePort}`);
    if (options.region !== undefined && !SERVICE_NAME.test(options.region)) throw new Error(`"${options.region}" is not a region name`);
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
    const instance = await spawnDetached({
      command: this.options.command,
      cwd: this.options.cwd ?? PROJECT_ROOT,
      env: instanceEnvironment(this.options.env ?? {}, version, port),
      logFile: logPath,
      banner: `--- ${new Date().toISOString()} starting ${service} ${version} in the ${slot} slot on port ${port}`,
    });
    const record: InstanceRecord = { service, slot, version, ...instance.record, port, startedAt: new Date().toISOString() };
    await writeRecord(this.recordPath(service, slot), record);
    try {
      await this.waitHealthy(record, () => {
        const exit = instance.exited();
        return exit ? `the instance ${exit} before it was healthy` : null;
      });
    } catch (error) {
      await this.stopInstance(record).catch(() => undefined);
      await rm(this.recordPath(service, slot), { force: true });
      // This start's lines only, not an earlier instance's.
      throw new Error(`${(error as Error).message}; last lines of ${logPath}:\n${logTail(logPath, instance.logOffset)}`, { cause: error });
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
    await stopGroup(record, this.options.stopTimeoutMs ?? 5_000);
    // The next instance of this slot needs the port.
    const deadline = Date.now() + 5_000;
    while (await canConnect({ host: '127.0.0.1', port: record.port }, { timeoutMeans: true })) {
      if (Date.now() > deadline) throw new Error(`port ${record.port} is still taken after the instance (pid ${record.pid}) exited`);
      await sleep(50);
    }
  }

  private async liveInstance(service: string, slot: Slot): Promise<InstanceRecord | null> {
    const record = await this.readRecord(service, slot);
    return record && isRunning(record) ? record : null;
  }

  private readRecord(service: string, slot: Slot): Promise<InstanceRecord | null> {
    return readRecord<InstanceRecord>(this.recordPath(service, slot));
  }

  private recordPath(service: string, slot: Slot): string {
    return path.join(this.serviceDir(service), `${slot}.json`);
  }

  private logPath(service: string, slot: Slot): string {
    return path.join(this.serviceDir(service), `${slot}.log`);
  }

  private serviceDir(service: string): string {
    if (!SERVICE_NAME.test(service)) throw new Error(`"${service}" is not a service name`);
    return path.join(this.stateDir, this.options.region ? `${service}@${this.options.region}` : service);
  }

  /** One operation per slot at a time, the slot's record being what the lock guards. */
  private async exclusive<T>(service: string, slot: Slot, operation: () => Promise<T>): Promise<T> {
    return this.slotLocks.run(this.recordPath(service, slot), operation);
  }
}
