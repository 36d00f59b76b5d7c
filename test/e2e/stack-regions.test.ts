import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort } from '../../src/net';
import { LocalDeployer } from '../../src/providers/deploy/local';
import { HaproxyRouter } from '../../src/providers/traffic/haproxy';
import { STABLE_ONLY } from '../../src/providers/traffic/router';
import { freeStackPorts, localStackStatus, regionTarget, startLocalStack, type LocalStack, type StackService } from '../../src/stack/local-stack';
import { sha, waitFor } from '../helpers/temporal';
import { allocateService, canaryWeight, Cleanups, DEMO_COMMAND, freeRegionPorts, HEALTHY, probe, type Behaviour } from './helpers';

// The local stack with regions (issue 15), on the real components: three HAProxies (one per region, each its own
// frontend, exporter and runtime socket, the same backend with the region's own slots), one Prometheus labelling every
// series with its region, one Alertmanager; the demo service runs in both slots of every region. Beside it, a stack
// without regions, whose series carry no region label: the selector `region=""` finds them.

const REGIONS = ['r1', 'r2', 'r3'] as const;
const cleanups = new Cleanups();
let workDir: string;
let stack: LocalStack;
let single: LocalStack;
let service: Required<StackService>;
let singleService: Required<StackService>;
const stable = sha('regions-stable');
const canary = sha('regions-canary');
/** The canary fails half its requests in r3 only (that region's instances get another environment), so the stack's alert rule fires for r3 alone. */
function behaviour(region: string): Record<string, Behaviour> {
  return { [stable]: HEALTHY, [canary]: region === 'r3' ? { errorRate: 0.5, latencyMs: 5 } : HEALTHY };
}
/** What Alertmanager posts to the webhook: a test server stands in for Rampart's API. */
const notifications: Array<{ status: string; labels: Record<string, string> }> = [];

function deployer(region: string, slots: { stablePort: number; canaryPort: number }): LocalDeployer {
  // One state dir for all: the same service runs once per region on this machine, and the region keeps the records apart.
  return new LocalDeployer({ command: DEMO_COMMAND, ...slots, env: { DEMO_BEHAVIOUR: JSON.stringify(behaviour(region)) }, stateDir: path.join(workDir, 'deploy'), region });
}

async function query(prometheusUrl: string, promql: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
  const response = await fetch(`${prometheusUrl}/api/v1/query?${new URLSearchParams({ query: promql }).toString()}`);
  const answer = (await response.json()) as { status: string; error?: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
  assert.equal(answer.status, 'success', `${promql}: ${answer.error}`);
  return answer.data.result;
}

before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'rampart-regions-'));
  cleanups.add('work dir', () => rm(workDir, { recursive: true, force: true }));
  service = await allocateService('regions');
  singleService = await allocateService('one-region');

  const webhook = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      const payload = JSON.parse(body) as { alerts: Array<{ status: string; labels: Record<string, string> }> };
      notifications.push(...payload.alerts);
      response.end();
    });
  });
  const webhookPort = await freePort();
  await new Promise<void>((resolve) => webhook.listen(webhookPort, '127.0.0.1', resolve));
  cleanups.add('webhook', () => new Promise((resolve) => webhook.close(resolve)));

  const regions = await freeRegionPorts(REGIONS, service.name);
  const [multi, one] = await Promise.allSettled([
    (async () =>
      startLocalStack({
        dir: path.join(workDir, 'stack'),
        services: [service],
        regions,
        ports: await freeStackPorts(),
        alertWebhookUrl: `http://127.0.0.1:${webhookPort}/v1/alerts/alertmanager`,
        alertWebhookToken: randomBytes(16).toString('hex'),
      }))(),
    (async () =>
      startLocalStack({ dir: path.join(workDir, 'single'), services: [singleService], ports: await freeStackPorts(), components: ['haproxy', 'prometheus'] }))(),
  ]);
  if (multi.status === 'fulfilled') cleanups.add('stack with regions', () => multi.value.stop());
  if (one.status === 'fulfilled') cleanups.add('stack without regions', () => one.value.stop());
  if (multi.status === 'rejected') throw multi.reason;
  if (one.status === 'rejected') throw one.reason;
  stack = multi.value;
  single = one.value;

  // Stable in every region; the canary slot filled too, at weight 0 until a test moves it.
  await Promise.all(
    REGIONS.map(async (region) => {
      const slots = regionTarget(stack, region, service.name);
      const regional = deployer(region, slots);
      cleanups.add(`instances in ${region}`, () => Promise.allSettled([regional.stop(service.name, 'stable'), regional.stop(service.name, 'canary')]));
      await regional.deploy(service.name, 'stable', stable);
      await regional.deploy(service.name, 'canary', canary);
      await new HaproxyRouter({ socket: slots.haproxySocket }).waitUntilUp(service.name);
    }),
  );
  for (const region of REGIONS) {
    const instance = await deployer(region, regionTarget(stack, region, service.name)).instance(service.name, 'stable');
    assert.equal(instance?.port, regionTarget(stack, region, service.name).stablePort, `${region}'s stable record is its own instance`);
  }
  const singleDeployer = new LocalDeployer({ command: DEMO_COMMAND, stablePort: singleService.stablePort, canaryPort: singleService.canaryPort, stateDir: path.join(workDir, 'deploy') });
  cleanups.add('instance without regions', () => singleDeployer.stop(singleService.name, 'stable'));
  await singleDeployer.deploy(singleService.name, 'stable', stable);
  await new HaproxyRouter({ socket: single.haproxySocket }).waitUntilUp(singleService.name, ['stable']);
});

after(() => cleanups.run());

test('each region is its own HAProxy, reported ready with its region, and what a region target needs comes back per region', async () => {
  const status = await localStackStatus(stack.dir);
  assert.deepEqual(
    status.map(({ component, region, running, ready }) => ({ component, region, running, ready })),
    [
      ...REGIONS.map((region) => ({ component: 'haproxy', region, running: true, ready: true })),
      { component: 'prometheus', region: undefined, running: true, ready: true },
      { component: 'alertmanager', region: undefined, running: true, ready: true },
    ],
  );
  assert.equal(new Set(status.map((s) => s.pid)).size, status.length, 'one process each');
  assert.deepEqual(stack.regions?.map((region) => region.name), [...REGIONS]);
  const sockets = REGIONS.map((region) => regionTarget(stack, region, service.name).haproxySocket);
  assert.equal(new Set(sockets).size, 3, 'a runtime socket per region');
  assert.throws(() => regionTarget(stack, 'r9', service.name), /the stack has no region "r9" \(regions: r1, r2, r3\)/);
  assert.throws(() => regionTarget(single, 'r1', singleService.name), /the stack has no region "r1" \(regions: none\)/);

  // A stack without regions is as before: one HAProxy, no region anywhere.
  assert.equal(single.regions, undefined);
  assert.deepEqual((await localStackStatus(single.dir)).map(({ component, region }) => ({ component, region })), [
    { component: 'haproxy', region: undefined },
    { component: 'prometheus', region: undefined },
  ]);
  assert.doesNotMatch(await readFile(path.join(single.dir, 'prometheus', 'prometheus.yml'), 'utf8'), /^\s*region:/m, 'no region label on any target');
});

test('each region routes on its own: weights moved in r2 only reach r2, and r1 and r3 stay on stable', async () => {
  for (const region of REGIONS) {
    const { frontendUrl } = regionTarget(stack, region, service.name);
    const tally = await probe(frontendUrl, service.name, 40);
    assert.deepEqual(tally.byVersion, { [stable]: 40 }, `${region} sends everything to stable at first`);
  }

  const r2 = regionTarget(stack, 'r2', service.name);
  await new HaproxyRouter({ socket: r2.haproxySocket }).setRoutes(service.name, { canaryWeight: 50, internalAudience: null });
  try {
    assert.equal(await canaryWeight(r2.haproxySocket, service.name), 50);
    for (const region of ['r1', 'r3']) assert.equal(await canaryWeight(regionTarget(stack, region, service.name).haproxySocket, service.name), 0, `${region}'s HAProxy is untouched`);

    const inR2 = await probe(r2.frontendUrl, service.name, 200);
    // Round robin follows the weights request by request: half and half, give or take the concurrency.
    assert.ok((inR2.byVersion[canary] ?? 0) >= 80 && (inR2.byVersion[stable] ?? 0) >= 80, `r2 splits traffic: ${JSON.stringify(inR2.byVersion)}`);
    for (const region of ['r1', 'r3']) {
      const tally = await probe(regionTarget(stack, region, service.name).frontendUrl, service.name, 100);
      assert.deepEqual(tally.byVersion, { [stable]: 100 }, `${region} still sends everything to stable`);
    }
  } finally {
    await new HaproxyRouter({ socket: r2.haproxySocket }).setRoutes(service.name, STABLE_ONLY);
  }
});

test('one Prometheus: region="r2" selects r2 series only, every region is there, and region="" finds the stack without regions', { timeout: 60_000 }, async () => {
  const r2 = regionTarget(stack, 'r2', service.name);
  await new HaproxyRouter({ socket: r2.haproxySocket }).setRoutes(service.name, { canaryWeight: 100, internalAudience: null });
  try {
    await probe(r2.frontendUrl, service.name, 50);
    const canaryAnswers = `haproxy_server_http_responses_total{proxy="${service.name}",server="canary"}`;
    // Only r2's canary answered anyone: Prometheus must say so per region.
    const perRegion = await waitFor('the r2 canary answers scraped', async () => {
      const rows = await query(stack.prometheusUrl, `sum by (region) (${canaryAnswers})`);
      const byRegion = Object.fromEntries(rows.map((row) => [row.metric.region, Number(row.value[1])]));
      return (byRegion.r2 ?? 0) >= 50 && byRegion;
    }, 20_000, 250);
    assert.deepEqual(Object.keys(perRegion).sort(), [...REGIONS], 'every region is scraped, and every series has a region');
    assert.equal(perRegion.r1, 0);
    assert.equal(perRegion.r3, 0);

    const onlyR2 = await query(stack.prometheusUrl, `haproxy_server_http_responses_total{proxy="${service.name}",region="r2"}`);
    assert.ok(onlyR2.length > 0);
    assert.deepEqual([...new Set(onlyR2.map((row) => row.metric.region))], ['r2']);
    assert.deepEqual([...new Set(onlyR2.map((row) => row.metric.instance))], [`127.0.0.1:${stack.regions![1]!.ports.haproxyExporter}`], "r2's series come from r2's HAProxy");
    assert.equal(
      Number((await query(stack.prometheusUrl, `sum(${canaryAnswers.replace('}', ',region="r2"}')})`))[0]?.value[1]),
      perRegion.r2,
      'region="r2" adds up to what the per-region sum said',
    );

    // The instances too: the app's own histogram, per region and track.
    const appCounts = await waitFor('the r2 canary instance scraped', async () => {
      const rows = await query(stack.prometheusUrl, `sum by (region) (http_request_duration_seconds_count{service="${service.name}",track="canary"})`);
      const byRegion = Object.fromEntries(rows.map((row) => [row.metric.region, Number(row.value[1])]));
      return (byRegion.r2 ?? 0) >= 50 && byRegion;
    }, 20_000, 250);
    assert.equal(appCounts.r1, 0);
    assert.equal(appCounts.r3, 0);

    // Every series of a stack with regions has one, so region="" finds none of them...
    assert.deepEqual(await query(stack.prometheusUrl, `haproxy_server_http_responses_total{proxy="${service.name}",region=""}`), []);
    // ...and all of a stack without regions: the default queries select region="" for a target without one.
    await probe(single.frontendUrl, singleService.name, 20);
    const unlabelled = await waitFor('the stack without regions scraped', async () => {
      const rows = await query(single.prometheusUrl, `haproxy_server_http_responses_total{proxy="${singleService.name}",server="stable",region=""}`);
      return rows.reduce((sum, row) => sum + Number(row.value[1]), 0) >= 20 && rows;
    }, 20_000, 250);
    assert.ok(unlabelled.every((row) => row.metric.region === undefined && row.metric.environment === single.environment));
  } finally {
    await new HaproxyRouter({ socket: r2.haproxySocket }).setRoutes(service.name, STABLE_ONLY);
  }
});

test("the stack's alert rule fires for the region whose canary fails, and Alertmanager posts it with its region", { timeout: 120_000 }, async () => {
  // r3's canary takes all of r3's traffic and fails half of it; r1 serves the same rate on stable. (r2's canary took
  // traffic in the tests before, and answered it well.)
  const r3 = regionTarget(stack, 'r3', service.name);
  const r1 = regionTarget(stack, 'r1', service.name);
  await new HaproxyRouter({ socket: r3.haproxySocket }).setRoutes(service.name, { canaryWeight: 100, internalAudience: null });
  let sending = true;
  const traffic = Promise.all([r1, r3].map(async (region) => {
    while (sending) await probe(region.frontendUrl, service.name, 20, {}, 4);
  }));
  try {
    const firing = await waitFor('the alert for r3 at the webhook', async () =>
      notifications.find((alert) => alert.status === 'firing' && alert.labels.alertname === 'RampartCanaryErrorRateAboveStable' && alert.labels.service === service.name),
    100_000, 500);
    assert.equal(firing.labels.region, 'r3');
    assert.equal(firing.labels.environment, stack.environment);
    const rules = await query(stack.prometheusUrl, `ALERTS{alertname="RampartCanaryErrorRateAboveStable",proxy="${service.name}"}`);
    assert.deepEqual([...new Set(rules.map((row) => row.metric.region))], ['r3'], 'no other region alerts');
  } finally {
    sending = false;
    await traffic;
    await new HaproxyRouter({ socket: r3.haproxySocket }).setRoutes(service.name, STABLE_ONLY);
  }
});
