// Rollback drills, DORA figures and the deployment's metrics through the API, over real HTTP, against
// a real Temporal dev server and an in-process worker whose deployment metrics the API serves.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildApp } from '../../src/api/app';
import type { ReleaseOperations } from '../../src/api/context';
import { ApiMetrics } from '../../src/api/metrics';
import { listen } from '../../src/api/server';
import { EXIT } from '../../src/cli/client';
import { run as rampart } from '../../src/cli/main';
import type { DoraFigures } from '../../src/engine/dora';
import type { DrillResult } from '../../src/engine/drill';
import type { ReleaseStatus } from '../../src/engine/release-state';
import { DeploymentMetrics } from '../../src/observability/deployment-metrics';
import { validateReleaseSpec } from '../../src/spec/parse';
import { DrillClient, type DrillScheduleSummary } from '../../src/temporal/drills';
import { fastSpec } from '../helpers/specs';
import { sha, startRig, uniqueService, waitFor, type TestRig } from '../helpers/temporal';
import { assertProblem, call, TEST_SETTINGS, TOKENS } from './helpers';

const { admin, operator, viewer } = TOKENS;

let rig: TestRig;
let url: string;
let closeApp: () => Promise<void>;
const deploymentMetrics = new DeploymentMetrics();

before(async () => {
  rig = await startRig({ metrics: deploymentMetrics });
  const app = await buildApp({
    releases: rig.releases,
    drills: new DrillClient(rig.client),
    ping: async () => {
      await rig.client.workflowService.getSystemInfo({});
    },
    settings: TEST_SETTINGS,
    registries: [deploymentMetrics.registry],
    metrics: new ApiMetrics(undefined, { dora: { cacheMs: 500 } }),
  });
  ({ url, close: closeApp } = await listen(app, { host: '127.0.0.1', port: 0, graceMs: 5_000 }));
});
after(async () => {
  await closeApp?.();
  await rig?.close();
});

/** A drill that takes a few seconds: a canary bake long enough for the analysis to see the fault, then full. */
function drillBody(service: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    service,
    spec: {
      target: { type: 'simulated' },
      strategy: {
        steps: [
          { name: 'canary', phase: 'canary', weight: 20, bake: '2s' },
          { name: 'full', phase: 'full', weight: 100 },
        ],
      },
      analysis: { interval: '200ms' },
    },
    fault: { errorRate: 0.5 },
    every: '1h',
    ...extra,
  };
}

const drillUrl = (service: string, environment = 'production') => `/v1/drills/${service}/${environment}`;

async function createDrill(service: string, extra: Record<string, unknown> = {}): Promise<DrillScheduleSummary> {
  const created = await call<DrillScheduleSummary>(url, 'POST', '/v1/drills', { token: operator.token, body: drillBody(service, extra) });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body;
}

describe('drill schedules', () => {
  test('a drill schedule created through the API fires on its own, and its result is reported as a pass with its timings', async () => {
    const service = uniqueService('drill');
    const created = await call<DrillScheduleSummary>(url, 'POST', '/v1/drills', { token: operator.token, body: drillBody(service, { every: '2s' }) });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.headers.get('location'), drillUrl(service));
    assert.deepEqual([created.body.scheduleId, created.body.paused, created.body.every], [`drill/${service}/production`, false, '2s']);

    const [result] = await waitFor(
      'a drill result',
      async () => {
        const answer = await call<{ results: DrillResult[] }>(url, 'GET', `/v1/drills/results?service=${service}&limit=5`, { token: viewer.token });
        return answer.status === 200 && answer.body.results.length > 0 ? answer.body.results : null;
      },
      30_000,
      300,
    );
    await call(url, 'DELETE', drillUrl(service), { token: admin.token });
    assert.equal(result!.result, 'passed', result!.reason);
    assert.equal(result!.outcome, 'rolled-back');
    assert.equal(result!.sloMs, 120_000);
    assert.ok(result!.timeToDetectMs !== null && result!.timeToDetectMs > 0, 'time to detect measured');
    assert.ok(result!.timeToSafeMs !== null && result!.timeToSafeMs >= result!.timeToDetectMs, 'time to safe measured');
    assert.ok(result!.timeToSafeMs < result!.sloMs);
    assert.deepEqual(rig.worker.fleet.service(service).routes, { canaryWeight: 0, internalAudience: null }, 'traffic back on stable');
  });

  test('a schedule is listed, paused and resumed with the caller’s reason, triggered now, and 404 once deleted', async () => {
    const service = uniqueService('steer');
    await createDrill(service);
    const again = assertProblem(await call(url, 'POST', '/v1/drills', { token: operator.token, body: drillBody(service) }), 409);
    assert.equal(again.errors?.[0]?.field, 'body.service');

    const listed = await call<{ drills: DrillScheduleSummary[] }>(url, 'GET', '/v1/drills', { token: viewer.token });
    assert.ok(listed.body.drills.some((d) => d.scheduleId === `drill/${service}/production`));

    const paused = await call<DrillScheduleSummary>(url, 'POST', `${drillUrl(service)}/pause`, { token: operator.token, body: { reason: 'release freeze' } });
    assert.equal(paused.status, 200);
    assert.equal(paused.body.paused, true);
    assert.equal(paused.body.note, `paused by ${operator.name}: release freeze`);
    const resumed = await call<DrillScheduleSummary>(url, 'POST', `${drillUrl(service)}/resume`, { token: operator.token, body: { reason: 'freeze over' } });
    assert.deepEqual([resumed.body.paused, resumed.body.note], [false, `resumed by ${operator.name}: freeze over`]);

    const triggered = await call<DrillScheduleSummary>(url, 'POST', `${drillUrl(service)}/trigger`, { token: operator.token });
    assert.equal(triggered.status, 202);
    const runs = await waitFor('the triggered drill to start', async () => {
      const status = await call<DrillScheduleSummary>(url, 'GET', drillUrl(service), { token: viewer.token });
      return status.body.recentRuns.length > 0 ? status.body.recentRuns : null;
    });
    assert.match(runs[0]!.workflowId, new RegExp(`^drill-run/${service}/production`));

    assertProblem(await call(url, 'DELETE', drillUrl(service), { token: operator.token }), 403);
    const deleted = await call(url, 'DELETE', drillUrl(service), { token: admin.token });
    assert.equal(deleted.status, 204);
    for (const [method, path, body] of [
      ['GET', drillUrl(service), undefined],
      ['POST', `${drillUrl(service)}/pause`, { reason: 'x' }],
      ['POST', `${drillUrl(service)}/trigger`, undefined],
      ['DELETE', drillUrl(service), undefined],
    ] as const) {
      const problem = assertProblem(await call(url, method, path, { token: admin.token, body }), 404);
      assert.equal(problem.errors?.[0]?.field, 'params', `${method} ${path}`);
      assert.match(problem.detail, new RegExp(`no drill schedule drill/${service}/production`));
    }
  });

  test('bad drill bodies, parameters and queries answer 400 naming the field, and create nothing', async () => {
    const service = uniqueService('bad');
    const cases: [Record<string, unknown>, string][] = [
      [{ every: undefined }, 'body.every'],
      [{ cron: '0 3 * * 1' }, 'body.every'],
      [{ every: '10ms' }, 'body.every'],
      [{ service: 'Bad_Name' }, 'body.service'],
      [{ fault: { errorRate: 2 } }, 'body.fault.errorRate'],
      [{ slo: 'soon' }, 'body.slo'],
      [{ overlap: 'sometimes' }, 'body.overlap'],
      [{ kind: 'chaos' }, 'body.kind'],
      [{ surprise: true }, 'body.surprise'],
      [{ spec: { version: sha('x') } }, 'body.spec.version'],
      [{ spec: { strategy: { steps: [{ name: 'a', phase: 'canary', weight: 50 }, { name: 'b', phase: 'full', weight: 10 }] } } }, 'body.spec.strategy.steps'],
    ];
    for (const [change, field] of cases) {
      const problem = assertProblem(await call(url, 'POST', '/v1/drills', { token: operator.token, body: drillBody(service, change) }), 400);
      assert.ok(problem.errors?.some((e) => e.field.startsWith(field)), `${JSON.stringify(change)}: ${JSON.stringify(problem.errors)}`);
    }
    const others: [string, string, unknown, string][] = [
      ['POST', `${drillUrl(service)}/pause`, {}, 'body.reason'],
      ['POST', `${drillUrl(service)}/resume`, { reason: '  ' }, 'body.reason'],
      ['GET', '/v1/drills/Bad_Svc/production', undefined, 'params.service'],
      ['GET', '/v1/drills/results?limit=0', undefined, 'querystring.limit'],
      ['GET', '/v1/drills/results?bogus=1', undefined, 'querystring.bogus'],
      ['GET', '/v1/dora?days=0', undefined, 'querystring.days'],
      ['GET', '/v1/dora?days=366', undefined, 'querystring.days'],
      ['GET', '/v1/dora?service=Bad_Svc', undefined, 'querystring.service'],
    ];
    for (const [method, path, body, field] of others) {
      const problem = assertProblem(await call(url, method, path, { token: admin.token, body }), 400);
      assert.equal(problem.errors?.[0]?.field, field, `${method} ${path}`);
    }
    assertProblem(await call(url, 'GET', drillUrl(service), { token: viewer.token }), 404);
  });

  test('drill and DORA routes answer 401 without a valid token and 403 for a role too low', async () => {
    const service = uniqueService('auth');
    const routes: [string, string, unknown, 'viewer' | 'operator' | 'admin'][] = [
      ['POST', '/v1/drills', drillBody(service), 'operator'],
      ['GET', '/v1/drills', undefined, 'viewer'],
      ['GET', '/v1/drills/results', undefined, 'viewer'],
      ['GET', drillUrl(service), undefined, 'viewer'],
      ['POST', `${drillUrl(service)}/pause`, { reason: 'x' }, 'operator'],
      ['POST', `${drillUrl(service)}/resume`, { reason: 'x' }, 'operator'],
      ['POST', `${drillUrl(service)}/trigger`, undefined, 'operator'],
      ['DELETE', drillUrl(service), undefined, 'admin'],
      ['GET', '/v1/dora', undefined, 'viewer'],
    ];
    for (const [method, path, body, role] of routes) {
      for (const token of [null, 'not-a-real-token-at-all']) {
        const problem = assertProblem(await call(url, method, path, { token, body }), 401);
        assert.equal(problem.errors?.[0]?.field, 'header.authorization');
      }
      const tooLow = role === 'admin' ? [viewer, operator] : role === 'operator' ? [viewer] : [];
      for (const token of tooLow) assertProblem(await call(url, method, path, { token: token.token, body }), 403);
    }
    assertProblem(await call(url, 'GET', drillUrl(service), { token: viewer.token }), 404);
  });

  test('a revert drill created with the CLI runs when triggered, and its result sits beside the others with its kind', async () => {
    const service = uniqueService('cli-revert');
    const v1 = sha(`${service}-1`);
    const straight = { steps: [{ name: 'full', phase: 'full', weight: 100, analysis: false }] };
    const first = await call<{ releaseId: string }>(url, 'POST', '/v1/releases', { token: operator.token, body: { service, version: v1, strategy: straight } });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.equal((await rig.releases.result(first.body.releaseId)).outcome?.result, 'promoted');
    await waitFor('the lane to know v1 stable', async () => (await rig.releases.lane(service, 'production'))?.stable.at(-1)?.version === v1);

    const dir = mkdtempSync(join(tmpdir(), 'rampart-revert-drill-'));
    const file = join(dir, 'drill.yaml');
    writeFileSync(file, [`service: ${service}`, 'every: 1h', 'spec:', '  strategy: { steps: [{ name: full, phase: full, weight: 100, analysis: false }] }', '  rollback: { warmWindow: 10m }', ''].join('\n'));
    const cli = async (args: string[], token: string = operator.token) => {
      let stdout = '';
      let stderr = '';
      const code = await rampart(['--url', url, '--token', token, ...args], (t) => void (stdout += t), (t) => void (stderr += t));
      return { code, stdout, stderr };
    };
    const created = await cli(['drill', 'create', file, '--kind', 'revert', '--paused']);
    assert.equal(created.code, EXIT.ok, created.stderr);
    assert.match(created.stdout, /kind\s+revert/);
    assert.equal((await call(url, 'POST', `${drillUrl(service)}/trigger`, { token: operator.token })).status, 202);
    const [result] = await waitFor('the revert drill result', async () => {
      const answer = await call<{ results: DrillResult[] }>(url, 'GET', `/v1/drills/results?service=${service}`, { token: viewer.token });
      return answer.body.results?.length ? answer.body.results : null;
    }, 60_000, 300);
    assert.equal(result!.kind, 'revert');
    assert.equal(result!.result, 'passed', result!.reason);
    assert.equal(result!.outcome, 'rolled-back-to');
    assert.match(result!.reason, /route switch to the warm instance/);
    const shown = await cli(['drill', 'results', '--service', service], viewer.token);
    assert.equal(shown.code, EXIT.ok, shown.stderr);
    assert.match(shown.stdout, new RegExp(`${service}/production\\s+revert\\s+passed`));
    await call(url, 'DELETE', drillUrl(service), { token: admin.token });
    rmSync(dir, { recursive: true, force: true });
  });

  test('the CLI creates, shows, pauses and deletes drill schedules and reads DORA, with the usual exit codes', async () => {
    const service = uniqueService('cli');
    const dir = mkdtempSync(join(tmpdir(), 'rampart-drill-'));
    const file = join(dir, 'drill.yaml');
    writeFileSync(file, [`service: ${service}`, 'every: 1h', 'fault: { errorRate: 0.4 }', 'spec:', '  analysis: { interval: 200ms }', ''].join('\n'));
    const cli = async (args: string[], token: string = operator.token) => {
      let stdout = '';
      let stderr = '';
      const code = await rampart(
        ['--url', url, '--token', token, ...args],
        (t) => void (stdout += t),
        (t) => void (stderr += t),
      );
      return { code, stdout, stderr };
    };

    const created = await cli(['drill', 'create', file, '--paused', '--slo', '90s']);
    assert.equal(created.code, EXIT.ok, created.stderr);
    assert.match(created.stdout, new RegExp(`created drill/${service}/production`));
    assert.equal((await cli(['drill', 'create', file])).code, EXIT.rejected, 'a second schedule for the service is a conflict');
    assert.equal((await cli(['drill', 'create', '--service', service])).code, EXIT.usage, 'no interval or cron');
    assert.equal((await cli(['drill', 'create', '--service', service, '--every', 'often'])).code, EXIT.usage, 'the API refuses the interval');

    const shown = await cli(['--json', 'drill', 'status', service]);
    assert.equal(shown.code, EXIT.ok, shown.stderr);
    assert.equal((JSON.parse(shown.stdout) as DrillScheduleSummary).paused, true);
    const listed = await cli(['drill', 'list'], viewer.token);
    assert.match(listed.stdout, new RegExp(`drill/${service}/production\\s+paused\\s+every 1h`));
    assert.equal((await cli(['drill', 'resume', service])).code, EXIT.usage, '--reason is required');
    const resumed = await cli(['drill', 'resume', service, 'production', '--reason', 'go']);
    assert.equal(resumed.code, EXIT.ok, resumed.stderr);
    assert.match(resumed.stdout, /state\s+active/);

    assert.equal((await cli(['drill', 'delete', service])).code, EXIT.auth, 'deleting needs an admin token');
    assert.equal((await cli(['drill', 'delete', service], admin.token)).code, EXIT.ok);
    const gone = await cli(['drill', 'status', service]);
    assert.equal(gone.code, EXIT.notFound);
    assert.match(gone.stderr, /no drill schedule/);

    const results = await cli(['--json', 'drill', 'results', '--service', service], viewer.token);
    assert.equal(results.code, EXIT.ok, results.stderr);
    assert.deepEqual(JSON.parse(results.stdout), { results: [] });
    assert.equal((await cli(['dora', '--days', '400'], viewer.token)).code, EXIT.usage);
    const dora = await cli(['dora', '--service', service], viewer.token);
    assert.equal(dora.code, EXIT.ok, dora.stderr);
    assert.match(dora.stdout, /no finished releases in the last 30 days/);
  });
});

describe('DORA figures and /metrics after a scripted set of releases', () => {
  const service = uniqueService('dora');
  const faulty = sha('dora-faulty');
  const finished: ReleaseStatus[] = [];

  before(async () => {
    const scripted = [
      { version: sha('dora-1'), commit: '2026-11-01T10:00:00.000Z' },
      { version: faulty, commit: '2026-11-02T10:00:00.000Z' },
      { version: sha('dora-2'), commit: '2026-11-03T10:00:00.000Z' },
    ];
    for (const { version, commit } of scripted) {
      const base = fastSpec(service, version, { health: { [faulty]: { errorRate: 0.2 } }, load: { maxErrorRate: 1 } });
      const { releaseId } = await rig.releases.submit(validateReleaseSpec({ ...base, commit: { sha: version.slice(0, 12), time: commit } }));
      finished.push(await rig.releases.result(releaseId));
    }
    assert.deepEqual(finished.map((r) => r.outcome?.result), ['promoted', 'rolled-back', 'promoted']);
  });

  test('GET /v1/dora reports the deployments, change failure rate, lead time and recovery time of the service', async () => {
    const [figures] = await waitFor('visibility to hold the three releases', async () => {
      const answer = await call<{ figures: DoraFigures[] }>(url, 'GET', `/v1/dora?service=${service}&days=30`, { token: viewer.token });
      const found = answer.body.figures;
      return found?.[0]?.deployments === 2 && found[0].failedDeployments === 1 ? found : null;
    });
    assert.deepEqual([figures!.service, figures!.environment, figures!.window.days], [service, 'production', 30]);
    assert.equal(figures!.deploymentFrequencyPerDay, 2 / 30);
    assert.equal(figures!.changeFailureRate, 1 / 3);
    const leadTimes = finished.filter((r) => r.outcome?.result === 'promoted').map((r) => (Date.parse(r.finishedAt!) - Date.parse(r.commit!.time)) / 1_000);
    assert.equal(figures!.leadTimeForChanges!.count, 2);
    assert.ok(Math.abs(figures!.leadTimeForChanges!.medianSeconds - (leadTimes[0]! + leadTimes[1]!) / 2) < 0.01);
    assert.equal(figures!.failedDeploymentRecoveryTime!.count, 1);

    const other = await call<{ figures: DoraFigures[] }>(url, 'GET', `/v1/dora?service=${service}&environment=staging`, { token: viewer.token });
    assert.deepEqual(other.body.figures, [], 'another environment has none');
  });

  test('/metrics carries the worker’s deployment metrics and the DORA gauges of the service', async () => {
    const where = `service="${service}",environment="production"`;
    const text = await waitFor('the DORA gauges for the service', async () => {
      const answer = await call<string>(url, 'GET', '/metrics', { token: viewer.token });
      return answer.status === 200 && answer.body.includes(`rampart_dora_deployments{${where}} 2`) ? answer.body : null;
    });
    const value = (name: string) => Number(new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1]);
    assert.equal(value(`rampart_releases_finished_total{${where},outcome="promoted"}`), 2);
    assert.equal(value(`rampart_releases_finished_total{${where},outcome="rolled-back"}`), 1);
    assert.equal(value(`rampart_dora_change_failure_rate{${where}}`), 1 / 3);
    assert.equal(value(`rampart_dora_failed_deployments{${where}}`), 1);
    assert.equal(value(`rampart_dora_deployment_frequency_per_day{${where}}`), 2 / 30);
    assert.ok(value(`rampart_dora_lead_time_seconds{${where}}`) > 0);
    assert.ok(value(`rampart_dora_recovery_time_seconds{${where}}`) > 0);
    assert.equal(value('rampart_dora_up'), 1);
    assert.match(text, /^rampart_api_requests_total\{/m, 'the API’s own metrics are still there');
  });

  test('when visibility fails, /metrics is served without the DORA gauges, and the failure is not retried at every scrape', async () => {
    let calls = 0;
    const releases: ReleaseOperations = {
      submit: (spec) => rig.releases.submit(spec),
      enqueue: (spec) => rig.releases.enqueue(spec),
      status: (id) => rig.releases.status(id),
      command: (id, name, command) => rig.releases.command(id, name, command),
      list: (filter) => rig.releases.list(filter),
      lane: (s, e) => rig.releases.lane(s, e),
      applyAlerts: (s, e, batch, region) => rig.releases.applyAlerts(s, e, batch, region),
      rollback: (s, e, request) => rig.releases.rollback(s, e, request),
      rolloutStatus: (id) => rig.releases.rolloutStatus(id),
      rolloutCommand: (id, name, command) => rig.releases.rolloutCommand(id, name, command),
      where: (s, e, regions) => rig.releases.where(s, e, regions),
      dora: async () => {
        calls += 1;
        throw new Error('visibility unavailable');
      },
    };
    const app = await buildApp({ releases, ping: async () => undefined, settings: TEST_SETTINGS, registries: [deploymentMetrics.registry] });
    const broken = await listen(app, { host: '127.0.0.1', port: 0, graceMs: 1_000 });
    try {
      for (let scrape = 0; scrape < 2; scrape++) {
        const answer = await call<string>(broken.url, 'GET', '/metrics', { token: viewer.token });
        assert.equal(answer.status, 200);
        assert.match(answer.body, /^rampart_dora_up 0$/m);
        assert.doesNotMatch(answer.body, /^rampart_dora_deployments\{/m);
        assert.match(answer.body, new RegExp(`^rampart_releases_finished_total\\{service="${service}"`, 'm'));
      }
      assert.equal(calls, 1, 'the failure is cached like a result');
      const dora = assertProblem(await call(broken.url, 'GET', '/v1/dora', { token: viewer.token }), 500);
      assert.doesNotMatch(dora.detail, /visibility/, 'the cause stays in the log');
      const drills = assertProblem(await call(broken.url, 'GET', '/v1/drills', { token: viewer.token }), 503);
      assert.match(drills.detail, /without drill schedules/);
    } finally {
      await broken.close();
    }
  });
});
