#!/usr/bin/env node
// rampart: the operator CLI over the HTTP API. Address and token come from RAMPART_API_URL and
// RAMPART_TOKEN, or --url and --token. Exit codes are listed in `rampart --help` and in EXIT.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, CommanderError, Option } from 'commander';
import { parse as parseYaml } from 'yaml';
import { isTerminal, type CommandName, type ReleaseStatus } from '../engine/release-state';
import type { DoraFigures } from '../engine/dora';
import type { DrillResult } from '../engine/drill';
import type { DrillScheduleSummary } from '../temporal/drills';
import type { RegionView, ReleaseSummary } from '../temporal/releases';
import type { RolloutStatus } from '../../workflows/definitions';
import { ApiClient, CliError, EXIT } from './client';
import { formatDora, formatDrill, formatDrillResults, formatDrills, formatList, formatRollout, formatStatus, formatStatusLine, formatWhere } from './format';

interface GlobalOptions {
  url: string;
  token?: string;
  json?: boolean;
  timeout: string;
}

const EXIT_HELP = `
Exit codes:
  0  done
  1  error: the API unreachable, a server error, an unexpected answer
  2  usage: bad arguments, an unreadable or invalid spec, a request the API found invalid
  3  rejected: the command makes no sense in the release's state now (the message says why),
     or the service has a drill schedule already
  4  not found: no such release, rollout or drill schedule (or a service without regions for where)
  5  not authenticated (RAMPART_TOKEN missing or wrong) or not allowed (role too low)
  6  status --watch: the release finished without being promoted

Environment:
  RAMPART_API_URL  the API (default http://127.0.0.1:8080)
  RAMPART_TOKEN    an API token (Authorization: Bearer)

A release is named release/<service>/<environment>/<version> or <service>/<environment>/<version>;
a rollback by the id it was answered with, rollback/<service>/<environment>/<version>/<id>.
A drill schedule is named by its service and environment (default production).`;

/** The release's path on the API from either form of its name. */
export function releaseIdFrom(name: string): string {
  // A rollback's id is used as it is: it names no release path of its own.
  if (/^rollback\/[^/]+\/[^/]+\/.+\/[0-9a-f]{8}$/.test(name)) return name;
  const bare = name.startsWith('release/') ? name.slice('release/'.length) : name;
  const first = bare.indexOf('/');
  const second = bare.indexOf('/', first + 1);
  if (first <= 0 || second <= first + 1 || second === bare.length - 1) {
    throw new CliError(EXIT.usage, `"${name}" is not a release: use <service>/<environment>/<version> or release/<service>/<environment>/<version>`);
  }
  return `release/${bare}`;
}

const releasePath = (name: string) => `/v1/releases/${encodeURIComponent(releaseIdFrom(name))}`;

/** A rollout's path on the API from either form of its name. */
export function rolloutIdFrom(name: string): string {
  const bare = name.startsWith('rollout/') ? name.slice('rollout/'.length) : name;
  const first = bare.indexOf('/');
  const second = bare.indexOf('/', first + 1);
  if (first <= 0 || second <= first + 1 || second === bare.length - 1) {
    throw new CliError(EXIT.usage, `"${name}" is not a rollout: use <service>/<environment>/<version> or rollout/<service>/<environment>/<version>`);
  }
  return `rollout/${bare}`;
}

const rolloutPath = (name: string) => `/v1/rollouts/${encodeURIComponent(rolloutIdFrom(name))}`;

function readSpec(file: string, shape = 'a release spec is a mapping with service, version, …'): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(EXIT.usage, `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let spec: unknown;
  try {
    spec = parseYaml(text, { uniqueKeys: true });
  } catch (error) {
    throw new CliError(EXIT.usage, `${file} is not valid YAML or JSON: ${(error as Error).message}`);
  }
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) throw new CliError(EXIT.usage, `${file}: ${shape}`);
  return spec as Record<string, unknown>;
}

function positiveInt(name: string) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new CliError(EXIT.usage, `${name} must be a positive whole number, not "${value}"`);
    return n;
  };
}

function fraction(name: string) {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new CliError(EXIT.usage, `${name} must be a number from 0 to 1, not "${value}"`);
    return n;
  };
}

const drillPath = (service: string, environment: string) => `/v1/drills/${encodeURIComponent(service)}/${encodeURIComponent(environment)}`;

interface DrillCreateOptions {
  service?: string;
  environment?: string;
  spec?: string;
  every?: string;
  cron?: string;
  errorRate?: string;
  latencyMs?: string;
  slo?: string;
  whenBusy?: string;
  maxWait?: string;
  overlap?: string;
  paused?: boolean;
}

/** A drill schedule from a file (the API's body, YAML or JSON) and/or flags; flags win. */
export function drillScheduleFrom(file: string | undefined, options: DrillCreateOptions): Record<string, unknown> {
  const body: Record<string, unknown> = file ? readSpec(file, 'a drill schedule is a mapping with service, every or cron, spec, fault, …') : {};
  if (options.service) body.service = options.service;
  if (options.environment) body.environment = options.environment;
  if (options.spec) body.spec = readSpec(options.spec, 'a drill’s release spec is a mapping with target, strategy, analysis, …');
  if (options.every) {
    body.every = options.every;
    if (!options.cron) delete body.cron;
  }
  if (options.cron) {
    body.cron = options.cron;
    if (!options.every) delete body.every;
  }
  if (options.errorRate !== undefined || options.latencyMs !== undefined) {
    const fault = { ...(body.fault as Record<string, unknown> | undefined) };
    if (options.errorRate !== undefined) fault.errorRate = fraction('--error-rate')(options.errorRate);
    if (options.latencyMs !== undefined) {
      const latency = Number(options.latencyMs);
      if (!Number.isFinite(latency) || latency < 0) throw new CliError(EXIT.usage, `--latency-ms must be a number of milliseconds, not "${options.latencyMs}"`);
      fault.latencyMs = latency;
    }
    body.fault = fault;
  }
  if (options.slo) body.slo = options.slo;
  if (options.whenBusy) body.whenBusy = options.whenBusy;
  if (options.maxWait) body.maxWait = options.maxWait;
  if (options.overlap) body.overlap = options.overlap;
  if (options.paused) body.paused = true;
  if (!body.service) throw new CliError(EXIT.usage, 'which service? give --service or a file with service:');
  if (!body.every && !body.cron) throw new CliError(EXIT.usage, 'when? give --every (e.g. 1h) or --cron (e.g. "0 3 * * 1"), or a file with every: or cron:');
  return body;
}

export function buildProgram(out: (text: string) => void, err: (text: string) => void): Command {
  const program = new Command();
  program
    .name('rampart')
    .description('Start, watch and steer Rampart releases through the HTTP API.')
    .addOption(new Option('--url <url>', 'API address').env('RAMPART_API_URL').default('http://127.0.0.1:8080'))
    .addOption(new Option('--token <token>', 'API token').env('RAMPART_TOKEN'))
    .option('--json', 'print the API answer as JSON')
    .option('--timeout <ms>', 'how long to wait for each answer', '120000')
    .addHelpText('after', EXIT_HELP)
    .configureOutput({ writeOut: out, writeErr: err })
    .exitOverride()
    .showHelpAfterError('(rampart --help lists the commands)');

  const client = (command: Command) => {
    const options = command.optsWithGlobals<GlobalOptions>();
    return {
      api: new ApiClient({ url: options.url, token: options.token, timeoutMs: positiveInt('--timeout')(options.timeout) }),
      json: options.json === true,
    };
  };
  const print = (json: boolean, body: unknown, human: () => string) => out(`${json ? JSON.stringify(body, null, 2) : human()}\n`);

  program
    .command('start')
    .description('start a release from a spec file (YAML or JSON)')
    .argument('<spec-file>', 'the release spec')
    .option('--service <name>', 'override the spec’s service')
    .option('--environment <name>', 'override the spec’s environment')
    .option('--version <version>', 'override the spec’s version (an image digest or git SHA)')
    .action(async (file: string, options: { service?: string; environment?: string; version?: string }, command: Command) => {
      const spec = readSpec(file);
      if (options.service) spec.service = options.service;
      if (options.environment) spec.environment = options.environment;
      if (options.version) spec.version = options.version;
      const { api, json } = client(command);
      const { body } = await api.request<{ releaseId: string; rolloutId?: string; disposition: string; supersedes?: string }>('POST', '/v1/releases', spec);
      print(json, body, () => {
        const said = { started: 'started', queued: 'queued: it starts once the release it supersedes has rolled back', duplicate: 'already submitted' }[body.disposition] ?? body.disposition;
        const follow = body.rolloutId ? ` (a rollout across regions: rampart rollout status ${body.rolloutId})` : '';
        return `${body.rolloutId ?? body.releaseId} ${said}${body.supersedes ? ` (supersedes ${body.supersedes})` : ''}${follow}`;
      });
    });

  program
    .command('list')
    .description('list releases, newest first')
    .option('--service <name>', 'only this service')
    .option('--environment <name>', 'only this environment')
    .addOption(new Option('--status <status>', 'only releases in this state').choices(['running', 'completed', 'failed', 'cancelled', 'terminated', 'timed-out']))
    .option('--limit <n>', 'at most this many', '50')
    .action(async (options: { service?: string; environment?: string; status?: string; limit: string }, command: Command) => {
      const query = new URLSearchParams();
      if (options.service) query.set('service', options.service);
      if (options.environment) query.set('environment', options.environment);
      if (options.status) query.set('status', options.status);
      query.set('limit', String(positiveInt('--limit')(options.limit)));
      const { api, json } = client(command);
      const { body } = await api.request<{ releases: ReleaseSummary[] }>('GET', `/v1/releases?${query}`);
      print(json, body, () => formatList(body.releases));
    });

  program
    .command('status')
    .description('show a release; --watch follows it until it finishes')
    .argument('<release>', 'release/<service>/<environment>/<version> or <service>/<environment>/<version>')
    .option('-w, --watch', 'redraw as the release moves; ends when it finishes (exit 0 promoted, 6 otherwise)')
    .option('--interval <ms>', 'how often --watch asks', '1000')
    .action(async (name: string, options: { watch?: boolean; interval: string }, command: Command) => {
      const { api, json } = client(command);
      const path = releasePath(name);
      if (!options.watch) {
        const { body } = await api.request<ReleaseStatus>('GET', path);
        print(json, body, () => formatStatus(body));
        return;
      }
      const interval = positiveInt('--interval')(options.interval);
      const tty = process.stdout.isTTY === true && !json;
      let last = '';
      for (;;) {
        const { body } = await api.request<ReleaseStatus>('GET', path);
        if (tty) {
          out(`\x1b[H\x1b[2J${formatStatus(body, Math.max(5, (process.stdout.rows ?? 30) - 10))}\n`);
        } else {
          const line = json ? JSON.stringify(body) : formatStatusLine(body);
          const key = json ? line : `${body.state}|${body.step?.name}|${body.routes.canaryWeight}|${body.pause?.reason}|${body.outcome?.result}`;
          if (key !== last) out(`${line}\n`);
          last = key;
        }
        if (isTerminal(body.state)) {
          if (body.state !== 'promoted') throw new CliError(EXIT.notPromoted, `${body.releaseId} ${body.state}: ${body.outcome?.reason ?? ''}`);
          return;
        }
        await sleep(interval);
      }
    });

  program
    .command('rollback')
    .description('roll a service back to a known-good version on the fast path (default: the version stable before the current one)')
    .argument('<service>', 'the service')
    .option('-e, --env <name>', 'its environment', 'production')
    .option('--to <version>', 'a version that was stable in the lane (refused with the allowed list otherwise)')
    .option('--region <name>', "a region of a service released in rollouts: that region's lane rolls back")
    .requiredOption('-r, --reason <text>', 'why (recorded with your token name in the rollback history)')
    .action(async (service: string, options: { env: string; to?: string; region?: string; reason: string }, command: Command) => {
      const { api, json } = client(command);
      const { body } = await api.request<{ releaseId: string; disposition: string; from: string | null; to: string; supersedes?: string }>(
        'POST',
        `/v1/services/${encodeURIComponent(service)}/${encodeURIComponent(options.env)}/rollback`,
        { reason: options.reason, ...(options.to ? { to: options.to } : {}), ...(options.region ? { region: options.region } : {}) },
      );
      print(json, body, () => {
        const said = { started: 'started', queued: 'queued: it starts once the release it supersedes has rolled back', duplicate: 'already under way' }[body.disposition] ?? body.disposition;
        return `${body.releaseId} ${said}: ${body.from ?? 'nothing'} -> ${body.to}${body.supersedes ? ` (supersedes ${body.supersedes})` : ''}`;
      });
    });

  const commands: [CommandName, string][] = [
    ['pause', 'pause a release: traffic stays where it is, no bake advances'],
    ['resume', 'resume a paused release'],
    ['promote', 'skip the rest of the current bake and go to the next step'],
    ['abort', 'roll the release back to the stable version (answers once the rollback is done)'],
    ['approve', 'approve the manual gate the release waits at'],
  ];
  for (const [name, description] of commands) {
    program
      .command(name)
      .description(description)
      .argument('<release>', 'release/<service>/<environment>/<version> or <service>/<environment>/<version>')
      .requiredOption('-r, --reason <text>', 'why (recorded with your token name in the release history)')
      .option('-s, --step <name>', 'the step the command is meant for: refused if the release has moved on (promote: the current step by default)')
      .action(async (release: string, options: { reason: string; step?: string }, command: Command) => {
        const { api, json } = client(command);
        // A promote skips the bake in progress: bind it to the step the operator is looking at now.
        let step = options.step;
        if (name === 'promote' && step === undefined) step = (await api.request<ReleaseStatus>('GET', releasePath(release))).body.step?.name;
        const { status, body } = await api.request<ReleaseStatus | { accepted: true; detail: string; status: ReleaseStatus }>('POST', `${releasePath(release)}/${name}`, {
          reason: options.reason,
          ...(step ? { step } : {}),
        });
        print(json, body, () => ('accepted' in body && status === 202 ? `${body.detail}\n${formatStatus(body.status)}` : formatStatus(body as ReleaseStatus)));
      });
  }

  program
    .command('where')
    .description('what runs where: per region, the stable version, the release in flight and its step, and when it last changed')
    .argument('<service>', 'the service')
    .option('-e, --env <environment>', 'the environment', 'production')
    .action(async (service: string, options: { env: string }, command: Command) => {
      const { api, json } = client(command);
      const { body } = await api.request<{ service: string; environment: string; regions: RegionView[] }>(
        'GET',
        `/v1/services/${encodeURIComponent(service)}/${encodeURIComponent(options.env)}/regions`,
      );
      print(json, body, () => formatWhere(body.regions));
    });

  const rollout = program
    .command('rollout')
    .description('rollouts across regions: status, pause, resume, abort, or a command on one region (--region)')
    .addHelpText('after', '\nA rollout is named rollout/<service>/<environment>/<version> or <service>/<environment>/<version>.');
  rollout
    .command('status')
    .description("show a rollout: its waves and each region's state")
    .argument('<rollout>', 'rollout/<service>/<environment>/<version> or <service>/<environment>/<version>')
    .action(async (name: string, _options: unknown, command: Command) => {
      const { api, json } = client(command);
      const { body } = await api.request<RolloutStatus>('GET', rolloutPath(name));
      print(json, body, () => formatRollout(body));
    });
  const rolloutCommands: [CommandName, string][] = [
    ['pause', 'pause the rollout (its releases in flight, and the next wave); with --region, that region’s release only'],
    ['resume', 'resume the rollout; with --region, that region’s release'],
    ['abort', 'abort the rollout: every region returns to its previous version; with --region, abort that region’s release (the failure policy applies)'],
    ['promote', 'with --region: skip the rest of the bake of that region’s release'],
    ['approve', 'with --region: approve the gate that region’s release waits at'],
  ];
  for (const [name, description] of rolloutCommands) {
    rollout
      .command(name)
      .description(description)
      .argument('<rollout>', 'rollout/<service>/<environment>/<version> or <service>/<environment>/<version>')
      .option('--region <name>', 'act on this region’s release only')
      .requiredOption('-r, --reason <text>', 'why (recorded with your token name)')
      .action(async (name_: string, options: { region?: string; reason: string }, command: Command) => {
        const { api, json } = client(command);
        if (!options.region) {
          if (name === 'promote' || name === 'approve') throw new CliError(EXIT.usage, `${name} acts on one region's release: add --region <name>`);
          const { body } = await api.request<RolloutStatus>('POST', `${rolloutPath(name_)}/${name}`, { reason: options.reason });
          print(json, body, () => formatRollout(body));
          return;
        }
        const { status, body } = await api.request<ReleaseStatus | { accepted: true; detail: string; status: ReleaseStatus }>(
          'POST',
          `${rolloutPath(name_)}/regions/${encodeURIComponent(options.region)}/${name}`,
          { reason: options.reason },
        );
        print(json, body, () => ('accepted' in body && status === 202 ? `${body.detail}\n${formatStatus(body.status)}` : formatStatus(body as ReleaseStatus)));
      });
  }

  const drill = program
    .command('drill')
    .description('rollback drills on a schedule: create, list, status, pause, resume, trigger, delete, results')
    .addHelpText('after', '\nA drill releases a build carrying a fault, lets the engine roll it back, and records time to detect and time to safe.');
  const schedule = (command: Command) =>
    command.argument('<service>', 'the drilled service').argument('[environment]', 'its environment', 'production');

  drill
    .command('create')
    .description('create a drill schedule from a file (the API body, YAML or JSON) and/or flags; flags win')
    .argument('[file]', 'the drill schedule: service, environment, spec, fault, slo, whenBusy, maxWait, every|cron, overlap, paused')
    .option('--service <name>', 'the service to drill')
    .option('--environment <name>', 'its environment (default production)')
    .option('--spec <file>', 'the release spec to drill with (target, strategy, analysis), YAML or JSON')
    .option('--every <interval>', 'a drill every interval, e.g. 1h, 30m')
    .option('--cron <expression>', 'a drill on a cron schedule, e.g. "0 3 * * 1"')
    .option('--error-rate <0..1>', 'share of requests the drill build fails (default 0.5)')
    .option('--latency-ms <ms>', 'latency of the drill build')
    .option('--slo <duration>', 'time to safe a passing drill stays under (default 2m)')
    .addOption(new Option('--when-busy <what>', 'with a release in flight: skip the drill or wait for the lane (default skip)').choices(['skip', 'wait']))
    .option('--max-wait <duration>', 'with --when-busy wait: how long to wait before skipping (default 10m)')
    .addOption(new Option('--overlap <policy>', 'a drill due while the last still runs (default skip)').choices(['skip', 'buffer-one', 'cancel-other', 'allow-all']))
    .option('--paused', 'create the schedule paused')
    .action(async (file: string | undefined, options: DrillCreateOptions, command: Command) => {
      const body = drillScheduleFrom(file, options);
      const { api, json } = client(command);
      const answer = await api.request<DrillScheduleSummary>('POST', '/v1/drills', body);
      print(json, answer.body, () => `created ${formatDrill(answer.body)}`);
    });

  drill
    .command('list')
    .description('list the drill schedules')
    .action(async (_options: unknown, command: Command) => {
      const { api, json } = client(command);
      const { body } = await api.request<{ drills: DrillScheduleSummary[] }>('GET', '/v1/drills');
      print(json, body, () => formatDrills(body.drills));
    });

  schedule(drill.command('status').description('show a drill schedule: paused or not, next and recent runs')).action(
    async (service: string, environment: string, _options: unknown, command: Command) => {
      const { api, json } = client(command);
      const { body } = await api.request<DrillScheduleSummary>('GET', drillPath(service, environment));
      print(json, body, () => formatDrill(body));
    },
  );

  for (const [name, description] of [
    ['pause', 'pause a drill schedule: no drill runs until it is resumed'],
    ['resume', 'resume a paused drill schedule'],
  ] as const) {
    schedule(drill.command(name).description(description))
      .requiredOption('-r, --reason <text>', 'why (recorded with your token name as the schedule’s note)')
      .action(async (service: string, environment: string, options: { reason: string }, command: Command) => {
        const { api, json } = client(command);
        const { body } = await api.request<DrillScheduleSummary>('POST', `${drillPath(service, environment)}/${name}`, { reason: options.reason });
        print(json, body, () => formatDrill(body));
      });
  }

  schedule(drill.command('trigger').description('run a drill now (also while paused); see `drill results` for how it went')).action(
    async (service: string, environment: string, _options: unknown, command: Command) => {
      const { api, json } = client(command);
      const { body } = await api.request<DrillScheduleSummary>('POST', `${drillPath(service, environment)}/trigger`);
      print(json, body, () => `drill triggered\n${formatDrill(body)}`);
    },
  );

  schedule(drill.command('delete').description('delete a drill schedule (admin); its past results stay')).action(
    async (service: string, environment: string, _options: unknown, command: Command) => {
      const { api, json } = client(command);
      await api.request<undefined>('DELETE', drillPath(service, environment));
      const scheduleId = `drill/${service}/${environment}`;
      print(json, { deleted: scheduleId }, () => `deleted ${scheduleId}`);
    },
  );

  drill
    .command('results')
    .description('finished drills, newest first: timings, pass or fail, and why')
    .option('--service <name>', 'only this service')
    .option('--limit <n>', 'at most this many', '20')
    .action(async (options: { service?: string; limit: string }, command: Command) => {
      const query = new URLSearchParams();
      if (options.service) query.set('service', options.service);
      query.set('limit', String(positiveInt('--limit')(options.limit)));
      const { api, json } = client(command);
      const { body } = await api.request<{ results: DrillResult[] }>('GET', `/v1/drills/results?${query}`);
      print(json, body, () => formatDrillResults(body.results));
    });

  program
    .command('dora')
    .description('the four DORA keys per service: deployment frequency, lead time, change failure rate, recovery time')
    .option('--service <name>', 'only this service')
    .option('--environment <name>', 'only this environment')
    .option('--days <n>', 'the window, in days (1 to 365)', '30')
    .action(async (options: { service?: string; environment?: string; days: string }, command: Command) => {
      const days = positiveInt('--days')(options.days);
      if (days > 365) throw new CliError(EXIT.usage, `--days is at most 365, not ${days}`);
      const query = new URLSearchParams();
      if (options.service) query.set('service', options.service);
      if (options.environment) query.set('environment', options.environment);
      query.set('days', String(days));
      const { api, json } = client(command);
      const { body } = await api.request<{ figures: DoraFigures[] }>('GET', `/v1/dora?${query}`);
      print(json, body, () => formatDora(body.figures, days));
    });
  return program;
}

export async function run(argv: string[], out = (t: string) => void process.stdout.write(t), err = (t: string) => void process.stderr.write(t)): Promise<number> {
  const program = buildProgram(out, err);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help' ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof CliError) {
      err(`rampart: ${error.message}\n${error.details.map((d) => `  ${d}\n`).join('')}`);
      return error.exitCode;
    }
    err(`rampart: ${(error as Error).message ?? String(error)}\n`);
    return EXIT.error;
  }
}

if (require.main === module) {
  void run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
