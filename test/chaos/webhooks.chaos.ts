import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { validateReleaseSpec } from '../../src/spec/parse';
import { ALERTMANAGER_TOKEN, call, heldSpec, signedHeaders, startApiRig, type ApiRig } from '../api/helpers';
import { sha, uniqueService, waitFor } from '../helpers/temporal';

/**
 * Chaos at the front door: CI deliveries duplicated, reordered and replayed (synchronous and
 * asynchronous ones mixed, concurrently), and Alertmanager notifications repeated and out of order.
 * Exactly one release per version; one pause per alert.
 */

let api: ApiRig;
before(async () => {
  api = await startApiRig();
});
after(async () => {
  await api?.close();
});

function shuffle<T>(items: T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
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

    for (const { service, version } of targets) {
      const runs = await waitFor(`the release of ${service}`, async () => {
        const list = await api.rig.releases.list({ service });
        return list.length > 0 ? list : null;
      });
      await new Promise((resolve) => setTimeout(resolve, 500)); // visibility settles; look again for any extra
      const again = await api.rig.releases.list({ service });
      assert.equal(again.length, 1, `${service}: ${again.length} releases`);
      assert.equal(runs[0]!.version, version);
      const lane = await api.rig.releases.lane(service, 'production');
      assert.deepEqual(lane?.recent.map((r) => r.version), [version], `${service}: the lane saw one version`);
      await api.rig.releases.command(runs[0]!.releaseId, 'abort', { actor: 'chaos', reason: 'done' }).catch(() => undefined);
    }
  });

  test('Alertmanager notifications repeated and out of order pause a release once, and a stale resolve does not resume it', async () => {
    const service = uniqueService('alerted');
    const version = sha(service);
    const { releaseId } = await api.rig.releases.submit(validateReleaseSpec({ ...heldSpec(service, version), alerts: { onFiring: 'pause', resumeOnResolved: false } }));
    await waitFor('the release baking', async () => (await api.rig.releases.status(releaseId)).step?.name === 'canary');

    const alert = (status: 'firing' | 'resolved', startsAt: string) => ({
      version: '4',
      groupKey: '{}:{alertname="RampartCanaryErrorRateAboveStable"}',
      truncatedAlerts: 0,
      status,
      receiver: 'rampart',
      groupLabels: {},
      commonLabels: {},
      commonAnnotations: {},
      externalURL: 'http://alertmanager:9093',
      alerts: [
        {
          status,
          labels: { alertname: 'RampartCanaryErrorRateAboveStable', service },
          annotations: {},
          startsAt,
          endsAt: status === 'firing' ? '0001-01-01T00:00:00Z' : '2026-03-01T10:05:00Z',
          generatorURL: 'http://prometheus:9090/graph',
          fingerprint: `fp-${service}`,
        },
      ],
    });
    // A resolve of an older episode arrives among repeated firings of the current one.
    const storm = shuffle([
      ...Array.from({ length: 6 }, () => alert('firing', '2026-03-01T10:00:00Z')),
      alert('resolved', '2026-03-01T09:00:00Z'),
    ]);
    const answers = await Promise.all(storm.map((body) => call(api.url, 'POST', '/v1/alerts/alertmanager', { body, token: ALERTMANAGER_TOKEN })));
    for (const answer of answers) assert.ok(answer.status < 300, `answered ${answer.status}: ${JSON.stringify(answer.body)}`);

    const status = await waitFor('the alert pause', async () => {
      const s = await api.rig.releases.status(releaseId);
      return s.state === 'paused' ? s : null;
    });
    assert.equal(status.pause?.cause, 'alert');
    assert.equal(status.history.filter((t) => t.event === 'paused').length, 1, 'one pause for one alert');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal((await api.rig.releases.status(releaseId)).state, 'paused', 'policy says stay paused');
    await api.rig.releases.command(releaseId, 'abort', { actor: 'chaos', reason: 'done' });
  });
});
