import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { down, up, type Cluster } from '../../src/cluster/cluster';
import type { ReleaseStatus } from '../../src/engine/release-state';
import { ReleaseClient } from '../../src/temporal/releases';
import { ALERTMANAGER_TOKEN, call, TOKENS, WEBHOOK_SECRET } from '../api/helpers';
import { waitFor } from '../helpers/temporal';

/*
 * One real cluster per test file, brought up by the same code as `scripts/cluster.ts up`: PostgreSQL, the four
 * Temporal services as separate processes, two release workers and two API replicas behind HAProxy, all on free
 * ports in a scratch directory. The API replicas know the test tokens of test/api/helpers.ts.
 */

export interface ClusterRig {
  cluster: Cluster;
  connection: Connection;
  client: Client;
  releases: ReleaseClient;
  close(): Promise<void>;
}

export async function startClusterRig(options: { env?: Record<string, string>; workers?: number; apis?: number } = {}): Promise<ClusterRig> {
  // Under the system's temp dir, which the postgres user can reach (a checkout under /root may not be).
  const dir = mkdtempSync(join(tmpdir(), 'rampart-cluster-'));
  chmodSync(dir, 0o755);
  let cluster: Cluster;
  try {
    cluster = await up({
      dir,
      workers: options.workers ?? 2,
      apis: options.apis ?? 2,
      env: {
        RAMPART_API_TOKENS: Object.values(TOKENS)
          .map((t) => `${t.name}:${t.role}:${t.token}`)
          .join(','),
        RAMPART_WEBHOOK_SECRET: WEBHOOK_SECRET,
        RAMPART_ALERTMANAGER_TOKEN: ALERTMANAGER_TOKEN,
        RAMPART_API_RATE_LIMIT: '0',
        RAMPART_API_COMMAND_WAIT: '20s',
        ...options.env,
      },
      log: process.env.RAMPART_CLUSTER_VERBOSE ? (line) => console.log(`[cluster] ${line}`) : undefined,
    });
  } catch (error) {
    await down(dir).catch(() => {});
    throw error;
  }
  const connection = await Connection.connect({ address: cluster.address });
  const client = new Client({ connection, namespace: cluster.namespace });
  return {
    cluster,
    connection,
    client,
    releases: new ReleaseClient(client),
    async close() {
      await connection.close();
      await down(dir);
      if (!process.env.RAMPART_CLUSTER_KEEP) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A release body the API takes inline: the simulated target, a canary bake, then full. */
export function simulatedRelease(service: string, version: string, options: { bake?: string; health?: Record<string, unknown>; commitTime?: string } = {}): Record<string, unknown> {
  return {
    service,
    version,
    target: { type: 'simulated', health: options.health ?? {}, trafficPerSecond: 20_000 },
    strategy: {
      steps: [
        { name: 'canary', phase: 'canary', weight: 10, bake: options.bake ?? '1s' },
        { name: 'full', phase: 'full', weight: 100 },
      ],
    },
    analysis: { interval: '200ms' },
    ...(options.commitTime ? { commit: { sha: version.slice(0, 12), time: options.commitTime } } : {}),
  };
}

export interface Submission {
  releaseId: string;
  disposition: string;
  supersedes?: string;
}

export async function submit(base: string, body: Record<string, unknown>): Promise<{ status: number; body: Submission }> {
  return call<Submission>(base, 'POST', '/v1/releases', { token: TOKENS.operator.token, body });
}

/** The release's status through an API replica (or HAProxy). */
export async function releaseStatus(base: string, releaseId: string): Promise<ReleaseStatus> {
  const answer = await call<ReleaseStatus>(base, 'GET', `/v1/releases/${encodeURIComponent(releaseId)}`, { token: TOKENS.viewer.token });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

/** Polls until the release has an outcome, through the given API. */
export function finished(base: string, releaseId: string, timeoutMs = 90_000): Promise<ReleaseStatus> {
  return waitFor(`${releaseId} to finish`, async () => {
    const status = await releaseStatus(base, releaseId);
    return status.outcome ? status : null;
  }, timeoutMs, 250);
}
