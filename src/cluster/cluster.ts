import { spawnSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { chmodSync, chownSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { projectPath } from '../config';
import { canConnect, freePort } from '../net';
import { PROJECT_ROOT } from '../paths';
import { isRunning, logTail, readRecord, spawnDetached, stopGroup, writeRecord, type ProcessRecord } from '../process/supervisor';
import { resolveTemporalCli } from '../temporal/cli';
import { ensureSearchAttributes } from '../temporal/search-attributes';
import { ensureTemporalBinaries, type TemporalBinaries } from './build';
import { DEFAULT_HISTORY_SHARDS, GENERATED_FILES, renderApiLoadBalancer, SERVER_CONFIG_ENV, TEMPORAL_SERVICES, type TemporalService } from './config';

/*
 * A Temporal cluster on PostgreSQL on this machine, with Rampart on it: PostgreSQL (its own data directory and port),
 * the four Temporal services as separate processes, N release workers and M API replicas behind HAProxy. Every
 * process is supervised as the local stack's are (src/process/supervisor.ts): detached in its own process group, a
 * record on disk, so `status` and `down` from another process, and tests that kill one part, find them all.
 * What was chosen at the first `up` (ports, shard count, password) is kept in <dir>/cluster.json and reused.
 */

export const DEFAULT_CLUSTER_DIR = '.data/cluster';
const TASK_QUEUE_DEFAULT = 'rampart-releases';
const STATE_FILE = 'cluster.json';
const SYSTEM_BIN_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export interface ClusterOptions {
  /** Where data, configs, logs and records go; default .data/cluster in the project. */
  dir?: string;
  /** Release workers; default 2. */
  workers?: number;
  /** API replicas behind HAProxy; default 2. */
  apis?: number;
  /** History shards, fixed when the database is created; default 4 (see DEFAULT_HISTORY_SHARDS). */
  shards?: number;
  namespace?: string;
  /** Ports chosen at the first `up`; unset ones are free ports the kernel picks. */
  ports?: Partial<Pick<ClusterPorts, 'postgres' | 'frontend' | 'api' | 'apiMonitoring'>>;
  /** Extra environment for the release workers and API replicas (specs dir, tokens, outbound hosts...). */
  env?: Record<string, string>;
  /** Where the Temporal server is built; default .tools in the project. */
  toolsDir?: string;
  /** Per component; default 120 s (a worker bundles its workflows at start). */
  readyTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface ClusterPorts {
  postgres: number;
  frontend: number;
  frontendHttp: number;
  grpc: Record<TemporalService, number>;
  membership: Record<TemporalService, number>;
  metrics: Record<TemporalService, number>;
  api: number;
  apiMonitoring: number;
  apiReplicas: number[];
}

/** What the first `up` chose, kept in <dir>/cluster.json. */
export interface ClusterState {
  dir: string;
  namespace: string;
  shards: number;
  workers: number;
  apis: number;
  ports: ClusterPorts;
  binaries: TemporalBinaries;
  postgresBin: string;
  env: Record<string, string>;
}

export type ComponentKind = 'postgres' | 'temporal' | 'worker' | 'api' | 'api-lb';

export interface ComponentStatus {
  name: string;
  kind: ComponentKind;
  pid: number | null;
  running: boolean;
  ready: boolean;
  /** Where it answers. */
  endpoint: string;
  logFile: string;
}

interface Component {
  name: string;
  kind: ComponentKind;
  command: string[];
  env: Record<string, string | undefined>;
  endpoint: string;
  /** Run as the postgres user when we are root. */
  user?: { uid: number; gid: number };
  /** Seconds SIGTERM gets before SIGKILL. */
  graceMs: number;
  ready(probe: Probe): Promise<boolean>;
}

/** Shared, lazily made connection for readiness probes. */
interface Probe {
  connection(): Promise<Connection | null>;
  close(): Promise<void>;
}

export interface Cluster {
  dir: string;
  state: ClusterState;
  /** host:port of the Temporal frontend. */
  address: string;
  namespace: string;
  /** The API through HAProxy. */
  apiUrl: string;
  /** Each API replica directly. */
  apiReplicaUrls: string[];
  /** File of the generated admin token, when Rampart's tokens were not given; one name:role:token line. */
  apiTokenFile: string | null;
  components(): string[];
  status(): Promise<ComponentStatus[]>;
  /** SIGKILLs one component's process group and waits until it is gone. */
  kill(name: string): Promise<void>;
  /** SIGTERM (then SIGKILL after its grace) and wait until it is gone. */
  stop(name: string): Promise<void>;
  /** Starts one component that is not running and waits until it is ready. */
  start(name: string): Promise<void>;
  down(): Promise<void>;
}

/** Brings the cluster up (or what of it is not running) and waits until every component is ready. */
export async function up(options: ClusterOptions = {}): Promise<Cluster> {
  const log = options.log ?? (() => {});
  const dir = path.resolve(options.dir ?? projectPath(DEFAULT_CLUSTER_DIR));
  await mkdir(path.join(dir, 'run'), { recursive: true });
  await mkdir(path.join(dir, 'logs'), { recursive: true });
  const binaries = await ensureTemporalBinaries(options.toolsDir ?? projectPath('.tools'), log);
  const state = await loadOrCreateState(dir, options, binaries);
  const timeoutMs = options.readyTimeoutMs ?? 120_000;

  await initPostgres(state, log);
  const components = clusterComponents(state);
  const byName = new Map(components.map((c) => [c.name, c]));
  const probe = makeProbe(state);
  try {
    await startAll([byName.get('postgres')!], state, probe, timeoutMs, log);
    await migrateSchemas(state, log);
    await startAll(components.filter((c) => c.kind === 'temporal'), state, probe, timeoutMs, log);
    await waitClusterHealth(state, timeoutMs);
    await registerNamespace(state, timeoutMs, log);
    await startAll(components.filter((c) => c.kind === 'worker' || c.kind === 'api'), state, probe, timeoutMs, log);
    await startAll(components.filter((c) => c.kind === 'api-lb'), state, probe, timeoutMs, log);
  } finally {
    await probe.close();
  }
  return clusterHandle(state, timeoutMs);
}

/** The running cluster recorded in dir, for a process that did not start it (a test, the status command). */
export async function attach(dir: string = projectPath(DEFAULT_CLUSTER_DIR), readyTimeoutMs = 120_000): Promise<Cluster> {
  const state = await readState(path.resolve(dir));
  if (!state) throw new Error(`no cluster was started in ${dir}: run scripts/cluster.ts up`);
  return clusterHandle(state, readyTimeoutMs);
}

/** Stops every component, newest layer first; with purge, removes the data too. */
export async function down(dir: string = projectPath(DEFAULT_CLUSTER_DIR), options: { purge?: boolean } = {}): Promise<void> {
  const resolved = path.resolve(dir);
  const state = await readState(resolved);
  if (state) {
    const components = clusterComponents(state);
    // Recorded replicas beyond today's counts are stopped too (an `up` with fewer).
    for (const name of recordedNames(resolved)) {
      if (!components.some((c) => c.name === name)) components.push({ ...components.find((c) => c.kind === 'worker')!, name, graceMs: 10_000 });
    }
    const order: ComponentKind[] = ['api-lb', 'api', 'worker', 'temporal', 'postgres'];
    for (const kind of order) {
      await Promise.all(components.filter((c) => c.kind === kind).map((c) => stopComponent(resolved, c)));
    }
  }
  if (options.purge) await rm(resolved, { recursive: true, force: true });
}

/** Every recorded component: running, ready, where it answers. Empty when no cluster was started in dir. */
export async function status(dir: string = projectPath(DEFAULT_CLUSTER_DIR)): Promise<ComponentStatus[]> {
  const state = await readState(path.resolve(dir));
  if (!state) return [];
  return componentStatus(state);
}

async function componentStatus(state: ClusterState): Promise<ComponentStatus[]> {
  const probe = makeProbe(state);
  try {
    return await Promise.all(
      clusterComponents(state).map(async (c) => {
        const record = await readRecord(recordFile(state.dir, c.name));
        const running = record !== null && isRunning(record);
        const ready = running && (await c.ready(probe).catch(() => false));
        return { name: c.name, kind: c.kind, pid: record?.pid ?? null, running, ready, endpoint: c.endpoint, logFile: logFile(state.dir, c.name) };
      }),
    );
  } finally {
    await probe.close();
  }
}

function clusterHandle(state: ClusterState, timeoutMs: number): Cluster {
  const components = clusterComponents(state);
  const find = (name: string): Component => {
    const component = components.find((c) => c.name === name);
    if (!component) throw new Error(`no component ${name}; the cluster has ${components.map((c) => c.name).join(', ')}`);
    return component;
  };
  const tokenFile = path.join(state.dir, 'api-tokens');
  return {
    dir: state.dir,
    state,
    address: `127.0.0.1:${state.ports.frontend}`,
    namespace: state.namespace,
    apiUrl: `http://127.0.0.1:${state.ports.api}`,
    apiReplicaUrls: state.ports.apiReplicas.slice(0, state.apis).map((port) => `http://127.0.0.1:${port}`),
    apiTokenFile: existsSync(tokenFile) && state.env.RAMPART_API_TOKENS_FILE === tokenFile ? tokenFile : null,
    components: () => components.map((c) => c.name),
    status: () => componentStatus(state),
    async kill(name) {
      const record = await readRecord(recordFile(state.dir, find(name).name));
      if (!record || !isRunning(record)) return;
      try {
        process.kill(-record.pid, 'SIGKILL');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
      }
      const deadline = Date.now() + 10_000;
      while (isRunning(record)) {
        if (Date.now() > deadline) throw new Error(`${name} (pid ${record.pid}) survived SIGKILL for 10 s`);
        await sleep(50);
      }
    },
    stop: (name) => stopComponent(state.dir, find(name)),
    async start(name) {
      const probe = makeProbe(state);
      try {
        await startAll([find(name)], state, probe, timeoutMs, () => {});
      } finally {
        await probe.close();
      }
    },
    down: () => down(state.dir),
  };
}

// ---- state -------------------------------------------------------------------------------------------------------

async function readState(dir: string): Promise<ClusterState | null> {
  try {
    return JSON.parse(await readFile(path.join(dir, STATE_FILE), 'utf8')) as ClusterState;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

async function loadOrCreateState(dir: string, options: ClusterOptions, binaries: TemporalBinaries): Promise<ClusterState> {
  const previous = await readState(dir);
  const shards = options.shards ?? previous?.shards ?? DEFAULT_HISTORY_SHARDS;
  if (!Number.isInteger(shards) || shards < 1) throw new Error(`shards must be a whole number >= 1, got ${shards}`);
  if (previous && previous.shards !== shards) {
    throw new Error(`the cluster in ${dir} was created with ${previous.shards} history shards; the count is fixed with the database (down --purge, then up --shards ${shards})`);
  }
  const workers = options.workers ?? previous?.workers ?? 2;
  const apis = options.apis ?? previous?.apis ?? 2;
  for (const [name, value] of [['workers', workers], ['apis', apis]] as const) {
    if (!Number.isInteger(value) || value < 1 || value > 32) throw new Error(`${name} must be a whole number from 1 to 32, got ${value}`);
  }
  const free = () => freePort();
  const service = async (pick: (s: TemporalService) => Promise<number>) =>
    Object.fromEntries(await Promise.all(TEMPORAL_SERVICES.map(async (s) => [s, await pick(s)] as const))) as Record<TemporalService, number>;
  const ports: ClusterPorts = previous?.ports ?? {
    postgres: options.ports?.postgres ?? (await free()),
    frontend: 0,
    frontendHttp: await free(),
    grpc: await service(async (s) => (s === 'frontend' && options.ports?.frontend) || free()),
    // Temporal stores membership ports as a PostgreSQL smallint: they must be below 32768, under Linux's ephemeral range.
    membership: await service(() => freePortBelow(32_768)),
    metrics: await service(free),
    api: options.ports?.api ?? (await free()),
    apiMonitoring: options.ports?.apiMonitoring ?? (await free()),
    apiReplicas: [],
  };
  ports.frontend = ports.grpc.frontend;
  while (ports.apiReplicas.length < apis) ports.apiReplicas.push(await free());

  const env: Record<string, string> = { ...(previous?.env ?? {}), ...(options.env ?? {}) };
  // Without tokens every API route answers 401: give the cluster its own admin token, as `npm start` does.
  if (!env.RAMPART_API_TOKENS && !env.RAMPART_API_TOKENS_FILE && !process.env.RAMPART_API_TOKENS && !process.env.RAMPART_API_TOKENS_FILE) {
    const tokenFile = path.join(dir, 'api-tokens');
    if (!existsSync(tokenFile)) await writeFile(tokenFile, `cluster-admin:admin:${randomBytes(24).toString('hex')}\n`, { mode: 0o600 });
    env.RAMPART_API_TOKENS_FILE = tokenFile;
  }
  const state: ClusterState = {
    dir,
    namespace: options.namespace ?? previous?.namespace ?? 'default',
    shards,
    workers,
    apis,
    ports,
    binaries: { server: binaries.server, sqlTool: binaries.sqlTool, schemaDir: binaries.schemaDir },
    postgresBin: previous?.postgresBin ?? findPostgresBin(),
    env,
  };
  await writeFile(path.join(dir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  return state;
}

// ---- components --------------------------------------------------------------------------------------------------

function clusterComponents(state: ClusterState): Component[] {
  const postgresDir = path.join(state.dir, 'postgres');
  const password = readPassword(state.dir);
  const { ports } = state;
  const frontendAddress = `127.0.0.1:${ports.frontend}`;
  const components: Component[] = [
    {
      name: 'postgres',
      kind: 'postgres',
      command: [
        path.join(state.postgresBin, 'postgres'),
        '-D', path.join(postgresDir, 'data'),
        '-p', String(ports.postgres),
        '-k', path.join(postgresDir, 'socket'),
        '-c', 'listen_addresses=127.0.0.1',
        // Four Temporal services hold up to 30 connections each (server.yaml), plus the schema tool and psql.
        '-c', 'max_connections=200',
      ],
      env: { PATH: process.env.PATH, LANG: 'C', TZ: 'UTC' },
      endpoint: `postgresql://127.0.0.1:${ports.postgres}`,
      user: postgresUser(),
      graceMs: 15_000,
      ready: async () => spawnSync(path.join(state.postgresBin, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(ports.postgres)]).status === 0,
    },
  ];
  for (const service of TEMPORAL_SERVICES) {
    const env: Record<string, string | undefined> = {
      PATH: process.env.PATH,
      TZ: 'UTC',
      ...SERVER_CONFIG_ENV,
      POSTGRES_PORT: String(ports.postgres),
      POSTGRES_PASSWORD: password,
      TEMPORAL_HISTORY_SHARDS: String(state.shards),
      TEMPORAL_FRONTEND_ADDRESS: frontendAddress,
      TEMPORAL_FRONTEND_HTTP_PORT: String(ports.frontendHttp),
      TEMPORAL_METRICS_ADDRESS: `127.0.0.1:${ports.metrics[service]}`,
      TEMPORAL_DYNAMIC_CONFIG: path.join(PROJECT_ROOT, GENERATED_FILES.dynamicConfig),
      TEMPORAL_LOG_LEVEL: process.env.RAMPART_CLUSTER_TEMPORAL_LOG_LEVEL ?? 'warn',
    };
    for (const s of TEMPORAL_SERVICES) {
      env[`TEMPORAL_${s.toUpperCase()}_GRPC_PORT`] = String(ports.grpc[s]);
      env[`TEMPORAL_${s.toUpperCase()}_MEMBERSHIP_PORT`] = String(ports.membership[s]);
    }
    components.push({
      name: `temporal-${service}`,
      kind: 'temporal',
      // The committed template is read as it ships; the environment above fills it in.
      command: [state.binaries.server, '--config-file', path.join(PROJECT_ROOT, GENERATED_FILES.serverConfig), '--allow-no-auth', 'start', '--service', service],
      env,
      endpoint: `127.0.0.1:${ports.grpc[service]}`,
      graceMs: 10_000,
      ready: async (probe) => {
        if (!(await canConnect({ host: '127.0.0.1', port: ports.grpc[service] }))) return false;
        if (service !== 'frontend') return true;
        const connection = await probe.connection();
        if (!connection) return false;
        const answer = await connection.healthService.check({});
        return answer.status === 1; // SERVING
      },
    });
  }
  const rampartEnv = (extra: Record<string, string>): Record<string, string | undefined> => ({
    ...process.env,
    TEMPORAL_ADDRESS: frontendAddress,
    TEMPORAL_NAMESPACE: state.namespace,
    RAMPART_DATA_DIR: path.join(state.dir, 'rampart'),
    RAMPART_LOG_LEVEL: process.env.RAMPART_LOG_LEVEL ?? 'warn',
    ...state.env,
    ...extra,
  });
  for (let i = 1; i <= state.workers; i++) {
    components.push({
      name: `worker-${i}`,
      kind: 'worker',
      command: [process.execPath, '--import', 'tsx', 'workers/main.ts'],
      env: rampartEnv({ RAMPART_SDK_METRICS_ADDRESS: 'off', RAMPART_WORKER_METRICS_PORT: '0' }),
      endpoint: `task queue ${state.env.RAMPART_TASK_QUEUE ?? TASK_QUEUE_DEFAULT}`,
      // The SDK's graceful shutdown drains the tasks in hand.
      graceMs: 30_000,
      ready: async (probe) => {
        const record = await readRecord(recordFile(state.dir, `worker-${i}`));
        const connection = await probe.connection();
        if (!record || !connection) return false;
        return (await pollerIdentities(connection, state)).some((identity) => identity.startsWith(`${record.pid}@`));
      },
    });
  }
  for (let i = 1; i <= state.apis; i++) {
    const port = ports.apiReplicas[i - 1]!;
    components.push({
      name: `api-${i}`,
      kind: 'api',
      command: [process.execPath, '--import', 'tsx', 'src/api/main.ts'],
      // Behind HAProxy on this machine: the one X-Forwarded-For entry it appends is the client's address.
      env: rampartEnv({ RAMPART_API_HOST: '127.0.0.1', RAMPART_API_PORT: String(port), RAMPART_API_TRUST_PROXY: '1', RAMPART_SDK_METRICS_ADDRESS: 'off' }),
      endpoint: `http://127.0.0.1:${port}`,
      graceMs: 15_000,
      ready: () => httpOk(`http://127.0.0.1:${port}/readyz`),
    });
  }
  components.push({
    name: 'api-lb',
    kind: 'api-lb',
    command: [findBinary('haproxy', 'HAPROXY_BIN'), '-db', '-f', path.join(state.dir, 'api-lb.cfg')],
    env: { PATH: process.env.PATH },
    endpoint: `http://127.0.0.1:${ports.api}`,
    graceMs: 5_000,
    ready: async () => (await httpOk(`http://127.0.0.1:${ports.apiMonitoring}/healthz`)) && (await httpOk(`http://127.0.0.1:${ports.api}/readyz`)),
  });
  return components;
}

async function startAll(components: Component[], state: ClusterState, probe: Probe, timeoutMs: number, log: (line: string) => void): Promise<void> {
  await Promise.all(
    components.map(async (component) => {
      const file = recordFile(state.dir, component.name);
      const existing = await readRecord(file);
      let started: { pid: number; logOffset: number; exited(): string | null } | null = null;
      if (existing && isRunning(existing)) {
        log(`${component.name} already runs (pid ${existing.pid})`);
      } else {
        if (component.kind === 'api-lb') await writeApiLoadBalancer(state);
        const process_ = await spawnDetached({
          command: component.command,
          cwd: PROJECT_ROOT,
          env: component.env,
          logFile: logFile(state.dir, component.name),
          banner: `---- ${new Date().toISOString()} start ${component.name}`,
          uid: component.user?.uid,
          gid: component.user?.gid,
        });
        await writeRecord(file, process_.record);
        started = { pid: process_.record.pid, logOffset: process_.logOffset, exited: process_.exited };
        log(`${component.name} started (pid ${process_.record.pid})`);
      }
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (await component.ready(probe).catch(() => false)) break;
        const exited = started?.exited();
        if (exited || Date.now() > deadline) {
          const tail = logTail(logFile(state.dir, component.name), started?.logOffset ?? 0);
          throw new Error(`${component.name} ${exited ?? `was not ready within ${timeoutMs / 1000} s`}; its log (${logFile(state.dir, component.name)}) ends:\n${tail}`);
        }
        await sleep(250);
      }
      log(`${component.name} ready: ${component.endpoint}`);
    }),
  );
}

async function stopComponent(dir: string, component: Component): Promise<void> {
  const file = recordFile(dir, component.name);
  const record = await readRecord<ProcessRecord>(file);
  if (!record) return;
  await stopGroup(record, component.graceMs);
  await rm(file, { force: true });
}

function recordedNames(dir: string): string[] {
  try {
    return readdirSync(path.join(dir, 'run'))
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -'.json'.length));
  } catch {
    return [];
  }
}

const recordFile = (dir: string, name: string) => path.join(dir, 'run', `${name}.json`);
const logFile = (dir: string, name: string) => path.join(dir, 'logs', `${name}.log`);

async function writeApiLoadBalancer(state: ClusterState): Promise<void> {
  const config = renderApiLoadBalancer({
    apiBind: `127.0.0.1:${state.ports.api}`,
    monitoringBind: `127.0.0.1:${state.ports.apiMonitoring}`,
    backend: { kind: 'static', servers: state.ports.apiReplicas.slice(0, state.apis).map((port, i) => ({ name: `api-${i + 1}`, address: `127.0.0.1:${port}` })) },
  });
  const file = path.join(state.dir, 'api-lb.cfg');
  await writeFile(file, config);
  const check = spawnSync(findBinary('haproxy', 'HAPROXY_BIN'), ['-c', '-q', '-f', file], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`haproxy -c refused ${file}:\n${check.stdout}${check.stderr}`);
}

// ---- PostgreSQL ---------------------------------------------------------------------------------------------------

/** Debian's newest PostgreSQL (RAMPART_POSTGRES_BIN names another bin directory). */
function findPostgresBin(): string {
  const explicit = process.env.RAMPART_POSTGRES_BIN;
  if (explicit) {
    if (!existsSync(path.join(explicit, 'postgres'))) throw new Error(`RAMPART_POSTGRES_BIN=${explicit} holds no postgres binary`);
    return explicit;
  }
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v) && existsSync(path.join(root, v, 'bin', 'postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) throw new Error('PostgreSQL is not installed: apt-get install postgresql (or set RAMPART_POSTGRES_BIN to its bin directory)');
  return path.join(root, versions[0]!, 'bin');
}

/** PostgreSQL refuses to run as root: as root, its processes run as the postgres user. */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('running as root, PostgreSQL needs the postgres user (apt-get install postgresql creates it)');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function readPassword(dir: string): string {
  return readFileSync(path.join(dir, 'postgres-password'), 'utf8').trim();
}

/** A data directory of its own, owned by the user PostgreSQL runs as, with a password for the temporal role. */
async function initPostgres(state: ClusterState, log: (line: string) => void): Promise<void> {
  const postgresDir = path.join(state.dir, 'postgres');
  const passwordFile = path.join(state.dir, 'postgres-password');
  if (!existsSync(passwordFile)) await writeFile(passwordFile, `${randomBytes(18).toString('hex')}\n`, { mode: 0o600 });
  if (existsSync(path.join(postgresDir, 'data', 'PG_VERSION'))) return;
  const user = postgresUser();
  await mkdir(path.join(postgresDir, 'socket'), { recursive: true });
  if (user) {
    chownSync(postgresDir, user.uid, user.gid);
    chownSync(path.join(postgresDir, 'socket'), user.uid, user.gid);
    const access = spawnSync('test', ['-w', postgresDir], { uid: user.uid, gid: user.gid });
    if (access.status !== 0) {
      throw new Error(`the postgres user cannot reach ${postgresDir} (a parent directory is closed to other users): give up --dir a directory it can reach, e.g. /var/tmp/rampart-cluster`);
    }
  }
  chmodSync(postgresDir, 0o700);
  // initdb reads the superuser's password from a file the postgres user can read; it is removed right after.
  const initPassword = path.join(postgresDir, 'initdb-password');
  await writeFile(initPassword, readPassword(state.dir), { mode: 0o600 });
  if (user) chownSync(initPassword, user.uid, user.gid);
  log(`initialising PostgreSQL in ${path.join(postgresDir, 'data')}`);
  const initdb = spawnSync(
    path.join(state.postgresBin, 'initdb'),
    ['-D', path.join(postgresDir, 'data'), '-U', SERVER_CONFIG_ENV.POSTGRES_USER!, '--pwfile', initPassword, '--auth', 'scram-sha-256', '-E', 'UTF8', '--no-locale'],
    { uid: user?.uid, gid: user?.gid, encoding: 'utf8', env: { PATH: process.env.PATH, LANG: 'C' } },
  );
  await rm(initPassword, { force: true });
  if (initdb.status !== 0) throw new Error(`initdb failed:\n${initdb.stdout}${initdb.stderr}`);
}

/** Creates both databases when missing and applies the schema versions that are missing; safe at every `up`. */
async function migrateSchemas(state: ClusterState, log: (line: string) => void): Promise<void> {
  const env = { PATH: process.env.PATH, SQL_PASSWORD: readPassword(state.dir) };
  const base = ['--plugin', 'postgres12', '--ep', '127.0.0.1', '-p', String(state.ports.postgres), '-u', SERVER_CONFIG_ENV.POSTGRES_USER!];
  for (const [database, schema] of [
    [SERVER_CONFIG_ENV.TEMPORAL_DB!, 'temporal'],
    [SERVER_CONFIG_ENV.TEMPORAL_VISIBILITY_DB!, 'visibility'],
  ] as const) {
    for (const args of [
      ['create-database', '--defaultdb', 'postgres'],
      ['setup-schema', '-v', '0.0'],
      ['update-schema', '-d', path.join(state.binaries.schemaDir, schema, 'versioned')],
    ]) {
      const run = spawnSync(state.binaries.sqlTool, [...base, '--db', database, ...args], { encoding: 'utf8', env });
      if (run.status !== 0) throw new Error(`temporal-sql-tool ${args[0]} on ${database} failed:\n${run.stdout}${run.stderr}`);
    }
  }
  log('Temporal schemas are up to date');
}

// ---- Temporal -----------------------------------------------------------------------------------------------------

async function waitClusterHealth(state: ClusterState, timeoutMs: number): Promise<void> {
  const cli = await resolveTemporalCli({ explicitPath: process.env.TEMPORAL_CLI_PATH, toolsDir: projectPath('.tools'), install: true });
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const run = spawnSync(cli.path, ['operator', 'cluster', 'health', '--address', `127.0.0.1:${state.ports.frontend}`], { encoding: 'utf8', timeout: 10_000 });
    if (run.status === 0 && /SERVING/.test(run.stdout)) return;
    last = `${run.stdout}${run.stderr}`.trim();
    if (Date.now() > deadline) throw new Error(`temporal operator cluster health did not answer SERVING within ${timeoutMs / 1000} s: ${last}`);
    await sleep(500);
  }
}

async function registerNamespace(state: ClusterState, timeoutMs: number, log: (line: string) => void): Promise<void> {
  const connection = await Connection.connect({ address: `127.0.0.1:${state.ports.frontend}` });
  try {
    try {
      await connection.workflowService.registerNamespace({
        namespace: state.namespace,
        // DORA reaches back as far as closed releases are kept.
        workflowExecutionRetentionPeriod: msToTs('30 days'),
      });
      log(`namespace ${state.namespace} registered`);
    } catch (error) {
      if (!/already exists|AlreadyExists/i.test((error as Error).message)) throw error;
    }
    // A namespace registered a moment ago reaches the frontend's cache within seconds; retry until it has.
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await ensureSearchAttributes(connection, state.namespace);
        const known = await connection.operatorService.listSearchAttributes({ namespace: state.namespace });
        if (Object.keys(known.customAttributes ?? {}).some((name) => name.startsWith('Rampart'))) break;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`could not register Rampart's search attributes in ${state.namespace}: ${(error as Error).message}`, { cause: error });
      }
      await sleep(500);
    }
    log(`search attributes registered in ${state.namespace}`);
  } finally {
    await connection.close();
  }
}

async function pollerIdentities(connection: Connection, state: ClusterState): Promise<string[]> {
  const answer = await connection.workflowService.describeTaskQueue({
    namespace: state.namespace,
    taskQueue: { name: state.env.RAMPART_TASK_QUEUE ?? TASK_QUEUE_DEFAULT },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  return (answer.pollers ?? []).map((p) => p.identity ?? '');
}

function makeProbe(state: ClusterState): Probe {
  let connection: Promise<Connection | null> | null = null;
  return {
    connection() {
      connection ??= Connection.connect({ address: `127.0.0.1:${state.ports.frontend}`, connectTimeout: 2_000 }).catch(() => null);
      return connection.then(async (c) => {
        if (!c) connection = null;
        return c;
      });
    },
    async close() {
      const c = await connection;
      await c?.close();
    },
  };
}

// ---- helpers ------------------------------------------------------------------------------------------------------

/** A free port in [10000, limit): tried at random and bound once to see that nothing holds it. */
async function freePortBelow(limit: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 10_000 + randomInt(limit - 10_000);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error(`no free port below ${limit} after 200 tries`);
}

function findBinary(name: string, envName: string): string {
  const explicit = process.env[envName];
  if (explicit) return explicit;
  for (const dir of [...(process.env.PATH ?? '').split(':'), ...SYSTEM_BIN_DIRS]) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  throw new Error(`${name} is not installed: apt-get install ${name}`);
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const answer = await fetch(url, { signal: AbortSignal.timeout(2_000), redirect: 'manual' });
    await answer.body?.cancel();
    return answer.status === 200;
  } catch {
    return false;
  }
}
