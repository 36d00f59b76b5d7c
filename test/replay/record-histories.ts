// Records the histories that test/replay replays: run it after a deliberate change to the release
// or lane workflow (guarded with patched()), with a new tag, and commit the new files beside the old
// ones, never in their place: the old ones are what in-flight releases look like during an upgrade.
//   HISTORY_TAG=v3 npm run record:histories
// HISTORY_ONLY=lane-busy (a comma list of releases, lane-busy) records only those.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { validateReleaseSpec } from '../../src/spec/parse';
import { laneWorkflowId } from '../../workflows/definitions';
import { fastSpec } from '../helpers/specs';
import { sha, startRig, waitFor, type TestRig } from '../helpers/temporal';

const tag = process.env.HISTORY_TAG ?? 'v2';
const only = process.env.HISTORY_ONLY?.split(',');

function saver(rig: TestRig) {
  return async (name: string, workflowId: string, runId?: string) => {
    const history = await rig.client.workflow.getHandle(workflowId, runId).fetchHistory();
    writeFileSync(join(__dirname, 'histories', `${name}.${tag}.json`), historyToJSON(history));
    console.log(`recorded ${name} (${history.events?.length} events)`);
  };
}

async function main(): Promise<void> {
  if (!only || only.includes('releases')) await recordReleases();
  if (!only || only.includes('release-continued')) await recordLongRelease();
  if (!only || only.includes('lane-busy')) await recordBusyLane();
  if (!only || only.includes('release-warm')) await recordWarmRollback();
}

/** A release keeping the previous version warm (patched('warm-previous')), superseded by a rollback to it, and that rollback. */
async function recordWarmRollback(): Promise<void> {
  const rig = await startRig();
  const save = saver(rig);
  try {
    const service = 'replay-warm';
    const v1 = await rig.releases.submit(fastSpec(service, sha('w1')));
    await rig.releases.result(v1.releaseId);
    await waitFor('v1 stable', async () => (await rig.releases.lane(service, 'production'))?.stable.at(-1)?.version === sha('w1'));
    const v2 = await rig.releases.submit(fastSpec(service, sha('w2'), { warmWindow: '10m' }));
    await waitFor('v2 warm', async () => (await rig.releases.status(v2.releaseId)).activity === 'warm');
    const rollback = await rig.releases.rollback(service, 'production', { actor: 'olga', reason: 'replay' });
    await rig.releases.result(v2.releaseId);
    await waitFor('the rollback', async () => rig.releases.result(rollback.releaseId!));
    await save('release-warm-switched', v2.releaseId);
    await save('rollback-warm', rollback.releaseId!);
  } finally {
    await rig.close();
  }
}

async function recordReleases(): Promise<void> {
  const rig = await startRig();
  const save = saver(rig);
  try {
    // Real bakes: the analysis looks, its timers and the bake planner's decisions are in the history.
    const bake = { 'canary-internal': '1s', 'canary-5': '1s', 'ramp-10': '1s', 'ramp-50': '1s', full: '1s' };
    const promoted = await rig.releases.submit(fastSpec('replay-promoted', sha('r1'), { bake, analysis: { interval: '500ms' } }));
    await rig.releases.result(promoted.releaseId);
    await save('release-promoted', promoted.releaseId);

    const faulty = sha('r2');
    const rolledBack = await rig.releases.submit(
      fastSpec('replay-analysis', faulty, { bake, health: { [faulty]: { errorRate: 0.2 } }, load: { maxIncreaseOverStable: 1 }, analysis: { interval: '500ms' } }),
    );
    await rig.releases.result(rolledBack.releaseId);
    await save('release-rolled-back', rolledBack.releaseId);

    const paused = await rig.releases.submit(fastSpec('replay-operator', sha('r3'), { bake: { ...bake, 'ramp-10': '1m' }, approval: ['canary-5'], analysis: { interval: '500ms' } }));
    await waitFor('gate', async () => (await rig.releases.status(paused.releaseId)).state === 'awaiting-approval');
    await rig.releases.command(paused.releaseId, 'approve', { actor: 'dba', reason: 'ok' });
    await waitFor('ramp-10 baking', async () => (await rig.releases.status(paused.releaseId)).activity === 'baking' && (await rig.releases.status(paused.releaseId)).routes.canaryWeight === 10);
    await rig.releases.command(paused.releaseId, 'pause', { actor: 'alice', reason: 'look' });
    await rig.releases.command(paused.releaseId, 'resume', { actor: 'alice', reason: 'fine' });
    await rig.releases.command(paused.releaseId, 'promote', { actor: 'alice', reason: 'enough', step: 'ramp-10' }).catch(() => undefined);
    await waitFor('ramp-50', async () => (await rig.releases.status(paused.releaseId)).step?.name === 'ramp-50');
    await rig.releases.command(paused.releaseId, 'abort', { actor: 'alice', reason: 'bad' });
    await save('release-approved-paused-aborted', paused.releaseId);

    const first = await rig.releases.submit(fastSpec('replay-lane', sha('r4'), { bake: { 'canary-5': '1m' } }));
    await waitFor('canary-5', async () => (await rig.releases.status(first.releaseId)).step?.name === 'canary-5');
    const second = await rig.releases.submit(fastSpec('replay-lane', sha('r5')));
    await rig.releases.result(first.releaseId);
    await waitFor('second', async () => rig.releases.result(second.releaseId));
    await rig.releases.submit(fastSpec('replay-lane', sha('r5')));
    await save('release-superseded', first.releaseId);
    await save('lane', laneWorkflowId('replay-lane', 'production'));
  } finally {
    await rig.close();
  }
}

/** A release baking across continue-as-new on a server that suggests it early: its first run and its last. */
async function recordLongRelease(): Promise<void> {
  const rig = await startRig({}, { dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 100 } });
  const save = saver(rig);
  try {
    const { releaseId } = await rig.releases.submit(fastSpec('replay-continued', sha('r6'), { bake: { 'ramp-10': '20s' }, analysis: { interval: '500ms' } }));
    const result = await rig.releases.result(releaseId);
    if (result.generation < 2) throw new Error(`the release continued as new ${result.generation} times`);
    const first = (await rig.client.workflow.getHandle(releaseId).describe()).raw.workflowExecutionInfo?.firstRunId ?? undefined;
    await save('release-continued-first-run', releaseId, first);
    await save('release-continued-last-run', releaseId);
  } finally {
    await rig.close();
  }
}

/**
 * A lane under load on a server that suggests continue-as-new early: the run that continues as new
 * with a release in flight and one queued, and the run after it, which inherits them.
 */
async function recordBusyLane(): Promise<void> {
  const rig = await startRig({}, { dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 60 } });
  const save = saver(rig);
  const service = 'replay-busy-lane';
  const spec = (name: string, minute: number, bake: string) =>
    validateReleaseSpec({
      service,
      version: sha(`busy-${name}`),
      commit: { sha: sha(`busy-${name}`), time: new Date(Date.parse('2026-03-01T10:00:00Z') + minute * 60_000).toISOString() },
      alerts: { onFiring: 'pause', resumeOnResolved: true },
      strategy: { steps: [{ name: 'canary', phase: 'canary', weight: 10, bake, analysis: false }, { name: 'full', phase: 'full', weight: 100, analysis: false }] },
    });
  const alert = (status: 'firing' | 'resolved') => ({
    actor: 'recorder',
    alerts: [{ fingerprint: 'fp-busy', status, startsAt: Date.parse('2026-03-01T10:00:00Z'), endsAt: status === 'resolved' ? Date.parse('2026-03-01T10:05:00Z') : null, requested: null, reason: `BusyLane ${status}` }],
  });
  try {
    const laneId = laneWorkflowId(service, 'production');
    let i = 0;
    let waitedOnInherited = false;
    for (; i < 60; i++) {
      await rig.releases.submit(spec(String(i), 10 + i, '1m'));
      if (i === 1) await rig.releases.submit(spec('older', 0, '1m')); // stale
      if (i === 2) {
        await rig.releases.applyAlerts(service, 'production', alert('firing'));
        await rig.releases.applyAlerts(service, 'production', alert('resolved'));
      }
      const lane = await rig.releases.lane(service, 'production');
      if ((lane?.generation ?? 0) >= 2) break;
      // Once in the second run, long enough for it to look at the release it inherited.
      const pause = lane?.generation === 1 && !waitedOnInherited ? 17_000 : 1_000;
      if (pause > 1_000) waitedOnInherited = true;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
    const last = await rig.releases.submit(spec('last', 100, '0s'));
    await waitFor('the last release', async () => (await rig.releases.result(last.releaseId)).outcome?.result === 'promoted', 120_000);
    // The first run and the one after it, along the continue-as-new chain.
    const first = (await rig.client.workflow.getHandle(laneId).describe()).raw.workflowExecutionInfo?.firstRunId ?? undefined;
    const firstHistory = await rig.client.workflow.getHandle(laneId, first).fetchHistory();
    const second = firstHistory.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
    if (!first || !second) throw new Error('the lane did not continue as new');
    await save('lane-busy-first-run', laneId, first);
    await save('lane-busy-second-run', laneId, second);
  } finally {
    await rig.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
