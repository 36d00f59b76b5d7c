import { Command, InvalidArgumentError } from 'commander';
import {
  defaultAlertWebhookUrl,
  DEFAULT_DEMO_SERVICE,
  DEFAULT_REGION_PORT_STEP,
  DEFAULT_STACK_DIR,
  DEFAULT_STACK_PORTS,
  STACK_COMPONENTS,
  localStackStatus,
  startLocalStack,
  stopLocalStack,
  type StackComponent,
  type StackService,
} from '../src/stack/local-stack';

// tsx scripts/stack.ts up|down|status: the local HAProxy, Prometheus and Alertmanager for the local target.

function port(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > 65_535) throw new InvalidArgumentError('not a TCP port');
  return parsed;
}

function service(value: string, previous: StackService[] = []): StackService[] {
  const match = /^([a-z0-9-]+):(\d+):(\d+)$/.exec(value);
  if (!match) throw new InvalidArgumentError('use name:stablePort:canaryPort, e.g. demo:18101:18102');
  return [...previous, { name: match[1]!, stablePort: port(match[2]!), canaryPort: port(match[3]!) }];
}

function components(value: string): StackComponent[] {
  const list = value.split(',').map((item) => item.trim());
  for (const item of list) {
    if (!STACK_COMPONENTS.includes(item as StackComponent)) throw new InvalidArgumentError(`unknown component ${item}; use ${STACK_COMPONENTS.join(', ')}`);
  }
  return list as StackComponent[];
}

function regions(value: string): string[] {
  const list = value.split(',').map((item) => item.trim());
  for (const item of list) {
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(item)) throw new InvalidArgumentError(`"${item}" is not a region name (lower-case letters, digits and dashes)`);
  }
  return list;
}

function step(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > 10_000) throw new InvalidArgumentError('a whole number of ports from 1 to 10000');
  return parsed;
}

const program = new Command('stack').description('Run the local stack the local target needs: HAProxy, Prometheus, Alertmanager.');

program
  .command('up')
  .description('write configs under the stack dir, (re)start every component and wait until each is ready')
  .option('--dir <dir>', 'stack directory', DEFAULT_STACK_DIR)
  .option('--service <name:stable:canary>', 'a service behind HAProxy (repeatable)', service)
  .option('--frontend-port <port>', 'HAProxy frontend', port, DEFAULT_STACK_PORTS.frontend)
  .option('--exporter-port <port>', "HAProxy's Prometheus exporter", port, DEFAULT_STACK_PORTS.haproxyExporter)
  .option('--prometheus-port <port>', 'Prometheus', port, DEFAULT_STACK_PORTS.prometheus)
  .option('--alertmanager-port <port>', 'Alertmanager', port, DEFAULT_STACK_PORTS.alertmanager)
  .option('--webhook-url <url>', "Rampart's Alertmanager webhook", defaultAlertWebhookUrl())
  .option('--scrape-interval <duration>', 'Prometheus scrape and rule interval', '1s')
  .option('--only <components>', `comma-separated subset of ${STACK_COMPONENTS.join(',')}`, components)
  .option('--regions <names>', 'comma-separated regions, e.g. r1,r2,r3: one HAProxy per region, every series labelled region', regions)
  .option(
    '--region-port-step <ports>',
    'region n (from 0) takes the HAProxy and service ports plus n times this',
    step,
    DEFAULT_REGION_PORT_STEP,
  )
  .action(async (options) => {
    const stack = await startLocalStack({
      dir: options.dir,
      services: options.service ?? [DEFAULT_DEMO_SERVICE],
      ports: {
        frontend: options.frontendPort,
        haproxyExporter: options.exporterPort,
        prometheus: options.prometheusPort,
        alertmanager: options.alertmanagerPort,
      },
      alertWebhookUrl: options.webhookUrl,
      scrapeInterval: options.scrapeInterval,
      components: options.only,
      ...(options.regions ? { regions: options.regions, regionPortStep: options.regionPortStep } : {}),
    });
    console.log(`stack up in ${stack.dir}`);
    for (const region of stack.regions ?? [{ name: '', ...stack }]) {
      const where = region.name ? `region ${region.name}: ` : '';
      console.log(`  ${where}frontend         ${region.frontendUrl}`);
      console.log(`  ${where}haproxy socket   ${region.haproxySocket}`);
      console.log(`  ${where}haproxy metrics  ${region.haproxyExporterUrl}`);
      for (const s of region.services) console.log(`  ${where}service ${s.name}: stable 127.0.0.1:${s.stablePort}, canary 127.0.0.1:${s.canaryPort}`);
    }
    console.log(`  prometheus       ${stack.prometheusUrl}${stack.regions ? ' (every series labelled region)' : ''}`);
    console.log(`  alertmanager     ${stack.alertmanagerUrl} -> ${stack.alertWebhookUrl}`);
    console.log(`  webhook token    ${stack.alertWebhookTokenFile}`);
  });

program
  .command('down')
  .description('stop every component recorded in the stack dir')
  .option('--dir <dir>', 'stack directory', DEFAULT_STACK_DIR)
  .action(async (options) => {
    await stopLocalStack(options.dir);
    console.log(`stack in ${options.dir} stopped`);
  });

program
  .command('status')
  .description('show each component: pid, running, ready')
  .option('--dir <dir>', 'stack directory', DEFAULT_STACK_DIR)
  .action(async (options) => {
    const status = await localStackStatus(options.dir);
    if (status.length === 0) {
      console.log(`no stack was started in ${options.dir}`);
      return;
    }
    for (const s of status) {
      const name = s.region ? `${s.component} ${s.region}` : s.component;
      console.log(`${name.padEnd(13)} ${s.ready ? 'ready' : s.running ? 'not ready' : 'stopped'}  pid ${s.pid ?? '-'}  ${s.url}`);
    }
    if (status.some((s) => !s.ready)) process.exitCode = 1;
  });

program.parseAsync().catch((error: unknown) => {
  console.error((error as Error).message);
  process.exitCode = 1;
});
