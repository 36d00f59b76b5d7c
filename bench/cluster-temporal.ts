// The Temporal cluster on PostgreSQL the cluster benchmark measures (brought up by src/cluster/).
import type { OpenedTemporal } from './cluster';

export async function openBenchCluster(log: (line: string) => void): Promise<OpenedTemporal> {
  log('cluster: not available yet');
  throw new Error('the cluster module (src/cluster) is not merged yet');
}
