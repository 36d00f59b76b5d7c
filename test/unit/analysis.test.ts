import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decide, EMPTY_TALLY, judgeMeasurement, runPhase, tally, type AnalysisTally, type Measurement } from '../../src/engine/analysis';

const errorRate = { name: 'error-rate', max: 0.05, maxIncreaseOverStable: 0.02 };

describe('judgeMeasurement', () => {
  const cases: Array<[string, { canary: number | null; stable: number | null; error?: string }, Measurement['phase'], RegExp]> = [
    ['healthy canary equal to stable', { canary: 0.01, stable: 0.01 }, 'Successful', /within thresholds/],
    ['exactly 2 points above stable passes', { canary: 0.03, stable: 0.01 }, 'Successful', /within/],
    ['more than 2 points above stable fails', { canary: 0.031, stable: 0.01 }, 'Failed', /exceeds stable 0.01 by 0.021/],
    ['above the absolute maximum fails', { canary: 0.06, stable: 0.059 }, 'Failed', /above the maximum 0.05/],
    ['no canary data is inconclusive, never a pass', { canary: null, stable: 0.01 }, 'Inconclusive', /no data for the canary/],
    ['no stable data to compare is inconclusive', { canary: 0.0, stable: null }, 'Inconclusive', /no data for stable/],
    ['a query error is an error', { canary: null, stable: null, error: 'connection refused' }, 'Error', /query failed: connection refused/],
  ];
  for (const [name, raw, phase, message] of cases) {
    test(name, () => {
      const m = judgeMeasurement(errorRate, { check: 'error-rate', ...raw });
      assert.equal(m.phase, phase);
      assert.match(m.message, message);
    });
  }

  test('a minimum threshold fails a value below it', () => {
    assert.equal(judgeMeasurement({ name: 'rps', min: 10 }, { check: 'rps', canary: 9, stable: null }).phase, 'Failed');
    assert.equal(judgeMeasurement({ name: 'rps', min: 10 }, { check: 'rps', canary: 10, stable: null }).phase, 'Successful');
  });
});

describe('runPhase takes the worst measurement', () => {
  const m = (phase: Measurement['phase']): Measurement => ({ check: 'c', canary: 0, stable: 0, phase, message: '' });
  const cases: Array<[Measurement['phase'][], Measurement['phase']]> = [
    [[], 'Successful'],
    [['Successful', 'Successful'], 'Successful'],
    [['Successful', 'Inconclusive'], 'Inconclusive'],
    [['Inconclusive', 'Error'], 'Error'],
    [['Error', 'Failed', 'Successful'], 'Failed'],
  ];
  for (const [phases, expected] of cases) test(`${phases.join('+') || 'none'} -> ${expected}`, () => assert.equal(runPhase(phases.map(m)), expected));
});

describe('decide', () => {
  const limits = { failureLimit: 1, inconclusiveLimit: 2, consecutiveSuccesses: 2 };
  const run = (phase: Measurement['phase']) => ({ at: '', step: 's', phase, measurements: [{ check: 'error-rate', canary: null, stable: null, phase, message: 'why' }] });
  function replay(phases: Measurement['phase'][]): { counts: AnalysisTally; decision: ReturnType<typeof decide> } {
    let counts = EMPTY_TALLY;
    let decision: ReturnType<typeof decide> = { kind: 'continue', healthy: false };
    for (const phase of phases) {
      counts = tally(counts, phase);
      decision = decide(limits, counts, run(phase));
    }
    return { counts, decision };
  }
  test('one success is not yet healthy when two in a row are required', () => assert.deepEqual(replay(['Successful']).decision, { kind: 'continue', healthy: false }));
  test('two successes in a row are healthy', () => assert.deepEqual(replay(['Successful', 'Successful']).decision, { kind: 'continue', healthy: true }));
  test('a failure resets the run of successes', () => assert.deepEqual(replay(['Successful', 'Failed', 'Successful']).decision, { kind: 'continue', healthy: false }));
  test('failures within the limit continue', () => assert.equal(replay(['Failed']).decision.kind, 'continue'));
  test('failures over the limit fail, naming the check', () => {
    const { decision } = replay(['Failed', 'Failed']);
    assert.equal(decision.kind, 'fail');
    assert.match((decision as { reason: string }).reason, /failed 2 time\(s\), limit 1: error-rate: why/);
  });
  test('inconclusive over the limit pauses, never passes', () => {
    const { decision } = replay(['Inconclusive', 'Error', 'Inconclusive']);
    assert.equal(decision.kind, 'pause');
  });
  test('inconclusive results never count as successes', () => {
    assert.equal(replay(['Inconclusive', 'Inconclusive']).counts.consecutiveSuccesses, 0);
  });
});

describe('at 100%, where stable serves nothing', () => {
  test('the comparison with stable is skipped, the absolute thresholds still apply', () => {
    assert.equal(judgeMeasurement(errorRate, { check: 'error-rate', canary: 0.01, stable: null }, { stableServes: false }).phase, 'Successful');
    assert.equal(judgeMeasurement(errorRate, { check: 'error-rate', canary: 0.09, stable: null }, { stableServes: false }).phase, 'Failed');
    assert.equal(judgeMeasurement(errorRate, { check: 'error-rate', canary: 0.01, stable: null }).phase, 'Inconclusive');
  });
});
