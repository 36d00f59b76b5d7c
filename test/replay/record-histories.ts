// Records the histories that test/replay replays: run it after a deliberate change to the release
// or lane workflow (guarded with patched()), with a new tag, and commit the new files beside the old
// ones, never in their place: the old ones are what in-flight releases look like during an upgrade.
//   HISTORY_TAG=v3 npm run record:histories
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { laneWorkflowId } from '../../workflows/definitions';
import { fastSpec } from '../helpers/specs';
import { sha, startRig, waitFor } from '../helpers/temporal';

async function main(): Promise<void> {
  const rig = await startRig();
  const tag = process.env.HISTORY_TAG ?? 'v2';
  const save = async (name: string, workflowId: string) => {
    const history = await rig.client.workflow.getHandle(workflowId).fetchHistory();
    writeFileSync(join(__dirname, 'histories', `${name}.${tag}.json`), historyToJSON(history));
    console.log(`recorded ${name} (${history.events?.length} events)`);
  };
  try {
    const promoted = await rig.releases.submit(fastSpec('replay-promoted', sha('r1')));
    await rig.releases.result(promoted.releaseId);
    await save('release-promoted', promoted.releaseId);

    const faulty = sha('r2');
    const rolledBack = await rig.releases.submit(fastSpec('replay-analysis', faulty, { health: { [faulty]: { errorRate: 0.2 } }, load: { maxErrorRate: 1 } }));
    await rig.releases.result(rolledBack.releaseId);
    await save('release-rolled-back', rolledBack.releaseId);

    const paused = await rig.releases.submit(fastSpec('replay-operator', sha('r3'), { bake: { 'ramp-10': '1m' }, approval: ['canary-5'] }));
    await waitFor('gate', async () => (await rig.releases.status(paused.releaseId)).state === 'awaiting-approval');
    await rig.releases.command(paused.releaseId, 'approve', { actor: 'dba', reason: 'ok' });
    await waitFor('ramp-10', async () => (await rig.releases.status(paused.releaseId)).routes.canaryWeight === 10);
    await rig.releases.command(paused.releaseId, 'pause', { actor: 'alice', reason: 'look' });
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

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
