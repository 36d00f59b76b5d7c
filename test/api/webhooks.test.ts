// CI, GitHub and Alertmanager deliveries over real HTTP against a real worker and dev server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ReleaseStatus } from '../../src/engine/release-state';
import { ReleaseNotFoundError } from '../../src/temporal/releases';
import type { LaneRecord } from '../../workflows/definitions';
import { sha, uniqueService, waitFor } from '../helpers/temporal';
import {
  ALERTMANAGER_TOKEN,
  assertProblem,
  call,
  heldSpec,
  signedHeaders,
  specsDir,
  startApiRig,
  startApp,
  TOKENS,
  type ApiRig,
} from './helpers';

const SHOP = uniqueService('shop');
const BILLING = uniqueService('billing');
const CHECKOUT = uniqueService('checkout');
const HELD_STEPS = `
  strategy:
    steps:
      - { name: canary, phase: canary, weight: 10, bake: 30s }
      - { name: full, phase: full, weight: 100 }
  analysis: { interval: 200ms }`;

let api: ApiRig;

before(async () => {
  const { registry } = specsDir({
    'shop.yaml': `
github:
  repository: acme/shop
  workflows: [.github/workflows/build.yml]
spec:
  service: ${SHOP}
${HELD_STEPS}`,
    'billing-staging.yaml': `
github:
  repository: acme/billing
  environments: [Staging]
spec:
  service: ${BILLING}
  environment: staging
${HELD_STEPS}`,
    'checkout.yml': `
spec:
  service: ${CHECKOUT}
  alerts: { onFiring: pause, resumeOnResolved: true }
${HELD_STEPS}`,
  });
  api = await startApiRig({ specs: registry });
});
after(async () => {
  await api?.close();
});

interface RunOverrides {
  action?: string;
  conclusion?: string;
  name?: string;
  path?: string;
  branch?: string;
  event?: string;
  repository?: string;
  /** The repository the run's commit comes from: a fork's pull request names the fork. */
  headRepository?: string;
}

/** A workflow_run delivery as GitHub sends it: by default a successful push run of build.yml on main, the default branch. */
function workflowRun(headSha: string, overrides: RunOverrides = {}) {
  const repository = overrides.repository ?? 'acme/shop';
  return {
    action: overrides.action ?? 'completed',
    workflow_run: {
      id: 4711,
      name: overrides.name ?? 'build',
      path: overrides.path ?? '.github/workflows/build.yml',
      head_sha: headSha,
      head_branch: overrides.branch ?? 'main',
      event: overrides.event ?? 'push',
      status: 'completed',
      conclusion: overrides.conclusion ?? 'success',
      html_url: 'https://github.com/acme/shop/actions/runs/4711',
      run_number: 12,
      head_commit: { id: headSha, tree_id: headSha, message: 'fix checkout', timestamp: '2026-03-01T10:00:00Z', author: { name: 'Octo Cat' } },
      triggering_actor: { login: 'octocat', id: 1 },
      repository: { id: 9, full_name: repository },
      head_repository: { id: 10, full_name: overrides.headRepository ?? repository },
    },
    workflow: { id: 1, name: 'build' },
    repository: { id: 9, name: 'shop', full_name: repository, private: true, default_branch: 'main' },
    sender: { login: 'octocat', id: 1 },
  };
}

async function deliverGitHub(event: string, payload: unknown, delivery: string) {
  const raw = JSON.stringify(payload);
  return call<{ releases: { releaseId: string; disposition: string; service: string }[]; ignored?: string; replayed?: boolean }>(
    api.url,
    'POST',
    '/v1/webhooks/github',
    { raw, headers: signedHeaders(raw, { 'x-github-event': event, 'x-github-delivery': delivery }) },
  );
}

async function deliverCi(body: unknown, delivery?: string, extra: Record<string, string> = {}) {
  const raw = JSON.stringify(body);
  return call<{ releaseId: string; disposition: string; replayed?: boolean }>(api.url, 'POST', '/v1/webhooks/ci', {
    raw,
    headers: signedHeaders(raw, { ...(delivery ? { 'x-rampart-delivery': delivery } : {}), ...extra }),
  });
}

async function abort(releaseId: string) {
  await api.rig.releases.command(releaseId, 'abort', { actor: 'test', reason: 'test done' }).catch(() => undefined);
}

/**
 * Every version the service's lane has taken in, oldest first: asked of the lane, which decides, and
 * never of visibility's eventually consistent list, where a lagging count would pass vacuously.
 */
async function laneRecords(service: string, environment = 'production'): Promise<LaneRecord[]> {
  const lane = await api.rig.releases.lane(service, environment);
  return [...(lane?.recent ?? []), ...(lane?.pending ? [lane.pending] : [])];
}

describe('GitHub webhook', () => {
  test('a signed workflow_run delivered three times starts exactly one release', async () => {
    const earlier = (await laneRecords(SHOP)).length;
    const version = sha(`${SHOP}-run`);
    const payload = workflowRun(version);
    const first = await deliverGitHub('workflow_run', payload, 'delivery-1');
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.deepEqual(
      first.body.releases.map((r) => [r.service, r.disposition]),
      [[SHOP, 'started']],
    );
    const redelivered = await deliverGitHub('workflow_run', payload, 'delivery-1');
    assert.equal(redelivered.status, 200);
    assert.equal(redelivered.body.replayed, true, 'the same delivery id gets the first answer');
    const again = await deliverGitHub('workflow_run', payload, 'delivery-2');
    assert.equal(again.status, 200);
    assert.equal(again.body.releases[0]?.disposition, 'duplicate', 'a new delivery of the same version finds the existing release');
    assert.equal(again.body.releases[0]?.releaseId, first.body.releases[0]?.releaseId);

    const taken = (await laneRecords(SHOP)).slice(earlier);
    assert.deepEqual(taken.map((r) => r.releaseId), [first.body.releases[0]?.releaseId], 'the lane took in one release, this one');
    const status = await api.rig.releases.status(taken[0]!.releaseId);
    assert.equal(status.version, version);
    assert.equal(status.requestedBy, 'github:octocat');
    assert.deepEqual(status.commit, { sha: version, time: '2026-03-01T10:00:00Z' });
    await abort(status.releaseId);
  });

  test('three concurrent deliveries of one run start one release', async () => {
    const earlier = (await laneRecords(SHOP)).length;
    const version = sha(`${SHOP}-concurrent`);
    const answers = await Promise.all(['c-1', 'c-2', 'c-1'].map((id) => deliverGitHub('workflow_run', workflowRun(version), id)));
    const replayed = answers.filter((a) => a.body.replayed);
    assert.equal(replayed.length, 1, 'the copy of c-1 shares the first attempt');
    const dispositions = answers.filter((a) => !a.body.replayed).map((a) => a.body.releases[0]?.disposition).sort();
    assert.deepEqual(dispositions, ['duplicate', 'started']);
    const releaseIds = new Set(answers.map((a) => a.body.releases[0]?.releaseId));
    assert.equal(releaseIds.size, 1);
    const taken = (await laneRecords(SHOP)).slice(earlier);
    assert.deepEqual(taken.map((r) => r.version), [version]);
    await abort(taken[0]!.releaseId);
  });

  test('a fork, another branch, an unbound workflow and an untrusted trigger start nothing; each answer says why', async () => {
    const cases: [string, RunOverrides, RegExp][] = [
      ['fork', { headRepository: 'mallory/shop', event: 'pull_request', branch: 'main' }, /mallory\/shop, a fork/],
      ['fork-push', { headRepository: 'mallory/shop' }, /a fork/],
      ['branch', { branch: 'feature/x' }, /branch feature\/x is not bound \(the repository's default branch: main\)/],
      ['workflow', { name: 'build', path: '.github/workflows/lint.yml' }, /workflow build \/ \.github\/workflows\/lint\.yml is not bound/],
      ['pull-request', { event: 'pull_request' }, /started by pull_request does not release/],
      ['pull-request-target', { event: 'pull_request_target' }, /started by pull_request_target does not release/],
      ['requested', { action: 'requested' }, /only completed runs/],
      ['failed', { conclusion: 'failure' }, /only successful runs/],
    ];
    const versions: string[] = [];
    for (const [name, overrides, reason] of cases) {
      const version = sha(`${SHOP}-ignored-${name}`);
      versions.push(version);
      const answer = await deliverGitHub('workflow_run', workflowRun(version, overrides), `ignored-${name}`);
      assert.equal(answer.status, 200, `${name}: ${JSON.stringify(answer.body)}`);
      assert.match(answer.body.ignored ?? '', reason, name);
      assert.deepEqual(answer.body.releases, [], name);
    }
    // acme/billing binds deployments only: an empty workflow list releases no run (it used to mean any).
    const billingRun = workflowRun(sha(`${BILLING}-ignored-run`), { repository: 'acme/billing' });
    assert.match((await deliverGitHub('workflow_run', billingRun, 'ignored-billing')).body.ignored ?? '', /no workflow is bound/);
    await assert.rejects(api.rig.releases.status(`release/${BILLING}/staging/${billingRun.workflow_run.head_sha}`), ReleaseNotFoundError);

    const noHead = workflowRun(sha(`${SHOP}-ignored-nohead`));
    delete (noHead.workflow_run as Partial<typeof noHead.workflow_run>).head_repository;
    assert.match((await deliverGitHub('workflow_run', noHead, 'ignored-nohead')).body.ignored ?? '', /head_repository/);
    versions.push(noHead.workflow_run.head_sha);

    assert.equal((await deliverGitHub('ping', { zen: 'Keep it logically awesome.', hook_id: 1 }, 'ping-1')).body.ignored, 'pong');
    assert.equal((await deliverGitHub('push', { ref: 'refs/heads/main' }, 'push-1')).status, 200);
    const unbound = assertProblem(await deliverGitHub('workflow_run', workflowRun(sha('unbound'), { repository: 'acme/unknown' }), 'unbound-1'), 422);
    assert.equal(unbound.errors?.[0]?.field, 'body.repository.full_name');
    const badSha = assertProblem(await deliverGitHub('workflow_run', workflowRun('main'), 'bad-sha'), 400);
    assert.equal(badSha.errors?.[0]?.field, 'body.workflow_run.head_sha');

    // The release ids are deterministic and the lane answers a query: no eventually consistent list is trusted to be empty.
    for (const version of versions) {
      await assert.rejects(api.rig.releases.status(`release/${SHOP}/production/${version}`), ReleaseNotFoundError, version);
    }
    const lane = await api.rig.releases.lane(SHOP, 'production');
    const seen = [lane?.current, lane?.pending, ...(lane?.recent ?? [])].map((r) => r?.version);
    for (const version of versions) assert.ok(!seen.includes(version), `the lane saw ${version}`);
  });

  test('a workflow_dispatch run on the default branch releases', async () => {
    const version = sha(`${SHOP}-dispatch`);
    const answer = await deliverGitHub('workflow_run', workflowRun(version, { event: 'workflow_dispatch' }), 'dispatch-1');
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    assert.equal(answer.body.releases[0]?.releaseId, `release/${SHOP}/production/${version}`);
    await abort(answer.body.releases[0]!.releaseId);
  });

  test('a deployment event releases the service bound to its environment; form encoding works too', async () => {
    const version = sha(`${BILLING}-deploy`);
    const payload = {
      action: 'created',
      deployment: { id: 77, sha: version, ref: 'main', task: 'deploy', environment: 'Staging', creator: { login: 'hubot' } },
      repository: { full_name: 'acme/billing', name: 'billing' },
      sender: { login: 'hubot' },
    };
    const form = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
    const answer = await call<{ releases: { releaseId: string; disposition: string; environment: string }[] }>(api.url, 'POST', '/v1/webhooks/github', {
      raw: form,
      headers: { ...signedHeaders(form, { 'x-github-event': 'deployment', 'x-github-delivery': 'deploy-1' }), 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    assert.equal(answer.body.releases[0]?.releaseId, `release/${BILLING}/staging/${version}`);
    const status = await api.rig.releases.status(answer.body.releases[0]!.releaseId);
    assert.equal(status.requestedBy, 'github:hubot');
    await abort(status.releaseId);

    const elsewhere = sha(`${BILLING}-deploy-production`);
    const production = { ...payload, deployment: { ...payload.deployment, id: 78, sha: elsewhere, environment: 'production' } };
    const ignored = await deliverGitHub('deployment', production, 'deploy-2');
    assert.equal(ignored.status, 200, JSON.stringify(ignored.body));
    assert.match(ignored.body.ignored ?? '', /binds the GitHub environment "production"/);
    for (const environment of ['production', 'staging']) {
      await assert.rejects(api.rig.releases.status(`release/${BILLING}/${environment}/${elsewhere}`), ReleaseNotFoundError);
    }
  });
});

describe('CI webhook', () => {
  test('a delivery with its own spec starts the release; the same delivery id replays, the same version is a duplicate', async () => {
    const service = uniqueService('ci');
    const version = sha(service);
    const body = {
      service,
      version,
      commit: { sha: version, time: '2026-03-01T09:00:00+01:00' },
      pipelineUrl: 'https://ci.example.com/pipelines/42',
      requestedBy: 'jenkins',
      spec: { strategy: heldSpec(service, version).strategy, analysis: { interval: '200ms' } },
    };
    const first = await deliverCi(body, 'ci-1');
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.equal(first.body.disposition, 'started');
    const replay = await deliverCi(body, 'ci-1');
    assert.deepEqual([replay.status, replay.body.replayed, replay.body.releaseId], [200, true, first.body.releaseId]);
    const duplicate = await deliverCi(body, 'ci-2');
    assert.deepEqual([duplicate.status, duplicate.body.disposition], [200, 'duplicate']);
    const withoutId = await deliverCi(body);
    assert.deepEqual([withoutId.status, withoutId.body.disposition], [200, 'duplicate']);
    assert.deepEqual((await laneRecords(service)).map((r) => r.releaseId), [first.body.releaseId]);
    const status = await api.rig.releases.status(first.body.releaseId);
    assert.equal(status.requestedBy, 'jenkins');
    await abort(first.body.releaseId);
  });

  test('with Prefer: respond-async the delivery is accepted at once, and three deliveries still start one release', async () => {
    const service = uniqueService('async');
    const version = sha(service);
    const body = { service, version, spec: { strategy: heldSpec(service, version).strategy, analysis: { interval: '200ms' } } };
    const answers = await Promise.all(['a-1', 'a-2', undefined].map((id) => deliverCi(body, id, { prefer: 'respond-async' })));
    for (const answer of answers) {
      assert.equal(answer.status, 202, JSON.stringify(answer.body));
      assert.equal(answer.body.disposition, 'accepted');
    }
    assert.equal(new Set(answers.map((a) => a.body.releaseId)).size, 1);
    const status = await waitFor('the accepted release running', async () => api.rig.releases.status(answers[0]!.body.releaseId));
    assert.equal(status.version, version);
    assert.deepEqual((await laneRecords(service)).map((r) => r.version), [version]);
    await abort(status.releaseId);
  });

  test("a delivery without a spec uses the service's registered one, and one without a registered spec is 422", async () => {
    const version = sha(`${CHECKOUT}-ci`);
    const answer = await deliverCi({ service: CHECKOUT, version });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    const status = await waitFor('the canary step', async () => {
      const s = await api.rig.releases.status(answer.body.releaseId);
      return s.step?.name === 'canary' ? s : null;
    });
    assert.equal(status.stepCount, 2, 'the registered strategy');
    assert.equal(status.requestedBy, 'ci');
    await abort(answer.body.releaseId);

    const unknown = uniqueService('unregistered');
    const problem = assertProblem(await deliverCi({ service: unknown, version: sha(unknown) }), 422);
    assert.equal(problem.errors?.[0]?.field, 'body.spec');
    assert.equal(await api.rig.releases.lane(unknown, 'production'), null);
  });

  test('an invalid delivery is 400 naming each field, and starts nothing', async () => {
    const service = uniqueService('ci-bad');
    const problem = assertProblem(
      await deliverCi({ service, version: 'latest', pipelineUrl: 'not a url', extra: true, spec: { strategy: { steps: [{ name: 'full', phase: 'full', weight: 50 }] } } }),
      400,
    );
    const fields = problem.errors?.map((e) => e.field).sort();
    assert.deepEqual(fields, ['body.extra', 'body.pipelineUrl', 'body.spec.strategy.steps.0.weight', 'body.spec.strategy.steps.0.weight', 'body.version'].sort());
    assert.equal(await api.rig.releases.lane(service, 'production'), null);
  });
});

describe('Alertmanager webhook', () => {
  const alertsUrl = '/v1/alerts/alertmanager';

  function notification(status: 'firing' | 'resolved', alerts: { labels: Record<string, string>; startsAt?: string; endsAt?: string; fingerprint?: string }[]) {
    return {
      version: '4',
      groupKey: '{}:{alertname="RampartCanaryErrorRateAboveStable"}',
      truncatedAlerts: 0,
      status,
      receiver: 'rampart',
      groupLabels: { alertname: 'RampartCanaryErrorRateAboveStable' },
      commonLabels: {},
      commonAnnotations: {},
      externalURL: 'http://alertmanager:9093',
      alerts: alerts.map((a) => ({
        status,
        labels: { alertname: 'RampartCanaryErrorRateAboveStable', severity: 'critical', ...a.labels },
        annotations: { summary: 'Canary fails more than stable' },
        startsAt: a.startsAt ?? '2026-03-01T10:00:00.123456789Z',
        endsAt: a.endsAt ?? (status === 'firing' ? '0001-01-01T00:00:00Z' : '2026-03-01T10:05:00Z'),
        generatorURL: 'http://prometheus:9090/graph',
        fingerprint: a.fingerprint ?? `fp-${a.labels.service}`,
      })),
    };
  }

  async function notify(body: unknown, url = api.url) {
    const answer = await call<{ actions: { releaseId: string | null; action: string; detail: string }[] }>(url, 'POST', alertsUrl, {
      token: ALERTMANAGER_TOKEN,
      body,
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body.actions;
  }

  async function held(service: string, viaRegistry = false): Promise<string> {
    const version = sha(`${service}-alert-${Date.now()}`);
    const answer = viaRegistry
      ? await deliverCi({ service, version })
      : await call<{ releaseId: string }>(api.url, 'POST', '/v1/releases', { token: TOKENS.operator.token, body: heldSpec(service, version) });
    const releaseId = answer.body.releaseId;
    await waitFor('the canary to take traffic', async () => (await api.rig.releases.status(releaseId)).routes.canaryWeight > 0);
    return releaseId;
  }

  const state = async (releaseId: string): Promise<ReleaseStatus> => api.rig.releases.status(releaseId);

  test('a firing alert pauses the matching release and leaves another service alone; repeats change nothing', async () => {
    const other = uniqueService('other');
    const target = await held(CHECKOUT, true);
    const bystander = await held(other);

    const actions = await notify(notification('firing', [{ labels: { service: CHECKOUT } }]));
    assert.deepEqual(actions.map((a) => [a.releaseId, a.action]), [[target, 'paused']]);
    const paused = await state(target);
    assert.equal(paused.state, 'paused');
    assert.deepEqual([paused.pause?.cause, paused.pause?.actor], ['alert', 'alertmanager']);
    assert.match(paused.pause?.reason ?? '', /RampartCanaryErrorRateAboveStable firing/);
    assert.equal((await state(bystander)).state, 'running');

    const repeat = await notify(notification('firing', [{ labels: { service: CHECKOUT } }]));
    assert.deepEqual(repeat.map((a) => a.action), ['none']);
    assert.equal((await state(target)).history.filter((t) => t.event === 'paused').length, 1);

    const elsewhere = await notify(notification('firing', [{ labels: { service: CHECKOUT, environment: 'staging' }, fingerprint: 'fp-staging' }]));
    assert.deepEqual(elsewhere.map((a) => a.action), ['none'], 'an alert for another environment matches nothing');

    // Resolved, with a policy that resumes; then the firing notice arrives late and changes nothing.
    const resolved = await notify(notification('resolved', [{ labels: { service: CHECKOUT } }]));
    assert.deepEqual(resolved.map((a) => a.action), ['resumed']);
    assert.equal((await state(target)).state, 'running');
    const late = await notify(notification('firing', [{ labels: { service: CHECKOUT } }]));
    assert.deepEqual(late.map((a) => a.action), ['none']);
    assert.match(late[0]!.detail, /late/);
    assert.equal((await state(target)).state, 'running');
    assert.equal((await state(bystander)).state, 'running');
    await abort(target);
    await abort(bystander);
  });

  test('a resolved alert never resumes a release an operator paused, nor one whose policy says stay', async () => {
    const byOperator = await held(CHECKOUT, true);
    await notify(notification('firing', [{ labels: { service: CHECKOUT }, fingerprint: 'fp-op', startsAt: '2026-03-02T10:00:00Z' }]));
    await api.rig.releases.command(byOperator, 'resume', { actor: 'olga', reason: 'false alarm' });
    await api.rig.releases.command(byOperator, 'pause', { actor: 'olga', reason: 'my own pause' });
    const resolved = await notify(notification('resolved', [{ labels: { service: CHECKOUT }, fingerprint: 'fp-op', startsAt: '2026-03-02T10:00:00Z', endsAt: '2026-03-02T10:01:00Z' }]));
    assert.deepEqual(resolved.map((a) => a.action), ['none']);
    assert.equal((await state(byOperator)).pause?.actor, 'olga');
    await abort(byOperator);

    const service = uniqueService('staypaused');
    const unregistered = await held(service);
    await notify(notification('firing', [{ labels: { service } }]));
    assert.equal((await state(unregistered)).state, 'paused');
    const stays = await notify(notification('resolved', [{ labels: { service } }]));
    assert.deepEqual(stays.map((a) => a.action), ['none']);
    assert.match(stays[0]!.detail, /does not resume/);
    assert.equal((await state(unregistered)).state, 'paused');
    await abort(unregistered);
  });

  test('a resolve delivered to a second API process does not resume a release while another alert for it still fires', async () => {
    const second = await startApp(api.rig);
    try {
      const service = uniqueService('replicas');
      const version = sha(`${service}-alerted`);
      const answer = await call<{ releaseId: string }>(api.url, 'POST', '/v1/releases', {
        token: TOKENS.operator.token,
        body: heldSpec(service, version, { alerts: { onFiring: 'pause', resumeOnResolved: true } }),
      });
      const releaseId = answer.body.releaseId;
      await waitFor('the canary to take traffic', async () => (await state(releaseId)).routes.canaryWeight > 0);

      const firing = await notify(notification('firing', [{ labels: { service }, fingerprint: 'fp-errors' }, { labels: { service, alertname: 'Latency' }, fingerprint: 'fp-latency' }]));
      assert.deepEqual(firing.map((a) => a.action), ['paused', 'none'], 'one pause for two alerts');
      assert.deepEqual((await api.rig.releases.lane(service, 'production'))?.firingAlerts.sort(), ['fp-errors', 'fp-latency']);

      const oneResolved = await notify(notification('resolved', [{ labels: { service }, fingerprint: 'fp-errors' }]), second.url);
      assert.deepEqual(oneResolved.map((a) => a.action), ['none']);
      assert.match(oneResolved[0]!.detail, /1 other alert\(s\) still firing/);
      assert.equal((await state(releaseId)).state, 'paused', 'the other alert still fires');

      const otherResolved = await notify(notification('resolved', [{ labels: { service, alertname: 'Latency' }, fingerprint: 'fp-latency' }]), second.url);
      assert.deepEqual(otherResolved.map((a) => a.action), ['resumed']);
      assert.equal((await state(releaseId)).state, 'running');

      // The first process learns of the resolves too: a late firing notice for the older episode changes nothing there.
      const late = await notify(notification('firing', [{ labels: { service }, fingerprint: 'fp-errors' }]));
      assert.deepEqual(late.map((a) => a.action), ['none']);
      assert.match(late[0]!.detail, /late/);
      assert.equal((await state(releaseId)).state, 'running');
      await abort(releaseId);
    } finally {
      await second.close();
    }
  });

  test('a notification with more alerts than the bound is 400 naming the field, and steers nothing', async () => {
    const service = uniqueService('flood');
    const releaseId = await held(service);
    const alerts = Array.from({ length: 101 }, (_, i) => ({ labels: { service }, fingerprint: `fp-flood-${i}` }));
    const problem = assertProblem(await call(api.url, 'POST', alertsUrl, { token: ALERTMANAGER_TOKEN, body: notification('firing', alerts) }), 400);
    assert.equal(problem.errors?.[0]?.field, 'body.alerts');
    assert.match(problem.errors?.[0]?.message ?? '', /max_alerts/);
    assert.equal((await state(releaseId)).state, 'running');
    assert.deepEqual((await api.rig.releases.lane(service, 'production'))?.firingAlerts, []);
    const bounded = await notify(notification('firing', alerts.slice(0, 100)));
    assert.deepEqual([bounded.length, bounded[0]?.action], [100, 'paused']);
    await abort(releaseId);
  });

  test('rampart_action=abort rolls the release back, recorded as the alert', async () => {
    const service = uniqueService('abortme');
    const releaseId = await held(service);
    const actions = await notify(notification('firing', [{ labels: { service, rampart_action: 'abort' } }]));
    assert.ok(['aborted', 'aborting'].includes(actions[0]!.action), JSON.stringify(actions));
    const done = await waitFor('the rollback', async () => {
      const s = await state(releaseId);
      return s.state === 'aborted' ? s : null;
    });
    assert.equal(done.outcome?.actor, 'alertmanager');
    assert.equal(done.routes.canaryWeight, 0);
    const again = await notify(notification('firing', [{ labels: { service, rampart_action: 'abort' } }]));
    assert.deepEqual(again.map((a) => a.action), ['none']);
  });

  test('an invalid notification is 400 naming the field; an alert without a service label is ignored', async () => {
    const bad = await call(api.url, 'POST', alertsUrl, { token: ALERTMANAGER_TOKEN, body: { ...notification('firing', []), version: '3' } });
    assert.equal(assertProblem(bad, 400).errors?.[0]?.field, 'body.version');
    const noService = await notify(notification('firing', [{ labels: { job: 'node' }, fingerprint: 'fp-node' }]));
    assert.deepEqual(noService.map((a) => a.action), ['none']);
    assert.match(noService[0]!.detail, /no service label/);
  });
});
