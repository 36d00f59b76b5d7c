// The Temporal cluster on PostgreSQL the cluster benchmark measures: brought up by src/cluster/ in a
// directory of its own, fresh each run, and purged afterwards.
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { down, up } from '../src/cluster/cluster';
import type { OpenedTemporal } from './cluster';

export async function openBenchCluster(log: (line: string) => void): Promise<OpenedTemporal> {
  // PostgreSQL runs as its own user, which must reach its data directory.
  const dir = mkdtempSync(join(tmpdir(), 'rampart-bench-cluster-'));
  chmodSync(dir, 0o755);
  const started = performance.now();
  try {
    // The smallest Rampart layer the cluster module allows: the benchmark starts the workers it
    // measures itself (the same way on the dev server), so the cluster's own are stopped once up.
    const options = { dir, workers: 1, apis: 1, log: (line: string) => log(`cluster: ${line}`) };
    // On a fresh database the four services race to write the cluster metadata and one may exit on
    // the duplicate key (seen once here); `up` again starts only what is not running.
    const cluster = await up(options).catch((error: Error) => {
      log(`cluster: up failed (${error.message.split('\n')[0]}); once more`);
      return up(options);
    });
    const components = await cluster.status();
    for (const c of components.filter((c) => c.kind === 'worker' || c.kind === 'api' || c.kind === 'api-lb')) await cluster.stop(c.name);
    const pids = (kind: string) => components.filter((c) => c.kind === kind && c.pid !== null).map((c) => c.pid!);
    log(`cluster: up in ${Math.round((performance.now() - started) / 1_000)} s (${components.filter((c) => c.kind === 'temporal').length} Temporal services, ${cluster.state.shards} history shards)`);
    return {
      target: { label: 'cluster', address: cluster.address, namespace: cluster.namespace, serverPids: pids('temporal'), postgresPids: pids('postgres') },
      close: () => down(dir, { purge: true }),
    };
  } catch (error) {
    await down(dir, { purge: true }).catch(() => undefined);
    throw error;
  }
}
