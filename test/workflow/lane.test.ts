import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ReleaseStatus } from '../../src/engine/release-state';
import { validateReleaseSpec } from '../../src/spec/parse';
import type { ReleaseSpec } from '../../src/spec/release-spec';
import { ReleaseNotFoundError } from '../../src/temporal/releases';
import { releaseWorkflowId } from '../../workflows/definitions';
import { sha, startRig, uniqueService, waitFor, type TestRig } from '../helpers/temporal';

/**
 * The lane under continuous load, on a dev server that suggests continue-as-new after 150 events
 * (about ten submissions): it must hand its release in flight and its queue to the next run, keep
 * one release in flight, and lose no version.
 */
const SUGGEST_CONTINUE_AS_NEW_AT = 150;

/** A release that bakes a minute at 10% unless superseded first; no analysis, so its history stays short. */
function heldRelease(service: string, version: string, commitTime: string | null, bake = '1m'): ReleaseSpec {
  return validateReleaseSpec({
    service,
    version,
    requestedBy: 'lane-test',
    ...(commitTime ? { commit: { sha: version, time: commitTime } } : {}),
    target: { type: 'simulated', trafficPerSecond: 1_000 },
    strategy: {
      steps: [
        { name: 'canary', phase: 'canary', weight: 10, bake, analysis: false },
        { name: 'full', phase: 'full', weight: 100, analysis: false },
      ],
    },
    rollback: { warmWindow: 0 },
  });
}

async function statusOrNull(rig: TestRig, releaseId: string): Promise<ReleaseStatus | null> {
  try {
    return await rig.releases.status(releaseId);
  } catch (error) {
    if (error instanceof ReleaseNotFoundError) return null;
    throw error;
  }
}

describe('release lane on a real Temporal dev server', () => {
  let rig: TestRig;
  before(async () => {
    rig = await startRig({}, { dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': SUGGEST_CONTINUE_AS_NEW_AT } });
  });
  after(async () => {
    await rig?.close();
  });

  test('fed a new version every few seconds, the lane continues as new with a release in flight, keeps one in flight and loses no version', async () => {
    const service = uniqueService('busy');
    const base = Date.parse('2026-03-01T10:00:00Z');
    const versions = Array.from({ length: 36 }, (_, i) => sha(`${service}-${i}`));
    const feedStarted = Date.now();
    let busyGenerations = 0;
    for (const [i, version] of versions.entries()) {
      const last = i === versions.length - 1;
      const spec = heldRelease(service, version, new Date(base + i * 60_000).toISOString(), last ? '0s' : '1m');
      // Submissions by update and by signal, and a redelivery racing each: updates are in flight whenever the lane continues.
      const deliveries = i % 3 === 1 ? [rig.releases.enqueue(spec)] : [rig.releases.submit(spec), rig.releases.submit(spec)];
      const answers = await Promise.all(deliveries);
      for (const answer of answers) {
        assert.equal(answer.releaseId, releaseWorkflowId(service, 'production', version));
        assert.ok(['started', 'queued', 'duplicate', 'accepted'].includes(answer.disposition), `${version}: ${answer.disposition}`);
      }
      const lane = await rig.releases.lane(service, 'production');
      assert.ok(lane, 'the lane runs');
      if (lane.current && lane.generation > busyGenerations) busyGenerations = lane.generation;
      await new Promise((resolve) => setTimeout(resolve, 2_500));
    }
    assert.ok(Date.now() - feedStarted > 90_000, 'the feed ran for minutes');

    const lastId = releaseWorkflowId(service, 'production', versions.at(-1)!);
    const last = await waitFor('the last version released', async () => (await statusOrNull(rig, lastId))?.outcome?.result === 'promoted', 120_000, 500);
    assert.ok(last);
    // The release tells its lane it finished as its last act: the lane may take a moment to hear it.
    const lane = await waitFor('the lane to settle', async () => {
      const view = await rig.releases.lane(service, 'production');
      return view && view.current === null && view.pending === null && view;
    }, 30_000, 200);
    assert.ok(lane.generation >= 2, `continued as new ${lane.generation} times`);
    assert.ok(busyGenerations >= 2, `a new run found a release in flight only ${busyGenerations} times`);
    assert.equal(lane.current, null);
    assert.equal(lane.pending, null);
    // Every version was taken in: started, or queued and then replaced by a newer one. None vanished in a hand-over.
    assert.deepEqual(lane.recent.map((r) => r.version), versions);

    // One release in flight at a time: every release started after the one before it had finished.
    const ran: ReleaseStatus[] = [];
    for (const version of versions) {
      const status = await statusOrNull(rig, releaseWorkflowId(service, 'production', version));
      if (status) ran.push(status);
    }
    assert.ok(ran.length >= 3, `${ran.length} releases ran`);
    ran.sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt));
    for (let i = 1; i < ran.length; i++) {
      const before = ran[i - 1]!;
      assert.ok(before.finishedAt, `${before.version} still running when ${ran[i]!.version} started`);
      assert.ok(Date.parse(ran[i]!.startedAt) >= Date.parse(before.finishedAt), `${ran[i]!.version} started before ${before.version} finished`);
      assert.equal(before.outcome?.result, 'superseded', `${before.version} ended ${before.outcome?.result}`);
    }
    assert.equal(rig.worker.fleet.service(service).slots.stable, versions.at(-1));
  });

  test('a release in flight when the lane continues as new stays the one in flight: the next version supersedes it, never starts beside it', async () => {
    const service = uniqueService('handover');
    const first = heldRelease(service, sha(`${service}-first`), null);
    const started = await rig.releases.submit(first);
    assert.equal(started.disposition, 'started');
    // Redeliveries change nothing but the lane's history: sent in bursts until the lane has continued as new.
    await waitFor(
      'the lane to continue as new',
      async () => {
        const answers = await Promise.all([rig.releases.submit(first), rig.releases.submit(first), rig.releases.enqueue(first)]);
        for (const answer of answers) assert.ok(['duplicate', 'accepted'].includes(answer.disposition), answer.disposition);
        return ((await rig.releases.lane(service, 'production'))?.generation ?? 0) >= 1;
      },
      120_000,
      0,
    );
    const lane = await rig.releases.lane(service, 'production');
    assert.equal(lane?.current?.releaseId, started.releaseId, 'the new run knows the release in flight');
    assert.equal((await rig.releases.status(started.releaseId)).state, 'running');

    const next = await rig.releases.submit(heldRelease(service, sha(`${service}-next`), null, '0s'));
    assert.deepEqual([next.disposition, next.supersedes], ['queued', started.releaseId]);
    assert.equal((await rig.releases.result(started.releaseId)).outcome?.result, 'superseded');
    // The new run learns of the end of a release it did not start, and starts the queued one.
    const promoted = await waitFor('the queued release', async () => (await statusOrNull(rig, next.releaseId))?.outcome?.result === 'promoted', 60_000, 250);
    assert.ok(promoted);
  });

  test('an older commit delivered after a newer one is refused as stale; one without a commit time goes by arrival', async () => {
    const service = uniqueService('ordered');
    const newer = sha(`${service}-newer`);
    const older = sha(`${service}-older`);
    const started = await rig.releases.submit(heldRelease(service, newer, '2026-03-01T10:00:00Z'));
    assert.equal(started.disposition, 'started');

    const late = await rig.releases.submit(heldRelease(service, older, '2026-03-01T09:59:59Z'));
    assert.equal(late.disposition, 'stale');
    assert.match(late.reason ?? '', /older than/);
    // Nothing of the older version: no supersede, no queue, no release.
    const lane = await rig.releases.lane(service, 'production');
    assert.deepEqual([lane?.current?.version, lane?.pending, lane?.newest?.version], [newer, null, newer]);
    assert.equal((await rig.releases.status(started.releaseId)).state, 'running');
    assert.equal(await statusOrNull(rig, late.releaseId), null);

    // The same instant is not older; a version without a commit time is taken in arrival order.
    const sameInstant = await rig.releases.submit(heldRelease(service, sha(`${service}-same`), '2026-03-01T10:00:00Z'));
    assert.equal(sameInstant.disposition, 'queued');
    const unordered = await rig.releases.submit(heldRelease(service, sha(`${service}-unordered`), null));
    assert.equal(unordered.disposition, 'queued');
    // The older one stays refused after the newer one is over.
    await waitFor('the queued release started', async () => (await rig.releases.lane(service, 'production'))?.current?.releaseId === unordered.releaseId, 60_000);
    assert.equal((await rig.releases.submit(heldRelease(service, older, '2026-03-01T09:59:59Z'))).disposition, 'stale');
    await rig.releases.command(unordered.releaseId, 'abort', { actor: 'lane-test', reason: 'done' });
  });
});
