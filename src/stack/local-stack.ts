import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { canConnect, freePort } from '../net';
import { PROJECT_ROOT } from '../paths';
import { isRunning, logTail, readRecord, spawnDetached, stopGroup, writeRecord, type ProcessRecord, type SupervisedProcess } from '../process/supervisor';
import { audienceMapFileName, CANARY_SERVER, STABLE_SERVER } from '../providers/traffic/haproxy';

/*
 * The local stack the real providers run on: HAProxy (traffic), Prometheus (metrics and the alert rule) and
 * Alertmanager (alerts to Rampart's webhook), each our own process with its own config, data and pid file under
 * one directory (default .run/stack). No systemd, no shared /etc config, nothing reloaded.
 *
 * Default ports, chosen away from the usual 8080/9090/9093 so a system Prometheus or a dev server does not collide:
 *   18080 HAProxy frontend (user traffic)      18404 HAProxy Prometheus exporter (/metrics)
 *   18090 Prometheus                            18093 Alertmanager
 *   18101 / 18102 demo service stable / canary slots
 *
 * With regions (`regions: ['r1', 'r2']`), each region is a HAProxy of its own (frontend, exporter, runtime socket,
 * the same backends with the region's own stable/canary ports), all scraped by the one Prometheus, which puts the
 * region's name on every series as the `region` label; one Alertmanager takes every alert. Region n (counting from 0)
 * takes the HAProxy and service ports above plus n x regionPortStep (default 100) unless it names its own.
 */

export type StackComponent = 'haproxy' | 'prometheus' | 'alertmanager';
export const STACK_COMPONENTS: readonly StackComponent[] = ['haproxy', 'prometheus', 'alertmanager'];

export interface StackService {
  /** Service name: the HAProxy backend (the exporter's proxy label) and the `service` label of its instances. */
  name: string;
  stablePort: number;
  canaryPort: number;
  /** Path HAProxy health-checks on each instance; default /healthz. */
  healthPath?: string;
}

export interface StackPorts {
  /** HAProxy frontend taking user traffic; services are told apart by Host (`<service>` or `<service>.localhost`), the first is the default. */
  frontend: number;
  /** HAProxy's built-in Prometheus exporter. */
  haproxyExporter: number;
  prometheus: number;
  alertmanager: number;
}

/** The ports of one region's HAProxy. */
export type RegionPorts = Pick<StackPorts, 'frontend' | 'haproxyExporter'>;

export interface StackRegionOptions {
  /** The region's name: the `region` label of its series (lower-case letters, digits and dashes). */
  name: string;
  /** Its HAProxy's ports; default the stack's plus the region's index x regionPortStep. */
  ports?: Partial<RegionPorts>;
  /** Its instances' slots, the same service names as the stack's; default the stack's ports plus index x regionPortStep. */
  services?: StackService[];
}

/** One region of a stack started with regions: where its HAProxy answers, and what a region's local target needs. */
export interface StackRegion {
  name: string;
  ports: RegionPorts;
  services: StackService[];
  haproxySocket: string;
  frontendUrl: string;
  haproxyExporterUrl: string;
  /** The stack's one Prometheus; the region's series carry region="<name>". */
  prometheusUrl: string;
}

export const DEFAULT_REGION_PORT_STEP = 100;
export const DEFAULT_STACK_PORTS: StackPorts = { frontend: 18080, haproxyExporter: 18404, prometheus: 18090, alertmanager: 18093 };
export const DEFAULT_DEMO_SERVICE: StackService = { name: 'demo', stablePort: 18101, canaryPort: 18102, healthPath: '/healthz' };
export const DEFAULT_STACK_ENVIRONMENT = 'production';
export const DEFAULT_ALERT_WEBHOOK_URL = 'http://127.0.0.1:8080/v1/alerts/alertmanager';

/** Rampart's own webhook, from the API's settings (RAMPART_API_HOST, RAMPART_API_PORT) when they are set. */
export function defaultAlertWebhookUrl(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RAMPART_ALERT_WEBHOOK_URL) return env.RAMPART_ALERT_WEBHOOK_URL;
  if (!env.RAMPART_API_HOST && !env.RAMPART_API_PORT) return DEFAULT_ALERT_WEBHOOK_URL;
  const host = !env.RAMPART_API_HOST || env.RAMPART_API_HOST === '0.0.0.0' ? '127.0.0.1' : env.RAMPART_API_HOST;
  return `http://${host.includes(':') ? `[${host}]` : host}:${env.RAMPART_API_PORT ?? '8080'}/v1/alerts/alertmanager`;
}

export interface LocalStackOptions {
  /** Directory for configs, data, logs and pid files; default .run/stack in the repository. */
  dir?: string;
  /** Services behind HAProxy; default the demo service on 18101/18102. */
  services?: StackService[];
  ports?: Partial<StackPorts>;
  /** Where Alertmanager posts; default $RAMPART_ALERT_WEBHOOK_URL, else the API's RAMPART_API_HOST/RAMPART_API_PORT, else http://127.0.0.1:8080/v1/alerts/alertmanager. */
  alertWebhookUrl?: string;
  /**
   * Bearer token Alertmanager sends; default the API's own $RAMPART_ALERTMANAGER_TOKEN (or the file named by
   * $RAMPART_ALERTMANAGER_TOKEN_FILE), else the token of an earlier run, else a new random one.
   */
  alertWebhookToken?: string;
  /**
   * The environment the stack serves, put on every series Prometheus scrapes as the `environment` label (the
   * default analysis queries and the alert rules select on it); default $RAMPART_STACK_ENVIRONMENT, else production.
   */
  environment?: string;
  /** Prometheus scrape and rule evaluation interval; default 1s (tests and the detect-to-safe target need it short). */
  scrapeInterval?: string;
  /** Which components to start; default all three. */
  components?: StackComponent[];
  /** How long each component may take to become ready; default 30 s. */
  readyTimeoutMs?: number;
  /**
   * Regions, each its own HAProxy, every series labelled `region`; default none: one HAProxy, series without a
   * region label (which a `region=""` selector matches).
   */
  regions?: Array<string | StackRegionOptions>;
  /** How far apart the default ports of consecutive regions are; default 100. */
  regionPortStep?: number;
}

/** A running stack: where everything answers. Written to <dir>/stack.json for `status`, `down` and other processes. */
export interface LocalStackInfo {
  dir: string;
  /** The `environment` label of every series this stack's Prometheus scrapes. */
  environment: string;
  /** With regions, the HAProxy ports are the first region's. */
  ports: StackPorts;
  /** With regions, the first region's. */
  services: StackService[];
  components: StackComponent[];
  /** With regions, the first region's HAProxy (each region's is in `regions`). */
  haproxySocket: string;
  frontendUrl: string;
  haproxyExporterUrl: string;
  prometheusUrl: string;
  alertmanagerUrl: string;
  alertWebhookUrl: string;
  /** File holding the bearer token Alertmanager sends (mode 0600). */
  alertWebhookTokenFile: string;
  /** With regions, the first region's HAProxy. */
  pids: Partial<Record<StackComponent, number>>;
  /** Present only when the stack was started with regions, in the order given. */
  regions?: StackRegion[];
  startedAt: string;
}

export interface LocalStack extends LocalStackInfo {
  alertWebhookToken: string;
  /** Stops one component, or the whole stack. Idempotent. */
  stop(component?: StackComponent): Promise<void>;
}

export interface ComponentStatus {
  component: StackComponent;
  /** The region of a HAProxy, in a stack started with regions. */
  region?: string;
  pid: number | null;
  running: boolean;
  ready: boolean;
  url: string;
}

export const DEFAULT_STACK_DIR = path.join(PROJECT_ROOT, '.run', 'stack');
const RULES_FILE = path.join(PROJECT_ROOT, 'deploy', 'prometheus', 'rules', 'rampart.rules.yml');
const ALERTMANAGER_TEMPLATE = path.join(PROJECT_ROOT, 'deploy', 'alertmanager', 'alertmanager.yml');
const SERVICE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** HAProxy config arguments (map_reg(<file>)) cannot hold spaces, commas or parentheses. */
const SAFE_PATH = /^[A-Za-z0-9_./@+-]+$/;
/** sun_path holds 108 bytes; leave room. */
const MAX_UNIX_SOCKET_PATH = 100;
/** Debian puts haproxy in /usr/sbin, which a non-root PATH often lacks. */
const SYSTEM_BIN_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
const BINARIES: Record<StackComponent | 'promtool' | 'amtool', { env: string; names: string[] }> = {
  haproxy: { env: 'HAPROXY_BIN', names: ['haproxy'] },
  prometheus: { env: 'PROMETHEUS_BIN', names: ['prometheus'] },
  alertmanager: { env: 'ALERTMANAGER_BIN', names: ['prometheus-alertmanager', 'alertmanager'] },
  promtool: { env: 'PROMTOOL_BIN', names: ['promtool'] },
  amtool: { env: 'AMTOOL_BIN', names: ['amtool'] },
};
const INSTALL_HINT: Record<StackComponent, string> = {
  haproxy: 'apt-get install haproxy',
  prometheus: 'apt-get install prometheus',
  alertmanager: 'apt-get install prometheus-alertmanager',
};

const execFileAsync = promisify(execFile);

/** Starts (or restarts) the stack in its directory and waits until every component is ready. */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const dir = path.resolve(options.dir ?? DEFAULT_STACK_DIR);
  const ports: StackPorts = { ...DEFAULT_STACK_PORTS, ...options.ports };
  const services = (options.services ?? [DEFAULT_DEMO_SERVICE]).map((service) => ({ healthPath: '/healthz', ...service }));
  const components = options.components ?? [...STACK_COMPONENTS];
  const environment = options.environment ?? process.env.RAMPART_STACK_ENVIRONMENT ?? DEFAULT_STACK_ENVIRONMENT;
  const regionPlan = planRegions(options.regions, ports, services, options.regionPortStep ?? DEFAULT_REGION_PORT_STEP);
  validate(dir, ports, services, regionPlan);
  if (!SERVICE_NAME.test(environment)) throw new Error(`"${environment}" is not an environment name: use lower-case letters, digits and dashes`);

  // `up` twice restarts: configs may have changed, and a half-dead stack is worse than a fresh one.
  await stopLocalStack(dir);
  await mkdir(dir, { recursive: true });

  const alertWebhookUrl = options.alertWebhookUrl ?? defaultAlertWebhookUrl();
  const alertWebhookTokenFile = path.join(dir, 'alertmanager', 'webhook-token');
  const alertWebhookToken = await resolveToken(options.alertWebhookToken, alertWebhookTokenFile);
  const prometheusUrl = `http://127.0.0.1:${ports.prometheus}`;
  const regions = regionPlan?.map(
    (region): StackRegion => ({
      ...region,
      haproxySocket: path.join(dir, haproxyUnit(region.name), 'runtime.sock'),
      frontendUrl: `http://127.0.0.1:${region.ports.frontend}`,
      haproxyExporterUrl: `http://127.0.0.1:${region.ports.haproxyExporter}/metrics`,
      prometheusUrl,
    }),
  );
  const first = regions?.[0];
  const info: LocalStackInfo = {
    dir,
    environment,
    ports: first ? { ...ports, ...first.ports } : ports,
    services: first ? first.services : services,
    components,
    haproxySocket: first ? first.haproxySocket : path.join(dir, 'haproxy', 'runtime.sock'),
    frontendUrl: first ? first.frontendUrl : `http://127.0.0.1:${ports.frontend}`,
    haproxyExporterUrl: first ? first.haproxyExporterUrl : `http://127.0.0.1:${ports.haproxyExporter}/metrics`,
    prometheusUrl,
    alertmanagerUrl: `http://127.0.0.1:${ports.alertmanager}`,
    alertWebhookUrl,
    alertWebhookTokenFile,
    pids: {},
    ...(regions ? { regions } : {}),
    startedAt: new Date().toISOString(),
  };
  for (const haproxy of haproxyInstances(info)) {
    if (haproxy.socket.length > MAX_UNIX_SOCKET_PATH) {
      throw new Error(`HAProxy socket path ${haproxy.socket} is longer than ${MAX_UNIX_SOCKET_PATH} bytes; use a shorter stack dir`);
    }
  }

  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  try {
    for (const component of STACK_COMPONENTS) {
      if (!components.includes(component)) continue;
      if (component === 'haproxy') {
        // One HAProxy after another: each checks its config and ports, and a failure stops the ones already up.
        const pids: number[] = [];
        for (const haproxy of haproxyInstances(info)) pids.push(await startHaproxy(info, haproxy, readyTimeoutMs));
        info.pids.haproxy = pids[0];
      }
      if (component === 'prometheus') info.pids.prometheus = await startPrometheus(info, options.scrapeInterval ?? '1s', readyTimeoutMs);
      if (component === 'alertmanager') info.pids.alertmanager = await startAlertmanager(info, readyTimeoutMs);
      await writeFile(path.join(dir, 'stack.json'), `${JSON.stringify(info, null, 2)}\n`);
    }
  } catch (error) {
    await stopLocalStack(dir).catch(() => undefined);
    throw error;
  }

  return {
    ...info,
    alertWebhookToken,
    stop: (component?: StackComponent) => (component ? stopComponent(dir, component) : stopLocalStack(dir)),
  };
}

/** Stops every component recorded in the directory (pid files). Nothing running is not an error. */
export async function stopLocalStack(dir: string = DEFAULT_STACK_DIR): Promise<void> {
  // Alertmanager first, HAProxy last: traffic keeps flowing to the end.
  for (const component of [...STACK_COMPONENTS].reverse()) await stopComponent(path.resolve(dir), component);
}

/** The region's slots and HAProxy for one service: what a region's local target (or its override) needs. */
export function regionTarget(
  stack: Pick<LocalStackInfo, 'regions'>,
  region: string,
  service: string,
): { stablePort: number; canaryPort: number; haproxySocket: string; prometheusUrl: string; frontendUrl: string } {
  const found = stack.regions?.find((candidate) => candidate.name === region);
  if (!found) throw new Error(`the stack has no region "${region}" (regions: ${stack.regions?.map((r) => r.name).join(', ') || 'none'})`);
  const slots = found.services.find((candidate) => candidate.name === service);
  if (!slots) throw new Error(`region ${region} of the stack has no service "${service}"`);
  return {
    stablePort: slots.stablePort,
    canaryPort: slots.canaryPort,
    haproxySocket: found.haproxySocket,
    prometheusUrl: found.prometheusUrl,
    frontendUrl: found.frontendUrl,
  };
}

/** The stack recorded in the directory, or null if none was started there. */
export async function readLocalStack(dir: string = DEFAULT_STACK_DIR): Promise<LocalStackInfo | null> {
  try {
    return JSON.parse(await readFile(path.join(path.resolve(dir), 'stack.json'), 'utf8')) as LocalStackInfo;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`reading ${path.join(dir, 'stack.json')} failed: ${(error as Error).message}`, { cause: error });
  }
}

export async function localStackStatus(dir: string = DEFAULT_STACK_DIR): Promise<ComponentStatus[]> {
  const info = await readLocalStack(dir);
  if (!info) return [];
  const units = info.components.flatMap((component): Array<{ component: StackComponent; haproxy?: HaproxyInstance }> =>
    component === 'haproxy' ? haproxyInstances(info).map((haproxy) => ({ component, haproxy })) : [{ component }],
  );
  return Promise.all(
    units.map(async ({ component, haproxy }): Promise<ComponentStatus> => {
      const record = await readComponentRecord(info.dir, component, haproxy?.unit ?? component);
      const running = record !== null && isRunning(record);
      const url = haproxy ? `http://127.0.0.1:${haproxy.ports.frontend}` : componentUrl(info, component);
      const ready = running && (haproxy ? await haproxyReady(haproxy) : await isReady(info, component));
      return { component, ...(haproxy?.region ? { region: haproxy.region } : {}), pid: record?.pid ?? null, running, ready, url };
    }),
  );
}

/** Stack ports nothing listens on right now, for tests and benchmarks that run beside other stacks. */
export async function freeStackPorts(): Promise<StackPorts> {
  return { frontend: await freePort(), haproxyExporter: await freePort(), prometheus: await freePort(), alertmanager: await freePort() };
}

// ---------------------------------------------------------------------------------------------------------------
// Configs

/**
 * One HAProxy of the stack: the only one of a stack without regions (files named haproxy*), or one region's
 * (haproxy-<region>*).
 */
export interface HaproxyInstance {
  /** Names its config directory, pid file and log. */
  unit: string;
  region: string | null;
  /** Its config, maps and socket. */
  dir: string;
  ports: RegionPorts;
  services: StackService[];
  socket: string;
  exporterUrl: string;
}

/** The stack's HAProxies: one per region, or the single one. */
export function haproxyInstances(info: Pick<LocalStackInfo, 'dir' | 'ports' | 'services' | 'haproxySocket' | 'haproxyExporterUrl' | 'regions'>): HaproxyInstance[] {
  if (!info.regions) {
    const ports = { frontend: info.ports.frontend, haproxyExporter: info.ports.haproxyExporter };
    return [{ unit: 'haproxy', region: null, dir: path.join(info.dir, 'haproxy'), ports, services: info.services, socket: info.haproxySocket, exporterUrl: info.haproxyExporterUrl }];
  }
  return info.regions.map((region) => ({
    unit: haproxyUnit(region.name),
    region: region.name,
    dir: path.join(info.dir, haproxyUnit(region.name)),
    ports: region.ports,
    services: region.services,
    socket: region.haproxySocket,
    exporterUrl: region.haproxyExporterUrl,
  }));
}

function haproxyUnit(region: string): string {
  return `haproxy-${region}`;
}

export function renderHaproxyConfig(haproxy: Pick<HaproxyInstance, 'dir' | 'ports' | 'services' | 'socket'>): string {
  const mapDir = haproxy.dir;
  const lines = [
    '# Generated by src/stack/local-stack.ts; `tsx scripts/stack.ts up` rewrites it.',
    'global',
    `  stats socket ${haproxy.socket} mode 600 level admin`,
    '  stats timeout 10s',
    '',
    'defaults',
    '  mode http',
    '  timeout connect 1s',
    '  timeout client 30s',
    '  timeout server 30s',
    '  timeout http-keep-alive 10s',
    '  timeout check 1s',
    // A slot whose instance is gone must not fail requests that stable can serve.
    '  retries 2',
    '  option redispatch 1',
    '',
    'frontend rampart',
    `  bind 127.0.0.1:${haproxy.ports.frontend}`,
  ];
  for (const service of haproxy.services) {
    lines.push(`  use_backend ${service.name} if { req.hdr(host),field(1,:),lower -m str ${service.name} ${service.name}.localhost }`);
  }
  lines.push(`  default_backend ${haproxy.services[0]!.name}`, '');
  lines.push(
    'frontend rampart-metrics',
    `  bind 127.0.0.1:${haproxy.ports.haproxyExporter}`,
    '  http-request use-service prometheus-exporter if { path /metrics }',
    '  http-request deny deny_status 404',
    '',
  );
  for (const service of haproxy.services) {
    lines.push(
      `backend ${service.name}`,
      // Round robin follows weights exactly, request by request, so a 25% canary gets 25% of requests.
      '  balance roundrobin',
      '  option httpchk',
      `  http-check send meth GET uri ${service.healthPath ?? '/healthz'}`,
      '  http-check expect rstatus ^2',
      '  default-server check inter 500ms fastinter 250ms downinter 500ms fall 2 rise 1',
      // Internal audience, switched at run time through the map (see src/providers/traffic/haproxy.ts).
      `  acl internal_audience req.hdrs,map_reg(${path.join(mapDir, audienceMapFileName(service.name))}) -m found`,
      `  use-server ${CANARY_SERVER} if internal_audience`,
      // Stable only until a release says otherwise; a restarted HAProxy falls back to this, the safe state.
      `  server ${STABLE_SERVER} 127.0.0.1:${service.stablePort} weight 100`,
      `  server ${CANARY_SERVER} 127.0.0.1:${service.canaryPort} weight 0`,
      '',
    );
  }
  return `${lines.join('\n')}\n`;
}

export function renderPrometheusConfig(
  info: Pick<LocalStackInfo, 'ports' | 'services' | 'environment' | 'regions'>,
  scrapeInterval: string,
  rulesFile: string = RULES_FILE,
): string {
  // Each HAProxy and its instances get their region as a target label; a stack without regions puts none on, so a
  // `region=""` selector (the default queries' for a target without a region) matches its series.
  const haproxies = info.regions
    ? info.regions.map((region) => ({ labels: { environment: info.environment, region: region.name }, exporterPort: region.ports.haproxyExporter, services: region.services }))
    : [{ labels: { environment: info.environment }, exporterPort: info.ports.haproxyExporter, services: info.services }];
  const config = {
    global: { scrape_interval: scrapeInterval, evaluation_interval: scrapeInterval, scrape_timeout: scrapeInterval },
    rule_files: [rulesFile],
    alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${info.ports.alertmanager}`] }] }] },
    scrape_configs: [
      // One HAProxy routes one environment's traffic, so its series all carry that environment: the analysis and the
      // alert rules select on it, and a staging release is never judged on production's counters.
      { job_name: 'haproxy', static_configs: haproxies.map(({ exporterPort, labels }) => ({ targets: [`127.0.0.1:${exporterPort}`], labels })) },
      {
        job_name: 'rampart-instances',
        static_configs: haproxies.flatMap(({ services, labels }) =>
          services.flatMap((service) => [
            { targets: [`127.0.0.1:${service.stablePort}`], labels: { service: service.name, track: STABLE_SERVER, ...labels } },
            { targets: [`127.0.0.1:${service.canaryPort}`], labels: { service: service.name, track: CANARY_SERVER, ...labels } },
          ]),
        ),
      },
    ],
  };
  return `# Generated by src/stack/local-stack.ts.\n${stringifyYaml(config)}`;
}

/** The repository's template with this stack's webhook URL and token file filled in. */
export function renderAlertmanagerConfig(template: string, webhookUrl: string, tokenFile: string): string {
  const config = parseYaml(template) as {
    receivers?: Array<{ name?: string; webhook_configs?: Array<{ url?: string; http_config?: { authorization?: { credentials_file?: string } } }> }>;
  };
  const webhook = config.receivers?.find((receiver) => receiver.name === 'rampart')?.webhook_configs?.[0];
  if (!webhook?.http_config?.authorization) {
    throw new Error(`${ALERTMANAGER_TEMPLATE} needs a receiver "rampart" with a webhook and an authorization block`);
  }
  webhook.url = webhookUrl;
  webhook.http_config.authorization.credentials_file = tokenFile;
  return `# Generated by src/stack/local-stack.ts from deploy/alertmanager/alertmanager.yml.\n${stringifyYaml(config)}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Components

async function startHaproxy(info: LocalStackInfo, haproxy: HaproxyInstance, readyTimeoutMs: number): Promise<number> {
  const binary = requireBinary('haproxy');
  await mkdir(haproxy.dir, { recursive: true });
  await rm(haproxy.socket, { force: true });
  // Empty maps: no internal audience until a release sets one.
  for (const service of haproxy.services) await writeFile(path.join(haproxy.dir, audienceMapFileName(service.name)), '');
  const configFile = path.join(haproxy.dir, 'haproxy.cfg');
  await writeFile(configFile, renderHaproxyConfig(haproxy));
  await check(haproxy.unit, binary, ['-c', '-q', '-f', configFile]);
  await requireFreePorts(haproxy.unit, [haproxy.ports.frontend, haproxy.ports.haproxyExporter]);
  const started = await launch(info.dir, haproxy.unit, binary, ['-f', configFile]);
  await waitReady(started, readyTimeoutMs, () => haproxyReady(haproxy));
  return started.pid;
}

async function haproxyReady(haproxy: HaproxyInstance): Promise<boolean> {
  return (await canConnect(haproxy.socket)) && (await httpOk(haproxy.exporterUrl));
}

async function startPrometheus(info: LocalStackInfo, scrapeInterval: string, readyTimeoutMs: number): Promise<number> {
  const binary = requireBinary('prometheus');
  const promDir = path.join(info.dir, 'prometheus');
  await mkdir(path.join(promDir, 'data'), { recursive: true });
  const configFile = path.join(promDir, 'prometheus.yml');
  await writeFile(configFile, renderPrometheusConfig(info, scrapeInterval));
  const promtool = findBinary('promtool');
  if (promtool) await check('prometheus', promtool, ['check', 'config', configFile]);
  await requireFreePorts('prometheus', [info.ports.prometheus]);
  const launchedAt = Date.now();
  const started = await launch(info.dir, 'prometheus', binary, [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${path.join(promDir, 'data')}`,
    `--web.listen-address=127.0.0.1:${info.ports.prometheus}`,
    '--storage.tsdb.retention.time=2d',
    '--web.enable-lifecycle',
    '--log.level=warn',
  ]);
  await waitReady(started, readyTimeoutMs, () => httpOk(`${info.prometheusUrl}/-/ready`));
  // Ready is not scraping: target discovery is throttled to every 5 s, and a rate() over traffic sent before the
  // first scrape of HAProxy stays empty. Ready here means every HAProxy's counters are being collected, by this
  // Prometheus: a sample kept in the data dir from an earlier run does not count.
  if (info.components.includes('haproxy')) {
    const exporters = haproxyInstances(info).map((haproxy) => `127.0.0.1:${haproxy.ports.haproxyExporter}`);
    await waitReady(started, readyTimeoutMs, async () => {
      const scraped = await scrapedSince(info.prometheusUrl, 'timestamp(up{job="haproxy"} == 1)', launchedAt);
      return exporters.every((instance) => scraped.has(instance));
    });
  }
  return started.pid;
}

async function startAlertmanager(info: LocalStackInfo, readyTimeoutMs: number): Promise<number> {
  const binary = requireBinary('alertmanager');
  const amDir = path.join(info.dir, 'alertmanager');
  await mkdir(path.join(amDir, 'data'), { recursive: true });
  const configFile = path.join(amDir, 'alertmanager.yml');
  await writeFile(configFile, renderAlertmanagerConfig(await readFile(ALERTMANAGER_TEMPLATE, 'utf8'), info.alertWebhookUrl, info.alertWebhookTokenFile));
  const amtool = findBinary('amtool');
  if (amtool) await check('alertmanager', amtool, ['check-config', configFile]);
  await requireFreePorts('alertmanager', [info.ports.alertmanager]);
  const started = await launch(info.dir, 'alertmanager', binary, [
    `--config.file=${configFile}`,
    `--storage.path=${path.join(amDir, 'data')}`,
    `--web.listen-address=127.0.0.1:${info.ports.alertmanager}`,
    // An empty address turns gossip clustering off, so no second port (9094) is taken.
    '--cluster.listen-address=',
    '--log.level=warn',
  ]);
  await waitReady(started, readyTimeoutMs, () => httpOk(`${info.alertmanagerUrl}/-/ready`));
  return started.pid;
}

interface Started extends SupervisedProcess {
  unit: string;
  pid: number;
}

/** Starts one process of the stack; `unit` (the component, or haproxy-<region>) names its pid file and log. */
async function launch(dir: string, unit: string, binary: string, args: string[]): Promise<Started> {
  // Its own process group, so it outlives `tsx scripts/stack.ts up` and is stopped only through its pid file. It
  // inherits the environment of whoever starts the stack, as any daemon started by hand would.
  const started = await spawnDetached({ command: [binary, ...args], cwd: dir, env: process.env, logFile: path.join(dir, `${unit}.log`) }).catch(
    (error: unknown) => {
      throw new Error(`${unit} did not start: ${(error as Error).message}`, { cause: error });
    },
  );
  await writeRecord(pidFile(dir, unit), started.record);
  return { ...started, unit, pid: started.record.pid };
}

async function waitReady(started: Started, timeoutMs: number, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const log = () => `${started.logFile}:\n${logTail(started.logFile, started.logOffset)}`;
  while (Date.now() < deadline) {
    const exit = started.exited();
    if (exit) throw new Error(`${started.unit} ${exit} before it was ready; ${log()}`);
    if (await ready()) return;
    await sleep(100);
  }
  throw new Error(`${started.unit} was not ready within ${timeoutMs} ms; ${log()}`);
}

async function stopComponent(dir: string, component: StackComponent): Promise<void> {
  // HAProxy may be one per region: every pid file of the component, whatever regions the last start had.
  const units = component === 'haproxy' ? await haproxyUnitsIn(dir) : [component];
  for (const unit of units) {
    const record = await readComponentRecord(dir, component, unit);
    if (record) {
      await stopGroup(record, 10_000).catch((error: unknown) => {
        throw new Error(`stopping ${unit} failed: ${(error as Error).message}`, { cause: error });
      });
    }
    await rm(pidFile(dir, unit), { force: true });
  }
}

async function haproxyUnitsIn(dir: string): Promise<string[]> {
  const files = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[];
    throw error;
  });
  return files.flatMap((file) => /^(haproxy(?:-[a-z0-9-]+)?)\.pid$/.exec(file)?.[1] ?? []);
}

async function isReady(info: LocalStackInfo, component: StackComponent): Promise<boolean> {
  if (component === 'haproxy') return (await Promise.all(haproxyInstances(info).map(haproxyReady))).every(Boolean);
  if (component === 'prometheus') return httpOk(`${info.prometheusUrl}/-/ready`);
  return httpOk(`${info.alertmanagerUrl}/-/ready`);
}

function componentUrl(info: LocalStackInfo, component: StackComponent): string {
  if (component === 'haproxy') return info.frontendUrl;
  if (component === 'prometheus') return info.prometheusUrl;
  return info.alertmanagerUrl;
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

interface RegionPlan {
  name: string;
  ports: RegionPorts;
  services: StackService[];
}

/** Each region's name, HAProxy ports and slots: given, or the stack's shifted by the region's index x step. */
function planRegions(regions: LocalStackOptions['regions'], ports: StackPorts, services: StackService[], step: number): RegionPlan[] | null {
  if (regions === undefined) return null;
  if (regions.length === 0) throw new Error('regions: give at least one region, or leave the option out for a stack without regions');
  if (!Number.isInteger(step) || step < 0) throw new RangeError(`regionPortStep ${step} is not a whole number of ports`);
  const names = new Set<string>();
  return regions.map((entry, index) => {
    const region = typeof entry === 'string' ? { name: entry } : entry;
    if (!SERVICE_NAME.test(region.name)) throw new Error(`regions[${index}]: "${region.name}" is not a region name: use lower-case letters, digits and dashes`);
    if (names.has(region.name)) throw new Error(`regions[${index}]: region ${region.name} is listed twice`);
    names.add(region.name);
    const shift = index * step;
    const regionServices = (region.services ?? services.map((service) => ({ ...service, stablePort: service.stablePort + shift, canaryPort: service.canaryPort + shift }))).map(
      (service) => ({ healthPath: '/healthz', ...service }),
    );
    const expected = services.map((service) => service.name).sort().join(', ');
    const given = regionServices.map((service) => service.name).sort().join(', ');
    if (given !== expected) throw new Error(`regions[${index}] (${region.name}): services ${given || 'none'} differ from the stack's (${expected}); every region runs the same backends`);
    return {
      name: region.name,
      ports: { frontend: region.ports?.frontend ?? ports.frontend + shift, haproxyExporter: region.ports?.haproxyExporter ?? ports.haproxyExporter + shift },
      services: regionServices,
    };
  });
}

function validate(dir: string, ports: StackPorts, services: StackService[], regions: RegionPlan[] | null): void {
  if (!SAFE_PATH.test(dir)) throw new Error(`stack dir ${dir} must hold only letters, digits and _ . / @ + - (HAProxy reads file paths from its config)`);
  if (services.length === 0) throw new Error('the stack needs at least one service');
  const used = new Map<number, string>();
  const claim = (port: number, what: string) => {
    if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new RangeError(`${what} port ${port} is not a TCP port`);
    const other = used.get(port);
    if (other) throw new Error(`port ${port} is given to both ${other} and ${what}`);
    used.set(port, what);
  };
  const names = new Set<string>();
  for (const service of services) {
    if (!SERVICE_NAME.test(service.name)) throw new Error(`"${service.name}" is not a service name`);
    if (names.has(service.name)) throw new Error(`service ${service.name} is listed twice`);
    names.add(service.name);
  }
  claim(ports.prometheus, 'prometheus');
  claim(ports.alertmanager, 'alertmanager');
  // The HAProxy and slot ports of each region, or of the one HAProxy: no two processes may want the same port.
  for (const region of regions ?? [{ name: '', ports, services }]) {
    const where = region.name ? `${region.name} ` : '';
    claim(region.ports.frontend, `${where}frontend`);
    claim(region.ports.haproxyExporter, `${where}haproxyExporter`);
    for (const service of region.services) {
      claim(service.stablePort, `${where}${service.name} stable`);
      claim(service.canaryPort, `${where}${service.name} canary`);
      if (service.healthPath && !/^\/\S*$/.test(service.healthPath)) throw new Error(`health path "${service.healthPath}" of ${service.name} must start with / and hold no spaces`);
    }
  }
}

async function resolveToken(given: string | undefined, tokenFile: string): Promise<string> {
  let token = given ?? process.env.RAMPART_ALERTMANAGER_TOKEN;
  const sharedFile = process.env.RAMPART_ALERTMANAGER_TOKEN_FILE;
  if (!token && sharedFile) {
    token = (await readFile(sharedFile, 'utf8').catch((error: Error) => {
      throw new Error(`RAMPART_ALERTMANAGER_TOKEN_FILE ${sharedFile} cannot be read: ${error.message}`, { cause: error });
    })).trim();
  }
  if (!token) token = (await readFile(tokenFile, 'utf8').catch(() => '')).trim();
  if (!token) token = randomBytes(24).toString('base64url');
  if (/\s/.test(token)) throw new Error('the alert webhook token must not contain whitespace');
  await mkdir(path.dirname(tokenFile), { recursive: true });
  await writeFile(tokenFile, token, { mode: 0o600 });
  await chmod(tokenFile, 0o600);
  return token;
}

function findBinary(kind: keyof typeof BINARIES): string | null {
  const { env, names } = BINARIES[kind];
  const override = process.env[env];
  if (override) return override;
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...SYSTEM_BIN_DIRS];
  for (const name of names) {
    for (const directory of dirs) {
      const candidate = path.join(directory, name);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not here
      }
    }
  }
  return null;
}

function requireBinary(component: StackComponent): string {
  const binary = findBinary(component);
  if (!binary) throw new Error(`${component} not found on PATH (${INSTALL_HINT[component]}, or set ${BINARIES[component].env})`);
  return binary;
}

async function check(component: string, tool: string, args: string[]): Promise<void> {
  try {
    await execFileAsync(tool, args, { timeout: 30_000 });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${component} config check failed (${path.basename(tool)} ${args.join(' ')}):\n${`${stdout ?? ''}${stderr ?? ''}`.trim()}`, {
      cause: error,
    });
  }
}

async function requireFreePorts(component: string, ports: number[]): Promise<void> {
  for (const port of ports) {
    if (await canConnect({ port, host: '127.0.0.1' })) {
      throw new Error(`port ${port} needed by ${component} is taken; stop what listens there or choose other ports`);
    }
  }
}


async function httpOk(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

/** The instances whose `timestamp(...)` query answers a time at or after `sinceMs`; none when Prometheus cannot answer. */
async function scrapedSince(prometheusUrl: string, query: string, sinceMs: number): Promise<Set<string>> {
  try {
    const response = await fetch(`${prometheusUrl}/api/v1/query?${new URLSearchParams({ query }).toString()}`, { signal: AbortSignal.timeout(1_000) });
    const answer = (await response.json()) as { data?: { result?: Array<{ metric: { instance?: string }; value: [number, string] }> } };
    return new Set((answer.data?.result ?? []).filter((sample) => Number(sample.value[1]) * 1000 >= sinceMs).map((sample) => sample.metric.instance ?? ''));
  } catch {
    return new Set();
  }
}

function pidFile(dir: string, unit: string): string {
  return path.join(dir, `${unit}.pid`);
}

/**
 * The component's pid record. A bare pid (written by hand, or by a test restarting a component) says nothing of start
 * time: it counts as ours only while the process runs the component's binary, so a stale file never kills a stranger.
 */
async function readComponentRecord(dir: string, component: StackComponent, unit: string = component): Promise<ProcessRecord | null> {
  const record = await readRecord(pidFile(dir, unit));
  if (!record || record.command.length > 0) return record;
  return { ...record, command: [findBinary(component) ?? BINARIES[component].names[0]!] };
}
