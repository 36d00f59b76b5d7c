import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_CLUSTER_DIR, down, status, up } from '../src/cluster/cluster';
import { renderCommittedFiles } from '../src/cluster/config';
import { projectPath } from '../src/config';
import { PROJECT_ROOT } from '../src/paths';

// tsx scripts/cluster.ts up|down|status|render: a Temporal cluster on PostgreSQL with Rampart's workers and API replicas.

function count(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > 32) throw new InvalidArgumentError('a whole number from 1 to 32');
  return parsed;
}

function port(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > 65_535) throw new InvalidArgumentError('not a TCP port');
  return parsed;
}

const program = new Command('cluster').description('Run Rampart on a Temporal cluster on PostgreSQL on this machine.');
const defaultDir = projectPath(DEFAULT_CLUSTER_DIR);

program
  .command('up')
  .description('build the Temporal server once, then start PostgreSQL, the four Temporal services, the workers, the API replicas and HAProxy, and wait until each is ready')
  .option('--dir <dir>', 'data, configs, logs and process records', defaultDir)
  .option('--workers <n>', 'release workers', count)
  .option('--apis <n>', 'API replicas behind HAProxy', count)
  .option('--shards <n>', 'history shards (fixed when the database is created; default 4)', count)
  .option('--namespace <name>', 'Temporal namespace')
  .option('--postgres-port <port>', 'PostgreSQL (first up only; default: a free port)', port)
  .option('--frontend-port <port>', 'Temporal frontend gRPC (first up only)', port)
  .option('--api-port <port>', "HAProxy's API frontend (first up only)", port)
  .action(async (options) => {
    const cluster = await up({
      dir: options.dir,
      workers: options.workers,
      apis: options.apis,
      shards: options.shards,
      namespace: options.namespace,
      ports: { postgres: options.postgresPort, frontend: options.frontendPort, api: options.apiPort },
      log: (line) => console.log(`[cluster] ${line}`),
    });
    console.log(`cluster up in ${cluster.dir}`);
    console.log(`  export TEMPORAL_ADDRESS=${cluster.address}   # namespace ${cluster.namespace}`);
    console.log(`  API (HAProxy)  ${cluster.apiUrl}`);
    if (cluster.apiTokenFile) console.log(`  admin token    export RAMPART_TOKEN=$(cut -d: -f3 ${cluster.apiTokenFile})`);
  });

program
  .command('down')
  .description('stop every component recorded in the cluster dir')
  .option('--dir <dir>', 'cluster directory', defaultDir)
  .option('--purge', 'remove the data too (PostgreSQL, logs, ports)')
  .action(async (options) => {
    await down(options.dir, { purge: options.purge });
    console.log(`cluster in ${options.dir} stopped${options.purge ? ' and removed' : ''}`);
  });

program
  .command('status')
  .description('show each process: pid, running, ready, where it answers')
  .option('--dir <dir>', 'cluster directory', defaultDir)
  .action(async (options) => {
    const list = await status(options.dir);
    if (list.length === 0) {
      console.log(`no cluster was started in ${options.dir}`);
      process.exitCode = 1;
      return;
    }
    for (const s of list) {
      console.log(`${s.name.padEnd(18)} ${(s.ready ? 'ready' : s.running ? 'not ready' : 'stopped').padEnd(9)}  pid ${String(s.pid ?? '-').padEnd(7)}  ${s.endpoint}`);
    }
    if (list.some((s) => !s.ready)) process.exitCode = 1;
  });

program
  .command('render')
  .description('write the generated configs that docker-compose.yml mounts (deploy/compose/...)')
  .action(() => {
    for (const [file, text] of Object.entries(renderCommittedFiles())) {
      const target = path.join(PROJECT_ROOT, file);
      mkdirSync(path.dirname(target), { recursive: true });
      writeFileSync(target, text);
      console.log(`wrote ${file}`);
    }
  });

program.parseAsync().catch((error: unknown) => {
  console.error((error as Error).message);
  process.exitCode = 1;
});
