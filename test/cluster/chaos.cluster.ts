// Chaos on the cluster: parts of it die mid-release and come back. Nothing is lost, no release runs twice, every
// release ends as it should. Each failure is real: SIGKILL of a process group, a PostgreSQL restart.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sha, uniqueService, waitFor } from '../helpers/temporal';
import { finished, releaseStatus, simulatedRelease, startClusterRig, submit, type ClusterRig, type Submission } from './helpers';

let rig: ClusterRig;

before(async () => {
  rig = await startClusterRig();
});
after(async () => {
  await rig?.close();
});

/** Starts a release that bakes a while, and waits until its canary takes traffic. */
async function releaseInFlight(bake: string): Promise<{ service: string; version: string; releaseId: string }> {
  const service = uniqueService('chaos');
  const version = sha(`${service}-1`);
  const started = await submit(rig.cluster.apiUrl, simulatedRelease(service, version, { bake }));
  assert.equal(started.status, 201, JSON.stringify(started.body));
  await waitFor('the canary to take traffic', async () => (await releaseStatus(rig.cluster.apiUrl, started.body.releaseId)).routes.canaryWeight > 0, 60_000, 200);
  return { service, version, releaseId: started.body.releaseId };
}

/** Each version of the service ran exactly once (a release id is derived from the version, so a double shows here). */
async function assertRanOnce(service: string, versions: string[]): Promise<void> {
  const runs = await waitFor('the releases in visibility', async () => {
    const list = await rig.releases.list({ service });
    return versions.every((v) => list.some((r) => r.version === v)) ? list : null;
  });
  for (const version of versions) assert.equal(runs.filter((r) => r.version === version).length, 1, `${version} ran ${runs.filter((r) => r.version === version).length} times`);
}

describe('chaos on the cluster', () => {
  test('SIGKILL of the history service mid-release: restarted, the release carries on and is promoted once', async () => {
    const { service, version, releaseId } = await releaseInFlight('6s');
    await rig.cluster.kill('temporal-history');
    assert.ok(!(await rig.cluster.status()).find((s) => s.name === 'temporal-history')!.running, 'history is down');
    await rig.cluster.start('temporal-history');
    const done = await finished(rig.cluster.apiUrl, releaseId, 120_000);
    assert.equal(done.outcome?.result, 'promoted', done.outcome?.reason);
    await assertRanOnce(service, [version]);
  });

  test('a PostgreSQL restart mid-release: Temporal reconnects and the release is promoted once', async () => {
    const { service, version, releaseId } = await releaseInFlight('6s');
    await rig.cluster.stop('postgres');
    await rig.cluster.start('postgres');
    const done = await finished(rig.cluster.apiUrl, releaseId, 120_000);
    assert.equal(done.outcome?.result, 'promoted', done.outcome?.reason);
    await assertRanOnce(service, [version]);
  });

  test('one API replica and one worker SIGKILLed under load: every release is answered, runs once and is promoted', async () => {
    const services = Array.from({ length: 12 }, () => uniqueService('load'));
    const versions = new Map(services.map((s) => [s, sha(`${s}-1`)]));
    /** A client retries a failed submission: the lane makes the retry a duplicate, never a second release. */
    const submitWithRetry = (service: string) =>
      waitFor(
        `${service} to be accepted`,
        async () => {
          const answer = await submit(rig.cluster.apiUrl, simulatedRelease(service, versions.get(service)!, { bake: '3s' }));
          return answer.status === 201 || answer.status === 200 ? answer.body : null;
        },
        60_000,
        200,
      );
    const firstHalf = await Promise.all(services.slice(0, 6).map(submitWithRetry));
    const killing = (async () => {
      await rig.cluster.kill('api-1');
      await rig.cluster.kill('worker-1');
    })();
    const secondHalf = await Promise.all(services.slice(6).map(submitWithRetry));
    await killing;
    const submitted: Submission[] = [...firstHalf, ...secondHalf];
    for (const [i, s] of submitted.entries()) assert.equal(s.releaseId, `release/${services[i]}/production/${versions.get(services[i]!)}`);
    const outcomes = await Promise.all(submitted.map((s) => finished(rig.cluster.apiUrl, s.releaseId, 180_000)));
    for (const done of outcomes) assert.equal(done.outcome?.result, 'promoted', `${done.releaseId}: ${done.outcome?.reason}`);
    for (const service of services) await assertRanOnce(service, [versions.get(service)!]);
    await rig.cluster.start('api-1');
    await rig.cluster.start('worker-1');
    assert.ok((await rig.cluster.status()).every((s) => s.ready), 'every process is back');
  });
});
