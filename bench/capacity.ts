// Capacity: how many releases one worker holds in flight (baking, analysis every 10 s), and what it
// costs: worker memory, CPU, and how late the analysis ticks run.
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { DevServer } from '../src/temporal/dev-server';
import { ReleaseClient } from '../src/temporal/releases';
import { fastSpec } from '../test/helpers/specs';
import { sha } from '../test/helpers/temporal';
import { createReleaseWorker } from '../workers/worker';
import { inPool, percentile, round } from './stats';

export interface CapacityLevel {
  releases: number;
  startSeconds: number;
  observedSeconds: number;
  analysisRuns: number;
  tickLatenessMs: { p50: number; p99: number; max: number };
  workerRssMiB: number;
  heapUsedMiB: number;
  cpuPercentOfOneCore: number;
}

const INTERVAL_MS = 10_000;

export async function benchCapacity(server: DevServer, levels: number[] = [200, 1000], observeMs = 60_000): Promise<CapacityLevel[]> {
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const releases = new ReleaseClient(client);
  // The worker runs in this process, so process figures are the worker's (plus a client, which is small).
  const worker = await createReleaseWorker({ address: server.address, overrides: { maxCachedWorkflows: 2_000 } });
  const running = worker.run();
  const results: CapacityLevel[] = [];
  try {
    for (const count of levels) {
      const run = randomUUID().slice(0, 8);
      const ids: string[] = [];
      const t0 = performance.now();
      await inPool(
        Array.from({ length: count }, (_, i) => i),
        50,
        async (i) => {
          const spec = fastSpec(`cap-${run}-${i}`, sha(`${run}-${i}`), { bake: { 'canary-5': '30m' }, analysis: { interval: `${INTERVAL_MS}ms` } });
          ids.push((await releases.submit(spec)).releaseId);
        },
      );
      const startSeconds = (performance.now() - t0) / 1_000;

      const cpu0 = process.cpuUsage();
      const w0 = performance.now();
      await new Promise((resolve) => setTimeout(resolve, observeMs));
      const cpu = process.cpuUsage(cpu0);
      const wall = performance.now() - w0;
      const memory = process.memoryUsage();

      const lateness: number[] = [];
      let runs = 0;
      await inPool(ids, 20, async (id) => {
        const status = await releases.status(id);
        const times = status.analysis.filter((a) => a.step === 'canary-5').map((a) => Date.parse(a.at));
        runs += times.length;
        for (let i = 1; i < times.length; i++) lateness.push(Math.max(0, times[i]! - times[i - 1]! - INTERVAL_MS));
      });
      results.push({
        releases: count,
        startSeconds: round(startSeconds, 1),
        observedSeconds: round(wall / 1_000, 1),
        analysisRuns: runs,
        tickLatenessMs: { p50: percentile(lateness, 50), p99: percentile(lateness, 99), max: Math.max(0, ...lateness) },
        workerRssMiB: round(memory.rss / 1_048_576, 0),
        heapUsedMiB: round(memory.heapUsed / 1_048_576, 0),
        cpuPercentOfOneCore: round(((cpu.user + cpu.system) / 1_000 / wall) * 100, 1),
      });
      // Clear the level away before the next: terminate rather than abort, nothing real is deployed.
      await inPool(ids, 50, async (id) => {
        await client.workflow.getHandle(id).terminate('capacity benchmark done').catch(() => undefined);
      });
    }
  } finally {
    await worker.shutdown();
    await running.catch(() => undefined);
    await connection.close();
  }
  return results;
}
