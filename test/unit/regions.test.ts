import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createActivities } from '../../activities';
import { createDrillActivities } from '../../activities/drill';
import { createLaneActivities } from '../../activities/lane';
import { createRolloutActivities } from '../../activities/rollout';
import { computeDora, type ReleaseRecord } from '../../src/engine/dora';
import { distinctActivities } from '../../workers/worker';
import { InvalidSpecError, validateReleaseSpec } from '../../src/spec/parse';
import { rolloutPlan } from '../../src/spec/release-spec';

const version = 'abcdef0123456789abcdef0123456789abcdef01';

function problems(input: Record<string, unknown>): Array<{ field: string; message: string }> {
  try {
    validateReleaseSpec({ service: 'shop', version, ...input });
  } catch (error) {
    assert.ok(error instanceof InvalidSpecError);
    return error.problems;
  }
  assert.fail('expected the spec to be rejected');
}

const localTarget = {
  type: 'local',
  command: ['node', 'demo.js'],
  stablePort: 9001,
  canaryPort: 9002,
  haproxySocket: '127.0.0.1:9999',
  prometheusUrl: 'http://127.0.0.1:9090',
  env: { LOG_LEVEL: 'info', API_KEY_REF: 'base' },
};

describe('regions and waves in the spec', () => {
  test('a spec without regions has no rollout plan and keeps today\'s queries working without a region', () => {
    const spec = validateReleaseSpec({ service: 'shop', version });
    assert.equal(rolloutPlan(spec), null);
    assert.equal(spec.region, undefined);
    const errors = spec.analysis.checks[0]!;
    assert.ok(errors.kind === 'ratio' && errors.total.includes('region="{{region}}"'));
  });

  test('regions merge over the base target; later waves take the shorter strategy; a region may bring its own', () => {
    const spec = validateReleaseSpec({
      service: 'shop',
      version,
      target: localTarget,
      regions: {
        pilot: { target: { stablePort: 9101, canaryPort: 9102, env: { API_KEY_REF: 'pilot-key' } } },
        'eu-1': { target: { stablePort: 9201, canaryPort: 9202, haproxySocket: '127.0.0.1:9298' } },
        'us-1': {
          target: { stablePort: 9301, canaryPort: 9302 },
          strategy: { steps: [{ name: 'all', phase: 'full', weight: 100, bake: '1s' }] },
          analysis: { interval: '2s' },
          alerts: { onFiring: 'abort' },
        },
      },
      waves: [['pilot'], ['eu-1', 'us-1']],
      rollout: { laterWaves: { steps: [{ name: 'half', phase: 'ramp', weight: 50, bake: '30s' }, { name: 'full', phase: 'full', weight: 100 }] }, soak: '2m', onFailure: 'rollback-all' },
    });
    const plan = rolloutPlan(spec)!;
    assert.deepEqual(plan.waves, [['pilot'], ['eu-1', 'us-1']]);
    assert.equal(plan.soakMs, 120_000);
    assert.equal(plan.onFailure, 'rollback-all');
    const pilot = plan.specs.pilot!;
    assert.equal(pilot.region, 'pilot');
    assert.equal(pilot.regions, undefined);
    assert.equal(pilot.waves, undefined);
    assert.ok(pilot.target.type === 'local');
    assert.equal(pilot.target.stablePort, 9101);
    assert.equal(pilot.target.haproxySocket, '127.0.0.1:9999');
    assert.deepEqual(pilot.target.env, { LOG_LEVEL: 'info', API_KEY_REF: 'pilot-key' });
    assert.deepEqual(pilot.strategy.steps.map((s) => s.name), spec.strategy.steps.map((s) => s.name), 'the first wave runs the full strategy');
    const eu = plan.specs['eu-1']!;
    assert.ok(eu.target.type === 'local' && eu.target.haproxySocket === '127.0.0.1:9298');
    assert.deepEqual(eu.strategy.steps.map((s) => [s.name, s.bake]), [['half', 30_000], ['full', 0]]);
    const us = plan.specs['us-1']!;
    assert.deepEqual(us.strategy.steps.map((s) => s.name), ['all']);
    assert.equal(us.analysis.interval, 2_000);
    assert.equal(us.analysis.checks.length, spec.analysis.checks.length);
    assert.equal(us.alerts.onFiring, 'abort');
    assert.equal(eu.alerts.onFiring, 'pause');
  });

  test('simulated regions each get a fleet of their own, with their own health', () => {
    const plan = rolloutPlan(
      validateReleaseSpec({
        service: 'shop',
        version,
        regions: { r1: {}, r2: { target: { health: { [version]: { errorRate: 0.5 } } } } },
        waves: [['r1'], ['r2']],
      }),
    )!;
    const [r1, r2] = [plan.specs.r1!.target, plan.specs.r2!.target];
    assert.ok(r1.type === 'simulated' && r2.type === 'simulated');
    assert.equal(r1.fleet, 'r1');
    assert.equal(r2.fleet, 'r2');
    assert.equal(r1.health[version], undefined);
    assert.equal(r2.health[version]?.errorRate, 0.5);
    assert.equal(plan.onFailure, 'halt');
    assert.equal(plan.soakMs, 0);
  });

  test('every mistake names its field', () => {
    const regions = { r1: {}, r2: {}, r3: {} };
    assert.deepEqual(problems({ regions, waves: [['r1'], ['r2', 'nowhere'], ['r3']] }).map((p) => p.field), ['waves.1.1']);
    assert.match(problems({ regions, waves: [['r1'], ['r2', 'nowhere'], ['r3']] })[0]!.message, /no region "nowhere".*r1, r2, r3/);
    const twice = problems({ regions, waves: [['r1', 'r2'], ['r2', 'r3']] });
    assert.deepEqual(twice.map((p) => p.field), ['waves.1.0']);
    assert.match(twice[0]!.message, /already in wave 1/);
    assert.deepEqual(problems({ regions, waves: [['r1'], [], ['r2', 'r3']] }).map((p) => p.field), ['waves.1']);
    const missing = problems({ regions, waves: [['r1'], ['r2']] });
    assert.deepEqual(missing.map((p) => p.field), ['regions.r3']);
    assert.match(missing[0]!.message, /in no wave/);
    assert.deepEqual(problems({ regions }).map((p) => p.field), ['waves']);
    assert.deepEqual(problems({ waves: [['r1']] }).map((p) => p.field), ['waves']);
    assert.deepEqual(problems({ rollout: { soak: '1m' } }).map((p) => p.field), ['rollout']);
    assert.deepEqual(problems({ regions: {}, waves: [] }).map((p) => p.field).sort(), ['regions', 'waves']);
    assert.deepEqual(problems({ regions: { R1: {} }, waves: [['R1']] }).map((p) => p.field)[0], 'regions.R1');
    assert.deepEqual(problems({ regions, waves: [['r1', 'r2', 'r3']], rollout: { onFailure: 'panic' } }).map((p) => p.field), ['rollout.onFailure']);
    assert.deepEqual(problems({ regions, waves: [['r1', 'r2', 'r3']], rollout: { soak: 'soon' } }).map((p) => p.field), ['rollout.soak']);
    assert.deepEqual(problems({ regions, waves: [['r1', 'r2', 'r3']], region: 'r1' }).map((p) => p.field), ['region']);
  });

  test('a bad override inside a region is named by the region', () => {
    const bad = problems({
      target: localTarget,
      regions: { r1: {}, r2: { target: { stablePort: 'ninety' } }, r3: { strategy: { steps: [{ name: 'half', phase: 'ramp', weight: 50 }] } } },
      waves: [['r1'], ['r2', 'r3']],
    });
    assert.deepEqual(bad.map((p) => p.field), ['regions.r2.target.stablePort', 'regions.r3.strategy.steps.0.weight']);
    const later = problems({
      regions: { r1: {}, r2: {} },
      waves: [['r1'], ['r2']],
      rollout: { laterWaves: { steps: [{ name: 'half', phase: 'ramp', weight: 50 }] } },
    });
    assert.deepEqual(later.map((p) => p.field), ['rollout.laterWaves.steps.0.weight']);
    const foreign = problems({ regions: { r1: { target: { stablePort: 1 } } }, waves: [['r1']] });
    assert.deepEqual(foreign.map((p) => p.field), ['regions.r1.target'], 'a simulated target has no ports');
    assert.match(foreign[0]!.message, /stablePort/);
    assert.deepEqual(problems({ regions: { r1: { endpoint: 'x' } }, waves: [['r1']] }).map((p) => p.field), ['regions.r1']);
  });
});

describe('DORA with rollouts', () => {
  test('one rollout is one deployment of the service; its regions are the detail', () => {
    const at = (minutes: number) => new Date(Date.UTC(2026, 0, 10, 12, minutes)).toISOString();
    const record = (extra: Partial<ReleaseRecord>): ReleaseRecord => ({
      service: 'shop',
      environment: 'production',
      version: version,
      outcome: 'promoted',
      startTime: at(0),
      closeTime: at(10),
      commitTime: null,
      timeToSafeMs: null,
      drill: false,
      ...extra,
    });
    const records = [
      record({}), // the rollout of version 1, promoted everywhere
      record({ region: 'r1' }),
      record({ region: 'r2' }),
      record({ region: 'r3' }),
      record({ outcome: 'rolled-back', closeTime: at(30) }), // the rollout of version 2: r2 failed, rollback-all
      record({ region: 'r1', closeTime: at(20) }),
      record({ region: 'r2', outcome: 'rolled-back', closeTime: at(25) }),
      record({ region: 'r1', outcome: 'rolled-back-to', rollback: true, closeTime: at(29) }),
    ];
    const [figures] = computeDora(records, { from: new Date(Date.UTC(2026, 0, 1)), to: new Date(Date.UTC(2026, 0, 31)) });
    assert.equal(figures!.deployments, 1);
    assert.equal(figures!.failedDeployments, 1);
    assert.equal(figures!.changeFailureRate, 0.5);
    assert.deepEqual(figures!.regions, { r1: { deployments: 2, failures: 1 }, r2: { deployments: 1, failures: 1 }, r3: { deployments: 1, failures: 0 } });
    const [plain] = computeDora([record({})], { from: new Date(Date.UTC(2026, 0, 1)), to: new Date(Date.UTC(2026, 0, 31)) });
    assert.equal(plain!.regions, undefined, 'a service without regions keeps today\'s figures');
  });
});

describe('the worker', () => {
  test('every activity name is defined once across the activity sets (a rollout activity once shadowed a drill one)', () => {
    const releases = {} as never;
    const sets = [createActivities({ providers: {} as never }), createDrillActivities({ releases }), createLaneActivities({ releases }), createRolloutActivities({ releases })];
    const merged = distinctActivities(...sets);
    assert.equal(Object.keys(merged).length, sets.reduce((n, set) => n + Object.keys(set).length, 0));
    assert.throws(() => distinctActivities({ awaitRelease: () => 1 }, { awaitRelease: () => 2 }), /awaitRelease is defined twice/);
  });
});
