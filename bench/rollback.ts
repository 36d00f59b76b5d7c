// Issue 13, benchmark 6, on the real stack (HAProxy) with a real worker releasing the demo service: the time from the
// rollback command to HAProxy serving only the previous version,
// - inside the warm window: the previous version still runs in the stable slot, so the rollback is a route switch;
// - outside it: a cold deploy (the previous version started in the canary slot, health-checked, all traffic moved);
// - beside the floor: one runtime-API weight change, timed the same way (from sending it to reading it back).
// "Only the previous version" is read from HAProxy's runtime API: the server still holding the version rolled back
// from is at weight 0. Each trial then checks with real HTTP requests through the frontend that only it answers.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { isTerminal } from '../src/engine/release-state';
import { freeStackPorts, startLocalStack } from '../src/stack/local-stack';
import type { DevServer } from '../src/temporal/dev-server';
import { ReleaseClient } from '../src/temporal/releases';
import { allocateService, Cleanups, probe, removeService, runtimeCommand, straightSpec } from '../test/e2e/helpers';
import { sha, waitFor } from '../test/helpers/temporal';
import { createReleaseWorker } from '../workers/worker';
import { percentile, round, summarize, type LatencySummary } from './stats';

const TASK_QUEUE = 'rampart-bench-rollback';


export interface RollbackBenchResult {
  /** One `set weight` through the runtime API, sent to read back. */
  floor: LatencySummary;
  /** Rollback command to the warm-window release's canary server (the bad version) at weight 0. */
  warm: LatencySummary;
  /** Rollback command to the stable server (the bad version) at weight 0, the previous version started cold in the canary slot. */
  cold: LatencySummary;
  goals: { warmP99Ms: number; coldP99Ms: number };
  meetsGoals: { warm: boolean; cold: boolean };
  config: { service: string; command: string; warmWindow: string };
}


async function weightOf(socket: string, service: string, server: 'stable' | 'canary'): Promise<number> {
  const answer = (await runtimeCommand(socket, `get weight ${service}/${server}`)).trim();
  const match = /^(\d+) \(initial \d+\)$/.exec(answer);
  if (!match) throw new Error(`get weight ${service}/${server} answered "${answer}"`);
  return Number(match[1]);
}

/** Reads the server's weight back to back until it is 0; when that was first seen (performance.now()). */
async function untilZero(socket: string, service: string, server: 'stable' | 'canary', timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const weight = await weightOf(socket, service, server).catch(() => null);
    const now = performance.now();
    if (weight === 0) return now;
    if (now > deadline) throw new Error(`${service}/${server} did not reach weight 0 within ${timeoutMs} ms (last ${weight})`);
    await sleep(1);
  }
}

export async function benchRollback(server: DevServer, options: { trials?: number; log?: (line: string) => void } = {}): Promise<RollbackBenchResult> {
  const trials = options.trials ?? 20;
  const log = options.log ?? (() => undefined);
  const warmWindow = '10m';
  const cleanups = new Cleanups();
  try {
    const workDir = await mkdtemp(path.join(tmpdir(), 'rampart-bench-rollback-'));
    cleanups.add('work dir', () => rm(workDir, { recursive: true, force: true }));
    const service = await allocateService('bench-rollback');
    const floorService = await allocateService('bench-rb-floor');
    const stack = await startLocalStack({
      dir: path.join(workDir, 'stack'),
      services: [service, floorService],
      ports: await freeStackPorts(),
      components: ['haproxy'],
      alertWebhookToken: randomUUID(),
    });
    cleanups.add('stack', () => stack.stop());
    cleanups.add(`instances of ${service.name}`, () => removeService(service));
    const socket = stack.haproxySocket;

    const connection = await Connection.connect({ address: server.address });
    cleanups.add('client connection', () => connection.close());
    const releases = new ReleaseClient(new Client({ connection }), TASK_QUEUE);
    const worker = await createReleaseWorker({ address: server.address, taskQueue: TASK_QUEUE });
    const running = worker.run();
    cleanups.add('worker', async () => {
      await worker.shutdown();
      await running;
    });

    const run = randomUUID().slice(0, 8);
    let serial = 0;
    const nextVersion = () => sha(`bench-rollback-${run}-${++serial}`);
    const promote = async (version: string, window: string, warm: boolean) => {
      const { releaseId } = await releases.submit(straightSpec(stack, service, version, { warmWindow: window, requestedBy: 'bench' }));
      const status = await waitFor(`${version} at 100%`, async () => {
        const now = await releases.status(releaseId);
        return (warm ? now.activity === 'warm' : isTerminal(now.state)) && now;
      }, 120_000, 50);
      if (!warm && status.outcome?.result !== 'promoted') throw new Error(`${version} was not promoted: ${status.outcome?.reason}`);
      await waitFor('the lane to count it stable', async () => (await releases.lane(service.name, stack.environment))?.stable.at(-1)?.version === version, 30_000, 50);
      return releaseId;
    };
    /** The rollback command, timed to `server` (where the bad version runs) reading weight 0; then checked by HTTP. */
    const rollBack = async (previous: string, badServer: 'stable' | 'canary'): Promise<number> => {
      const sent = performance.now();
      const answer = await releases.rollback(service.name, stack.environment, { actor: 'bench', reason: 'rollback benchmark' });
      if (answer.to !== previous) throw new Error(`the rollback went to ${answer.to}, not ${previous}`);
      const safe = await untilZero(socket, service.name, badServer, 60_000);
      const result = await waitFor('the rollback to finish', async () => releases.result(answer.releaseId!), 120_000, 50);
      if (result.outcome?.result !== 'rolled-back-to') throw new Error(`the rollback ended ${result.outcome?.result}: ${result.outcome?.reason}`);
      const answered = Object.keys((await probe(stack.frontendUrl, service.name, 20)).byVersion);
      if (answered.length !== 1 || answered[0] !== previous) throw new Error(`after the rollback ${answered.join(', ')} answered, not only ${previous}`);
      return safe - sent;
    };

    // The version every trial rolls back to: promoted once, with nothing before it to keep warm.
    const base = nextVersion();
    await promote(base, '0s', false);

    const warm: number[] = [];
    const cold: number[] = [];
    for (let trial = 0; trial < trials; trial++) {
      // Warm: the bad version serves from the canary slot, the previous one waits at weight 0 in the stable slot.
      await promote(nextVersion(), warmWindow, true);
      warm.push(await rollBack(base, 'canary'));
      // Cold: no window, so the bad version is in the stable slot and the previous one must be started again.
      await promote(nextVersion(), '0s', false);
      cold.push(await rollBack(base, 'stable'));
      log(`rollback trial ${trial + 1}/${trials}: warm ${round(warm.at(-1)!, 1)} ms, cold ${round(cold.at(-1)!, 1)} ms`);
    }

    // The floor: the one weight change a warm rollback cannot do without, on a backend of its own.
    const floor: number[] = [];
    for (let trial = 0; trial < trials; trial++) {
      await runtimeCommand(socket, `set weight ${floorService.name}/canary 100`);
      await waitFor('the floor canary at 100', async () => (await weightOf(socket, floorService.name, 'canary')) === 100, 5_000, 1);
      const sent = performance.now();
      const answer = (await runtimeCommand(socket, `set weight ${floorService.name}/canary 0`)).trim();
      if (answer) throw new Error(`set weight was refused: ${answer}`);
      floor.push((await untilZero(socket, floorService.name, 'canary', 5_000)) - sent);
    }

    const goals = { warmP99Ms: 1_000, coldP99Ms: 10_000 };
    const result: RollbackBenchResult = {
      floor: summarize(floor),
      warm: summarize(warm),
      cold: summarize(cold),
      goals,
      meetsGoals: { warm: percentile(warm, 99) < goals.warmP99Ms, cold: percentile(cold, 99) < goals.coldP99Ms },
      config: { service: 'examples/demo-service (node --import tsx)', command: 'ReleaseClient.rollback (the lane update the API and CLI send)', warmWindow },
    };
    return result;
  } finally {
    await cleanups.run();
  }
}

export function rollbackTableRows(result: RollbackBenchResult): string[] {
  const ms = (l: LatencySummary) => `p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms (${l.trials} trials, max ${l.maxMs} ms)`;
  return [
    `| rollback to the previous version | floor: one runtime-API weight change, sent to read back | ${ms(result.floor)} | |`,
    `| | inside the warm window (route switch): command to HAProxy serving only the previous version | ${ms(result.warm)} | p99 < ${result.goals.warmP99Ms} ms${result.meetsGoals.warm ? '' : ' (missed)'} |`,
    `| | outside it (cold deploy of the demo service): the same | ${ms(result.cold)} | p99 < ${result.goals.coldP99Ms} ms${result.meetsGoals.cold ? '' : ' (missed)'} |`,
  ];
}
