// `npm run bench`: every benchmark in one run, written to bench/results/latest.{json,md}.
// Ratios are measured side by side in the same run because these machines are shared and noisy.
// `npm run bench -- <name>…` runs some of them and replaces only their figures (each keeps its date).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { quietSdkLogs, startTestServer } from '../test/helpers/temporal';
import { benchApi } from './api';
import { benchCapacity } from './capacity';
import { benchCluster, clusterBenchOptionsFromEnv, clusterTableRows, type OpenedTemporal } from './cluster';
import { openBenchCluster } from './cluster-temporal';
import { benchEngine } from './engine';
import { benchJudgment, judgmentTableRows } from './judgment';
import { benchRollback, rollbackTableRows } from './rollback';
import { benchRegions } from './regions';
import { benchSafety, safetyTableRows } from './safety';

async function main(): Promise<void> {
  quietSdkLogs();
  const only = process.argv.slice(2);
  // The cluster benchmark builds and starts a Temporal cluster and takes about 15 minutes: only when named.
  const wanted = (name: string) => (only.length === 0 && name !== 'cluster') || only.includes(name);
  const dir = join(__dirname, 'results');
  const previous = existsSync(join(dir, 'latest.json')) ? (JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8')) as Record<string, unknown>) : {};
  const at = new Date().toISOString();
  const results: Record<string, unknown> = { ...previous, at, machine: { cpus: cpus().length, node: process.version } };
  const runAt = { ...((previous.runAt as Record<string, string> | undefined) ?? {}) };
  // The table's rows per benchmark, so a partial run keeps the others' rows.
  const rows: Record<string, string[]> = { ...((previous.rows as Record<string, string[]> | undefined) ?? {}) };
  let lines: string[] = [];
  const done = (name: string) => {
    rows[name] = lines;
    runAt[name] = at;
    lines = [];
  };

  // Judgment runs on simulated time, without Temporal: no dev server for it alone.
  const server = ['engine', 'safety', 'api', 'capacity', 'rollback', 'regions'].some(wanted) ? await startTestServer() : null;
  try {
    if (wanted('engine')) {
      const engine = await benchEngine(server!);
      results.engine = engine;
      lines.push(
        `| engine efficiency | bare workflow, ${engine.activitiesPerRelease} no-op activities (floor) | ${engine.bareWorkflowsPerSecond}/s | |`,
        `| | release through the lane (update-with-start + child) | ${engine.releasesViaLanePerSecond}/s, ratio ${engine.ratioViaLane} | ≥ 0.9 |`,
        `| | release workflow started directly | ${engine.releasesDirectPerSecond}/s, ratio ${engine.ratioDirect} | ≥ 0.9 |`,
      );
      done('engine');
      console.log('engine', engine);
    }
    if (wanted('safety')) {
      // Abort to safe and detect to safe, on the real HAProxy and Prometheus.
      const safety = await benchSafety(server!, { log: (line) => console.log(line) });
      results.safety = safety;
      lines.push(...safetyTableRows(safety));
      done('safety');
      console.log('safety', JSON.stringify(safety, null, 2));
    }
    if (wanted('api')) {
      const api = await benchApi(server!);
      results.api = api;
      lines.push(
        `| API throughput | bare client.workflow.start of a release (floor) | ${api.bareStartPerSecond}/s, p50 ${api.bareStartLatencyMs.p50} ms, p99 ${api.bareStartLatencyMs.p99} ms | |`,
        `| | in-process ReleaseClient.submit (lane update-with-start) | ${api.submitPerSecond}/s | |`,
        `| | signed CI webhooks, Prefer: respond-async (202 accepted) | ${api.asyncWebhookPerSecond}/s, p50 ${api.asyncWebhookLatencyMs.p50} ms, p99 ${api.asyncWebhookLatencyMs.p99} ms; ratio to bare start ${api.ratioAsyncWebhookToBareStart} | ≥ 0.9 |`,
        `| | signed CI webhooks answered with the lane's decision | ${api.webhookPerSecond}/s, p50 ${api.webhookLatencyMs.p50} ms, p99 ${api.webhookLatencyMs.p99} ms; ratio to bare start ${api.ratioWebhookToBareStart}, to in-process submit ${api.ratioWebhookToSubmit} | |`,
      );
      done('api');
      console.log('api', api);
    }
    if (wanted('capacity')) {
      const levels = await benchCapacity(server!);
      results.capacity = levels;
      for (const level of levels) {
        lines.push(
          `| capacity | ${level.releases} releases baking, analysis every 10 s | RSS ${level.workerRssMiB} MiB, CPU ${level.cpuPercentOfOneCore}% of a core, tick lateness p50 ${level.tickLatenessMs.p50} ms / p99 ${level.tickLatenessMs.p99} ms (${level.analysisRuns} runs in ${level.observedSeconds} s; started in ${level.startSeconds} s) | |`,
        );
      }
      done('capacity');
      console.log('capacity', levels);
    }
    if (wanted('rollback')) {
      // Rollback inside and outside the warm window on the real HAProxy and the demo service, beside one weight change.
      const rollback = await benchRollback(server!, { log: (line) => console.log(line) });
      results.rollback = rollback;
      lines.push(...rollbackTableRows(rollback));
      done('rollback');
      console.log('rollback', JSON.stringify(rollback, null, 2));
    }
    if (wanted('regions')) {
      const regions = await benchRegions(server!);
      results.regions = regions;
      const { sequential: s, rollout: o } = regions;
      lines.push(
        `| regions fan-out | six single-region releases one after another (server work per six: events / workflow tasks / activity tasks) | ${s.events} / ${s.workflowTasks} / ${s.activityTasks} (${s.seconds} s) | |`,
        `| | one six-region rollout, waves ${regions.waves.map((w) => `[${w.join(',')}]`).join(' ')} | ${o.events} / ${o.workflowTasks} / ${o.activityTasks} (${o.seconds} s); +${regions.overheadEventsPercent}% events, +${regions.overheadTasksPercent}% tasks | < 10% |`,
      );
      done('regions');
      console.log('regions', regions);
    }
    if (wanted('judgment')) {
      // The real judge and bake planner over the default strategy, with simulated traffic; the old rule beside it.
      const judgment = await benchJudgment({ log: (line) => console.log(line) });
      results.judgment = { releasesPerCell: judgment.releasesPerCell, seconds: judgment.seconds, file: 'bench/results/judgment.json' };
      lines.push(...judgmentTableRows(judgment));
      done('judgment');
    }
  } finally {
    await server?.stop();
  }
  if (wanted('cluster')) {
    // On its own Temporals, one after the other: the PostgreSQL cluster, then a fresh dev server.
    const openDevServer = async (): Promise<OpenedTemporal> => {
      const devServer = await startTestServer();
      return {
        target: { label: 'dev server', address: devServer.address, namespace: devServer.namespace, serverPids: [devServer.process.pid!], postgresPids: [] },
        close: () => devServer.stop(),
      };
    };
    const chosen = (process.env.BENCH_CLUSTER_TARGETS ?? 'cluster,dev-server').split(',').map((name) => name.trim());
    const temporals = [
      { name: 'cluster', label: 'cluster', open: () => openBenchCluster((line) => console.log(line)) },
      { name: 'dev-server', label: 'dev server', open: openDevServer },
    ].filter((t) => chosen.includes(t.name));
    const cluster = await benchCluster(temporals, clusterBenchOptionsFromEnv(), (line) => console.log(line));
    writeFileSync(join(dir, 'cluster.json'), JSON.stringify({ at, machine: results.machine, ...cluster }, null, 2) + '\n');
    results.cluster = { seconds: cluster.seconds, file: 'bench/results/cluster.json' };
    lines.push(...clusterTableRows(cluster));
    done('cluster');
  }

  results.rows = rows;
  results.runAt = runAt;
  const table = ['| benchmark | figure | value | goal |', '| --- | --- | --- | --- |'];
  for (const name of ['engine', 'safety', 'api', 'capacity', 'rollback', 'regions', 'judgment', 'cluster']) {
    if (rows[name]) table.push(...rows[name].map((row, i) => (i === 0 ? row.replace(/^\| ([^|]+?) \|/, `| $1 (${runAt[name]?.slice(0, 10) ?? ''}) |`) : row)));
  }
  writeFileSync(join(dir, 'latest.json'), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(join(dir, 'latest.md'), table.join('\n') + '\n');
  console.log(table.join('\n'));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
