import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sameRoutes, type HeaderMatch, type Routes, type TrafficRouter } from './router';

/*
 * HAProxy, driven through its runtime API (the stats socket at `level admin`); nothing is ever reloaded.
 *
 * Each service is a backend named after it with two servers, `stable` and `canary`.
 * - Weights: canaryWeight c becomes `set weight <service>/canary c` and `<service>/stable 100-c`, and is read
 *   back with `get weight`.
 * - Internal audience: the backend has
 *     acl internal_audience req.hdrs,map_reg(<dir>/<service>.audience.map) -m found
 *     use-server canary if internal_audience
 *   The map holds at most one entry. Its key is a regular expression over the raw request header block that
 *   matches one `header: value` line (header name case-insensitive, value exact); its value is the readable
 *   `header:value` we read back. HAProxy fetches cannot take a header name chosen at run time, so matching the
 *   whole header block is what lets any header be switched live. The map is replaced atomically with
 *   `prepare map` / `add map @version` / `commit map @version`. `use-server` picks the canary even at weight 0,
 *   as long as its health check passes.
 */

export interface HaproxyRouterOptions {
  /** Runtime API address: a unix socket path, or host:port (an `ipv4@host:port` stats socket). */
  socket: string;
  /** Attempts per command when the socket cannot be reached; default 5. */
  attempts?: number;
  /** Delay before the first retry, doubled for each further one; default 50 ms. */
  backoffMs?: number;
  /** How long one command may take; default 2000 ms. */
  commandTimeoutMs?: number;
}

export const STABLE_SERVER = 'stable';
export const CANARY_SERVER = 'canary';
export type ServerName = typeof STABLE_SERVER | typeof CANARY_SERVER;
/** HAProxy's own ceiling for an absolute server weight. */
const MAX_HAPROXY_WEIGHT = 256;
const HEADER_NAME = /^[A-Za-z0-9-]{1,100}$/;
const HEADER_VALUE = /^[A-Za-z0-9._-]{1,200}$/;
const RETRYABLE_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'EAGAIN', 'ETIMEDOUT']);

/** The map file a backend's internal-audience rule reads; the stack writes the HAProxy config with the same name. */
export function audienceMapFileName(service: string): string {
  return `${service}.audience.map`;
}

/** The map key matching one `header: value` line of the request's header block. Built only from safe characters: no spaces, no backslashes. */
export function audienceMapKey(match: HeaderMatch): string {
  const value = match.value.replace(/\./g, '[.]');
  return `(?m)^(?i:${match.header}):[[:blank:]]*${value}[[:blank:]]*[[:cntrl:]]?$`;
}

export class HaproxyRuntimeError extends Error {
  constructor(
    message: string,
    readonly command: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'HaproxyRuntimeError';
  }
}

interface ServerWeights {
  stable: number;
  canary: number;
}

/** One server's row of `show stat`, the columns that say whether and why it is out of rotation. */
interface ServerHealth {
  status: string;
  /** L4CON, L7STS…; HAProxy prefixes "* " while a check runs. */
  checkStatus: string;
  /** "Layer4 connection problem" */
  checkDescription: string;
  /** What the last check saw: "Connection refused", "HTTP status check returned code <503>". */
  lastCheck: string;
}

interface MapEntry {
  key: string;
  value: string;
}

type Address = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

function parseAddress(socket: string): Address {
  const tcp = /^(?:ipv4@)?([^/:]+):(\d{1,5})$/.exec(socket);
  if (tcp) return { kind: 'tcp', host: tcp[1]!, port: Number(tcp[2]) };
  if (!socket.includes('/')) throw new Error(`HAProxy runtime API address "${socket}" is neither a unix socket path nor host:port`);
  return { kind: 'unix', path: socket.replace(/^unix@/, '') };
}

function validateRoutes(routes: Routes): void {
  const { canaryWeight, internalAudience } = routes;
  if (!Number.isInteger(canaryWeight) || canaryWeight < 0 || canaryWeight > 100) {
    throw new RangeError(`canaryWeight must be an integer from 0 to 100, got ${canaryWeight}`);
  }
  if (internalAudience && (!HEADER_NAME.test(internalAudience.header) || !HEADER_VALUE.test(internalAudience.value))) {
    throw new RangeError(
      `internal audience ${internalAudience.header}=${internalAudience.value} is not usable: ` +
        'the header takes letters, digits and dashes, the value letters, digits, dots, underscores and dashes',
    );
  }
}

export class HaproxyRouter implements TrafficRouter {
  readonly type = 'haproxy';
  private readonly address: Address;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly commandTimeoutMs: number;
  /** setRoutes calls of one service run one after the other: interleaved, two could leave a mix of both. */
  private readonly updates = new Map<string, Promise<unknown>>();

  constructor(private readonly options: HaproxyRouterOptions) {
    this.address = parseAddress(options.socket);
    this.attempts = options.attempts ?? 5;
    this.backoffMs = options.backoffMs ?? 50;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 2_000;
    if (!Number.isInteger(this.attempts) || this.attempts < 1) throw new RangeError(`attempts must be a positive integer, got ${this.attempts}`);
  }

  async setRoutes(service: string, routes: Routes): Promise<Routes> {
    validateRoutes(routes);
    const previous = this.updates.get(service) ?? Promise.resolve();
    const update = previous.catch(() => undefined).then(() => this.applyRoutes(service, routes));
    this.updates.set(service, update);
    try {
      return await update;
    } finally {
      if (this.updates.get(service) === update) this.updates.delete(service);
    }
  }

  private async applyRoutes(service: string, routes: Routes): Promise<Routes> {
    try {
      const wanted: ServerWeights = { stable: 100 - routes.canaryWeight, canary: routes.canaryWeight };
      const current = await this.readWeights(service);
      // Raise before lowering, so no moment has both servers at weight 0.
      const order = wanted.canary >= current.canary ? ([CANARY_SERVER, STABLE_SERVER] as const) : ([STABLE_SERVER, CANARY_SERVER] as const);
      for (const server of order) {
        if (current[server] !== wanted[server]) await this.expectSilence(`set weight ${service}/${server} ${wanted[server]}`);
      }
      const mapId = await this.audienceMapId(service);
      const entries = await this.readMap(mapId);
      const wantedEntries = routes.internalAudience ? [entryFor(routes.internalAudience)] : [];
      if (entries.length !== wantedEntries.length || entries.some((entry, i) => entry.key !== wantedEntries[i]?.key || entry.value !== wantedEntries[i]?.value)) {
        await this.replaceAudience(mapId, routes.internalAudience);
      }

      const weights = await this.readWeights(service);
      const verified: Routes = {
        canaryWeight: effectiveCanaryWeight(service, weights),
        internalAudience: audienceFromEntries(service, await this.readMap(mapId)),
      };
      if (weights.stable !== wanted.stable || weights.canary !== wanted.canary || !sameRoutes(verified, routes)) {
        throw new Error(
          `HAProxy reads back stable=${weights.stable} canary=${weights.canary} audience=${describeAudience(verified.internalAudience)}, ` +
            `expected stable=${wanted.stable} canary=${wanted.canary} audience=${describeAudience(routes.internalAudience)}`,
        );
      }
      return verified;
    } catch (error) {
      throw new Error(`setting routes of ${service} to canary ${routes.canaryWeight}% (${describeAudience(routes.internalAudience)}) on HAProxy ${this.options.socket} failed: ${(error as Error).message}`, { cause: error });
    }
  }

  async getRoutes(service: string): Promise<Routes> {
    try {
      const weights = await this.readWeights(service);
      const entries = await this.readMap(await this.audienceMapId(service));
      return { canaryWeight: effectiveCanaryWeight(service, weights), internalAudience: audienceFromEntries(service, entries) };
    } catch (error) {
      throw new Error(`reading routes of ${service} from HAProxy ${this.options.socket} failed: ${(error as Error).message}`, { cause: error });
    }
  }

  /** HAProxy's health view of the two servers: "UP", "DOWN", "MAINT", or a transition such as "DOWN 1/2". */
  async serverStatus(service: string): Promise<Record<ServerName, string>> {
    const health = await this.serverHealth(service);
    return { stable: health.stable.status, canary: health.canary.status };
  }

  /**
   * Whether HAProxy takes the slot's server out of rotation right now, and why in its own words: DOWN (its
   * health check fails; "DOWN 1/2" is still down, on its way up), MAINT (put in maintenance) or NOLB (kept
   * out of load balancing). Null when it serves: UP, "UP 1/2" (failing, not yet down) or "no check".
   */
  async serverDown(service: string, slot: 'stable' | 'canary'): Promise<string | null> {
    const server = (await this.serverHealth(service))[slot === 'stable' ? STABLE_SERVER : CANARY_SERVER];
    const state = /^(DOWN|MAINT|NOLB)\b/.exec(server.status)?.[1];
    if (!state) return null;
    const check = [server.checkDescription, server.checkStatus && server.lastCheck ? `${server.checkStatus}: ${server.lastCheck}` : server.checkStatus]
      .filter(Boolean)
      .join(', ');
    const why = state === 'MAINT' ? 'in maintenance' : state === 'NOLB' ? 'out of load balancing' : 'its health check fails';
    return `HAProxy marks ${service}/${slot} ${server.status} (${why}${check ? `: ${check}` : ''})`;
  }

  private async serverHealth(service: string): Promise<Record<ServerName, ServerHealth>> {
    const command = `show stat ${service} 4 -1`;
    const [header, ...rows] = (await this.command(command)).split('\n').filter((line) => line.trim());
    const columns = (header ?? '').replace(/^# /, '').split(',');
    const column = (name: string) => columns.indexOf(name);
    const [name, status] = [column('svname'), column('status')];
    if (name < 0 || status < 0) throw new HaproxyRuntimeError(`"${command}" answered no server table: ${(header ?? 'nothing').slice(0, 200)}`, command);
    const found: Partial<Record<ServerName, ServerHealth>> = {};
    for (const row of rows) {
      const cells = row.split(',');
      const server = cells[name];
      const cell = (index: number) => (index >= 0 ? (cells[index] ?? '') : '');
      if (server === STABLE_SERVER || server === CANARY_SERVER) {
        found[server] = {
          status: cell(status),
          checkStatus: cell(column('check_status')).replace(/^\* /, ''),
          checkDescription: cell(column('check_desc')),
          lastCheck: cell(column('last_chk')),
        };
      }
    }
    if (found.stable === undefined || found.canary === undefined) {
      throw new HaproxyRuntimeError(`backend ${service} lacks a ${STABLE_SERVER} or ${CANARY_SERVER} server`, command);
    }
    return found as Record<ServerName, ServerHealth>;
  }

  /**
   * Waits until HAProxy's health checks pass for the given servers. An instance the deployer found healthy takes
   * traffic only after HAProxy's next check (a check interval, 500 ms in the local stack); until then a weight
   * on it, or the internal-audience rule, routes to the other server.
   */
  async awaitHealthy(service: string, slot: 'stable' | 'canary'): Promise<void> {
    await this.waitUntilUp(service, [slot === 'stable' ? STABLE_SERVER : CANARY_SERVER]);
  }

  async waitUntilUp(service: string, servers: ServerName[] = [STABLE_SERVER, CANARY_SERVER], timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let status: Record<ServerName, string> | undefined;
    while (Date.now() < deadline) {
      status = await this.serverStatus(service);
      // "UP 1/2" still serves (it is failing its way down); "no check" serves without health checks.
      if (servers.every((server) => /^UP\b/.test(status![server]) || status![server] === 'no check')) return;
      await sleep(50);
    }
    throw new Error(`HAProxy did not see ${servers.map((s) => `${service}/${s}`).join(' and ')} UP within ${timeoutMs} ms (${JSON.stringify(status)})`);
  }

  private async readWeights(service: string): Promise<ServerWeights> {
    const [stable, canary] = await Promise.all([this.readWeight(service, STABLE_SERVER), this.readWeight(service, CANARY_SERVER)]);
    return { stable, canary };
  }

  private async readWeight(service: string, server: string): Promise<number> {
    const command = `get weight ${service}/${server}`;
    const answer = (await this.command(command)).trim();
    // "25 (initial 100)"
    const match = /^(\d+) \(initial \d+\)$/.exec(answer);
    if (!match) throw new HaproxyRuntimeError(`"${command}" answered "${answer}"`, command);
    const weight = Number(match[1]);
    if (weight > MAX_HAPROXY_WEIGHT) throw new HaproxyRuntimeError(`"${command}" answered an impossible weight ${weight}`, command);
    return weight;
  }

  /** Looked up on every call, not cached: a restarted HAProxy with another config may number its maps differently. */
  private async audienceMapId(service: string): Promise<string> {
    const fileName = audienceMapFileName(service);
    // "1 (/path/demo.audience.map) pattern loaded from file ..."
    for (const line of (await this.command('show map')).split('\n')) {
      const match = /^(\d+) \((.+?)\) /.exec(line);
      if (match && path.basename(match[2]!) === fileName) {
        return `#${match[1]}`;
      }
    }
    throw new Error(`HAProxy loaded no map file named ${fileName}: backend ${service} has no internal-audience rule (see src/stack/local-stack.ts)`);
  }

  private async readMap(mapId: string): Promise<MapEntry[]> {
    const answer = await this.command(`show map ${mapId}`);
    const entries: MapEntry[] = [];
    for (const line of answer.split('\n')) {
      if (!line.trim()) continue;
      // "0x55d0c0a1b2c0 <key> <value>"; neither key nor value holds a space.
      const match = /^0x[0-9a-f]+ (\S+) (\S+)$/.exec(line.trim());
      if (!match) throw new HaproxyRuntimeError(`unexpected line in "show map ${mapId}": "${line}"`, `show map ${mapId}`);
      entries.push({ key: match[1]!, value: match[2]! });
    }
    return entries;
  }

  private async replaceAudience(mapId: string, audience: HeaderMatch | null): Promise<void> {
    const prepare = `prepare map ${mapId}`;
    const created = /New version created: (\d+)/.exec(await this.command(prepare));
    if (!created) throw new HaproxyRuntimeError(`"${prepare}" did not create a map version`, prepare);
    const version = created[1]!;
    if (audience) {
      const entry = entryFor(audience);
      await this.expectSilence(`add map @${version} ${mapId} ${entry.key} ${entry.value}`);
    }
    await this.expectSilence(`commit map @${version} ${mapId}`);
  }

  /** Mutating commands answer nothing on success and a sentence on failure. */
  private async expectSilence(command: string): Promise<void> {
    const answer = (await this.command(command)).trim();
    if (answer) throw new HaproxyRuntimeError(`"${command}" was refused: ${answer}`, command);
  }

  private async command(command: string): Promise<string> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      try {
        return await this.send(command);
      } catch (error) {
        lastError = error;
        const code = (error as NodeJS.ErrnoException).code;
        if (!code || !RETRYABLE_CODES.has(code)) break;
        if (attempt < this.attempts) await sleep(this.backoffMs * 2 ** (attempt - 1));
      }
    }
    const code = (lastError as NodeJS.ErrnoException).code;
    throw new HaproxyRuntimeError(
      `runtime API ${this.options.socket} did not answer "${command}"${code && RETRYABLE_CODES.has(code) ? ` after ${this.attempts} attempts` : ''}: ${(lastError as Error).message}`,
      command,
      { cause: lastError },
    );
  }

  /** One command per connection: HAProxy answers and closes (non-interactive mode). */
  private send(command: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket =
        this.address.kind === 'unix' ? net.createConnection(this.address.path) : net.createConnection(this.address.port, this.address.host);
      let answer = '';
      socket.setEncoding('utf8');
      socket.setTimeout(this.commandTimeoutMs, () => {
        socket.destroy(Object.assign(new Error(`no answer within ${this.commandTimeoutMs} ms`), { code: 'ETIMEDOUT' }));
      });
      socket.on('connect', () => socket.end(`${command}\n`));
      socket.on('data', (chunk: string) => (answer += chunk));
      socket.on('error', reject);
      socket.on('close', (hadError) => {
        if (!hadError) resolve(answer);
      });
    });
  }
}

function effectiveCanaryWeight(service: string, weights: ServerWeights): number {
  const total = weights.stable + weights.canary;
  if (total === 0) throw new Error(`backend ${service} has both servers at weight 0: no traffic is routed`);
  return Math.round((100 * weights.canary) / total);
}

function audienceFromEntries(service: string, entries: MapEntry[]): HeaderMatch | null {
  // A retried add can leave identical duplicates; they route the same.
  const distinct = [...new Map(entries.map((entry) => [`${entry.key} ${entry.value}`, entry])).values()];
  if (distinct.length === 0) return null;
  if (distinct.length > 1) {
    throw new Error(`the internal-audience map of ${service} holds ${distinct.length} different rules; setRoutes replaces them with one`);
  }
  const entry = distinct[0]!;
  const separator = entry.value.indexOf(':');
  const audience = { header: entry.value.slice(0, separator), value: entry.value.slice(separator + 1) };
  if (separator <= 0 || audienceMapKey(audience) !== entry.key) {
    throw new Error(`the internal-audience map of ${service} holds a rule Rampart did not write: ${entry.key} ${entry.value}`);
  }
  return audience;
}

function entryFor(audience: HeaderMatch): MapEntry {
  return { key: audienceMapKey(audience), value: `${audience.header}:${audience.value}` };
}

function describeAudience(audience: HeaderMatch | null): string {
  return audience ? `${audience.header}=${audience.value}` : 'no internal audience';
}
