import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { validateReleaseSpec } from '../../src/spec/parse';
import { releaseWorkflowId } from '../../workflows/definitions';
import { ALERTMANAGER_TOKEN, alertmanagerNotification, call, heldSpec, signedHeaders, startApiRig, startApp, type ApiRig } from '../api/helpers';
import { sha, uniqueService, waitFor } from '../helpers/temporal';

/**
 * Chaos at the front door: CI deliveries duplicated, reordered and replayed (synchronous and
 * asynchronous ones mixed, concurrently), and Alertmanager notifications repeated and out of order,
 * spread over two API processes. Exactly one release per version; one pause per alert.
 */

let api: ApiRig;
let replica: Awaited<ReturnType<typeof startApp>>;
before(async () => {
  api = await startApiRig();
  replica = await startApp(api.rig);
});
after(async () => {
  await replica?.close();
  await api?.close();
});

/** Seeded (CHAOS_SEED, printed), so an order that failed can be replayed. */
const SEED = Number(process.env.CHAOS_SEED ?? Date.now() % 2 ** 31);
console.log(`chaos seed ${SEED}`);
let state = SEED;
function random(): number {
  // mulberry32
  state = (state + 0x6d2b79f5) | 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
}

function shuffle<T>(items: T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

describe('chaos: webhooks', () => {
  test('CI deliveries duplicated, reordered and replayed start exactly one release per version', async () => {
    // Six services, one version each, every delivery sent five times: same and new delivery ids, sync and async, shuffled.
    const targets = Array.from({ length: 6 }, () => {
      const service = uniqueService('storm');
      return { service, version: sha(service) };
    });
    const deliveries = shuffle(
      targets.flatMap(({ service, version }) =>
        Array.from({ length: 5 }, (_, copy) => ({
          body: JSON.stringify({ service, version, spec: { strategy: heldSpec(service, version).strategy, analysis: { interval: '200ms' } } }),
          deliveryId: copy % 2 === 0 ? `${service}-delivery` : `${service}-redelivery-${copy}`,
          async: copy % 3 === 0,
        })),
      ),
    );
    const answers = await Promise.all(
      deliveries.map((d) =>
        call<{ releaseId: string }>(api.url, 'POST', '/v1/webhooks/ci', {
          raw: d.body,
          headers: signedHeaders(d.body, { 'x-rampart-delivery': d.deliveryId, ...(d.async ? { prefer: 'respond-async' } : {}) }),
        }),
      ),
    );
    for (const answer of answers) assert.ok([200, 201, 202].includes(answer.status), `answered ${answer.status}: ${JSON.stringify(answer.body)}`);

    // Asked of each lane, which decides, and by the release id every answer named: never of visibility, where a lagging count passes.
    for (const { service, version } of targets) {
      const releaseId = releaseWorkflowId(service, 'production', version);
      for (const answer of answers.filter((a) => a.body.releaseId?.startsWith(`release/${service}/`))) assert.equal(answer.body.releaseId, releaseId);
      const status = await waitFor(`the release of ${service}`, async () => api.rig.releases.status(releaseId));
      assert.equal(status.version, version);
      const lane = await api.rig.releases.lane(service, 'production');
      assert.deepEqual([lane?.current?.releaseId, lane?.pending, lane?.recent.map((r) => r.version)], [releaseId, null, [version]], `${service}: the lane took in one version`);
      await api.rig.releases.command(releaseId, 'abort', { actor: 'chaos', reason: 'done' }).catch(() => undefined);
    }
  });

  test('Alertmanager notifications repeated and out of order, over two API processes, pause a release once; a stale resolve does not resume it, the real one does', async () => {
    const service = uniqueService('alerted');
    const version = sha(service);
    // A policy that resumes on resolve: otherwise no resolve, stale or not, could ever resume it.
    const { releaseId } = await api.rig.releases.submit(validateReleaseSpec({ ...heldSpec(service, version), alerts: { onFiring: 'pause', resumeOnResolved: true } }));
    await waitFor('the release baking', async () => (await api.rig.releases.status(releaseId)).step?.name === 'canary');

    const alert = (status: 'firing' | 'resolved', startsAt: string, endsAt: string) =>
      alertmanagerNotification(status, [
        { labels: { alertname: 'RampartCanaryErrorRateAboveStable', service }, startsAt, endsAt, generatorURL: 'http://prometheus:9090/graph', fingerprint: `fp-${service}` },
      ]);
    // The resolve of an older episode (09:00 to 09:05) arrives among repeated firings of the current one (from 10:00),
    // in two waves: in the second, it surely lands after the firings of the first were applied.
    const wave = () =>
      shuffle([...Array.from({ length: 3 }, () => alert('firing', '2026-03-01T10:00:00Z', '0001-01-01T00:00:00Z')), alert('resolved', '2026-03-01T09:00:00Z', '2026-03-01T09:05:00Z')]);
    const deliver = (storm: ReturnType<typeof wave>) =>
      Promise.all(storm.map((body, i) => call<{ actions: { action: string }[] }>(i % 2 === 0 ? api.url : replica.url, 'POST', '/v1/alerts/alertmanager', { body, token: ALERTMANAGER_TOKEN })));
    const answers = [...(await deliver(wave())), ...(await deliver(wave()))];
    for (const answer of answers) assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answers.flatMap((a) => a.body.actions).filter((a) => a.action === 'paused').length, 1, 'one pause answered');
    assert.ok(!answers.flatMap((a) => a.body.actions).some((a) => a.action === 'resumed'), 'nothing resumed');

    // Every notification was answered after the lane applied it: the state is final, no waiting needed.
    const status = await api.rig.releases.status(releaseId);
    assert.equal(status.state, 'paused', 'the stale resolve did not resume it');
    assert.equal(status.pause?.cause, 'alert');
    assert.equal(status.history.filter((t) => t.event === 'paused').length, 1, 'one pause for one alert');
    assert.deepEqual((await api.rig.releases.lane(service, 'production'))?.firingAlerts, [`fp-${service}`]);

    // The resolve of the episode that paused it does resume it, whichever process takes it.
    const resolved = await call<{ actions: { action: string }[] }>(replica.url, 'POST', '/v1/alerts/alertmanager', {
      body: alert('resolved', '2026-03-01T10:00:00Z', '2026-03-01T10:05:00Z'),
      token: ALERTMANAGER_TOKEN,
    });
    assert.deepEqual(resolved.body.actions.map((a) => a.action), ['resumed']);
    assert.equal((await api.rig.releases.status(releaseId)).state, 'running');
    await api.rig.releases.command(releaseId, 'abort', { actor: 'chaos', reason: 'done' });
  });
});
