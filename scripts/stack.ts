import { Command, InvalidArgumentError } from 'commander';
import {
  defaultAlertWebhookUrl,
  DEFAULT_DEMO_SERVICE,
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
    });
    console.log(`stack up in ${stack.dir}`);
    console.log(`  frontend         ${stack.frontendUrl}`);
    console.log(`  haproxy socket   ${stack.haproxySocket}`);
    console.log(`  haproxy metrics  ${stack.haproxyExporterUrl}`);
    console.log(`  prometheus       ${stack.prometheusUrl}`);
    console.log(`  alertmanager     ${stack.alertmanagerUrl} -> ${stack.alertWebhookUrl}`);
    console.log(`  webhook token    ${stack.alertWebhookTokenFile}`);
    for (const s of stack.services) console.log(`  service ${s.name}: stable 127.0.0.1:${s.stablePort}, canary 127.0.0.1:${s.canaryPort}`);
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
      console.log(`${s.component.padEnd(13)} ${s.ready ? 'ready' : s.running ? 'not ready' : 'stopped'}  pid ${s.pid ?? '-'}  ${s.url}`);
    }
    if (status.some((s) => !s.ready)) process.exitCode = 1;
  });

program.parseAsync().catch((error: unknown) => {
  console.error((error as Error).message);
  process.exitCode = 1;
});
