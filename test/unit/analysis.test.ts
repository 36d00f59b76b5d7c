// The judge, table-tested on the default analysis a user gets: the error share within 2 points of
// stable and at most 5%, p95 within 1.25x of stable; rollback at 99% confidence, pass at 95%.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  explainRun,
  judgeCheck,
  judgeEvidence,
  judgeSyntheticLoad,
  runOutcome,
  TAU,
  type CheckEvidence,
  type CheckVerdict,
  type JudgeOptions,
  type TrackEvidence,
  type VerdictOutcome,
} from '../../src/engine/analysis';
import { differenceInterval, type Histogram } from '../../src/engine/statistics';
import { analysisSchema, type CheckSpec } from '../../src/spec/release-spec';

const analysis = analysisSchema.parse({});
const [errorRate, latencyP95] = analysis.checks as [CheckSpec, CheckSpec];
const options: JudgeOptions = { confidence: analysis.confidence, passConfidence: analysis.passConfidence, minCanarySamples: analysis.minCanarySamples, stableServes: true };

const counts = (events: number, total: number): TrackEvidence => ({ kind: 'counts', events, total });
const errors = (canary: TrackEvidence | null, stable: TrackEvidence | null): CheckEvidence => ({ check: 'error-rate', canary, stable });

/** Prometheus' default buckets (seconds), filled from an exponential latency distribution with the given mean. */
const BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
function latencies(requests: number, meanSeconds: number): Histogram {
  const buckets = BOUNDS.map((le) => ({ le, count: Math.round(requests * (1 - Math.exp(-le / meanSeconds))) }));
  return { buckets: [...buckets, { le: null, count: requests }] };
}
const histogram = (h: Histogram): TrackEvidence => ({ kind: 'histogram', ...h });
const latency = (canary: TrackEvidence | null, stable: TrackEvidence | null): CheckEvidence => ({ check: 'latency-p95', canary, stable });

describe('the error share against stable (default: 2-point margin, at most 5%)', () => {
  const cases: Array<[string, CheckEvidence, Partial<JudgeOptions>, VerdictOutcome, RegExp]> = [
    ['equal 1% rates with lots of data pass', errors(counts(100, 10_000), counts(1_000, 100_000)), {}, 'pass', /^canary 1% \(100\/10000\) is within 2% of stable 1% \(1000\/100000\): difference 0%, interval \[-[\d.]+%, [\d.]+%\]; canary 1% \(100\/10000\) against the maximum 5%/],
    ['equal 0% rates with lots of data pass', errors(counts(0, 5_000), counts(0, 50_000)), {}, 'pass', /is within 2% of stable 0%/],
    ['5 points over stable fails at 99% confidence', errors(counts(60, 1_000), counts(100, 10_000)), {}, 'fail', /canary 6% \(60\/1000\) exceeds stable 1% .* by more than 2%: difference 5%.*\(99% confidence\)/],
    ['20 points over stable fails on three hundred requests', errors(counts(63, 300), counts(10, 1_000)), {}, 'fail', /exceeds stable/],
    ['a handful of requests is insufficient traffic, with what it needs', errors(counts(1, 14), counts(20, 2_000)), {}, 'inconclusive', /^insufficient traffic: 14 canary requests; about \d+ needed to tell 2% at 95%$/],
    ['a handful of internal requests says only internal users reach the canary', errors(counts(0, 3), counts(20, 2_000)), { internalOnly: true }, 'inconclusive', /insufficient traffic: 3 canary requests \(only internal users reach the canary in this step\)/],
    ['equal rates on too little data for a pass is not enough evidence yet', errors(counts(3, 200), counts(20, 2_000)), {}, 'inconclusive', /^not enough evidence yet: canary 1.5% \(3\/200\) may or may not exceed stable 1% .* by more than 2%: .*; about \d+ canary requests needed to tell$/],
    ['no canary data is inconclusive, never a pass', errors(null, counts(20, 2_000)), {}, 'inconclusive', /^no data for the canary$/],
    ['zero canary requests are inconclusive, never a pass', errors(counts(0, 0), counts(20, 2_000)), {}, 'inconclusive', /no data for the canary/],
    ['no internal traffic says so', errors(counts(0, 0), counts(20, 2_000)), { internalOnly: true }, 'inconclusive', /no canary traffic: no internal users reached the canary yet/],
    ['no stable data is inconclusive, never a pass', errors(counts(10, 1_000), null), {}, 'inconclusive', /no data for stable to compare against \(0 stable requests\)/],
    ['a query error is an error', { check: 'error-rate', canary: null, stable: null, error: 'connection refused' }, {}, 'error', /^query failed: connection refused$/],
  ];
  for (const [name, evidence, extra, outcome, message] of cases) {
    test(name, () => {
      const verdict = judgeCheck(errorRate, evidence, { ...options, ...extra });
      assert.equal(verdict.outcome, outcome, verdict.message);
      assert.match(verdict.message, message);
    });
  }

  test('a verdict carries its evidence: counts, estimate, interval and the limit', () => {
    const verdict = judgeCheck(errorRate, errors(counts(60, 1_000), counts(100, 10_000)), options);
    assert.deepEqual(verdict.canary, { events: 60, total: 1_000 });
    assert.deepEqual(verdict.stable, { events: 100, total: 10_000 });
    assert.equal(verdict.limit, 0.02);
    const interval = differenceInterval({ events: 60, total: 1_000 }, { events: 100, total: 10_000 }, 0.01, 0.05, TAU);
    assert.ok(Math.abs(verdict.interval![0] - interval.lower) < 1e-12 && Math.abs(verdict.interval![1] - interval.upper) < 1e-12, `${verdict.interval} vs ${interval.lower},${interval.upper}`);
    assert.ok(verdict.interval![0] > 0.02, 'a failure means the whole interval is beyond the margin');
  });

  test('the samples-needed figure is what it would take: the same rates with that many requests decide', () => {
    const verdict = judgeCheck(errorRate, errors(counts(1, 14), counts(20, 2_000)), options);
    const needed = verdict.samplesNeeded!;
    assert.ok(needed > 50 && needed < 100_000, `needed ${needed}`);
    const later = judgeCheck(errorRate, errors(counts(Math.round(needed * 0.01), needed), counts(needed * 10 * 0.01, needed * 10)), options);
    assert.equal(later.outcome, 'pass', later.message);
  });

  test('the absolute maximum fails a canary far above it even when it matches stable', () => {
    const verdict = judgeCheck(errorRate, errors(counts(200, 1_000), counts(2_000, 10_000)), options);
    assert.equal(verdict.outcome, 'fail');
    assert.match(verdict.message, /against the maximum 5%/);
  });

  test('a minimum fails a success share that is, with confidence, below it', () => {
    const successes: CheckSpec = { name: 'success', kind: 'ratio', events: 'ok', total: 'all', min: 0.99 };
    assert.equal(judgeCheck(successes, { check: 'success', canary: counts(900, 1_000), stable: null }, options).outcome, 'fail');
    assert.equal(judgeCheck(successes, { check: 'success', canary: counts(9_990, 10_000), stable: null }, options).outcome, 'pass');
  });

  describe('exactly at the margin, float rounding does not decide', () => {
    const marginOnly: CheckSpec = { name: 'error-rate', kind: 'ratio', events: 'e', total: 't', maxIncreaseOverStable: 0.02 };
    // 0.07 - 0.05 is 0.020000000000000004 and 0.03 - 0.01 is 0.019999999999999997 in floating point.
    const cases: Array<[string, number, number]> = [
      ['7% against 5% on a billion requests each is not a failure', 70_000_000, 50_000_000],
      ['3% against 1% on a billion requests each is not a pass', 30_000_000, 10_000_000],
      ['7% against 5% on a hundred requests each is not a failure', 7, 5],
    ];
    for (const [name, canaryErrors, stableErrors] of cases) {
      test(name, () => {
        const total = canaryErrors > 100 ? 1_000_000_000 : 100;
        const verdict = judgeCheck(marginOnly, errors(counts(canaryErrors, total), counts(stableErrors, total)), options);
        assert.equal(verdict.outcome, 'inconclusive', verdict.message);
        assert.ok(verdict.interval![0] < 0.02 && verdict.interval![1] > 0.02, `interval ${verdict.interval!.join(', ')}`);
      });
    }
  });
});

describe('latency against stable (default: p95 within 1.25x)', () => {
  const stable = histogram(latencies(20_000, 0.02));
  const cases: Array<[string, CheckEvidence, VerdictOutcome, RegExp]> = [
    ['as fast as stable passes', latency(histogram(latencies(5_000, 0.02)), stable), 'pass', /canary p95 \d+ ms: [\d.]+% of 5000 canary requests slower than \d+ ms \(1.25x stable's p95 of \d+ ms; at most 5% allowed\)/],
    ['twice as slow as stable fails', latency(histogram(latencies(2_000, 0.04)), stable), 'fail', /canary p95 \d+ ms: .* \(99% confidence\)$/],
    ['five times as slow fails on three hundred requests', latency(histogram(latencies(300, 0.1)), stable), 'fail', /slower than/],
    ['a handful of requests is insufficient traffic', latency(histogram(latencies(12, 0.02)), stable), 'inconclusive', /^insufficient traffic: 12 canary requests; about \d+ needed to judge the p95 at 95%$/],
    ['no canary latency data is inconclusive', latency(null, stable), 'inconclusive', /no latency data for the canary/],
    ['an empty canary histogram is inconclusive', latency(histogram(latencies(0, 0.02)), stable), 'inconclusive', /no latency data for the canary/],
    ['no stable latency data is inconclusive', latency(histogram(latencies(5_000, 0.02)), null), 'inconclusive', /no latency data for stable to compare against/],
  ];
  for (const [name, evidence, outcome, message] of cases) {
    test(name, () => {
      const verdict = judgeCheck(latencyP95, evidence, options);
      assert.equal(verdict.outcome, outcome, verdict.message);
      assert.match(verdict.message, message);
    });
  }

  test("the threshold is 1.25x stable's interpolated p95, and the verdict names it", () => {
    const verdict = judgeCheck(latencyP95, latency(histogram(latencies(2_000, 0.04)), stable), options);
    // Stable's p95 of an exponential with a 20 ms mean falls in the 50-100 ms bucket.
    assert.ok(verdict.thresholdSeconds! > 1.25 * 0.05 && verdict.thresholdSeconds! < 1.25 * 0.1, `threshold ${verdict.thresholdSeconds}`);
    assert.ok(Math.abs(verdict.limit! - 0.05) < 1e-12);
  });

  test('an absolute maximum in seconds fails a canary whose p95 is above it', () => {
    const capped: CheckSpec = { name: 'latency-p95', kind: 'latency', buckets: 'b', quantile: 0.95, max: 0.05 };
    assert.equal(judgeCheck(capped, latency(histogram(latencies(2_000, 0.04)), null), options).outcome, 'fail');
    assert.equal(judgeCheck(capped, latency(histogram(latencies(5_000, 0.005)), null), options).outcome, 'pass');
  });
});

describe('at 100%, where stable serves nothing', () => {
  const full = { ...options, stableServes: false };
  test('the comparison with stable is skipped and the absolute maximum still judges', () => {
    const healthy = judgeCheck(errorRate, errors(counts(10, 1_000), null), full);
    assert.equal(healthy.outcome, 'pass', healthy.message);
    assert.match(healthy.message, /against the maximum 5%/);
    const bad = judgeCheck(errorRate, errors(counts(200, 1_000), null), full);
    assert.equal(bad.outcome, 'fail', bad.message);
  });
  test('a check with only a comparison says it was not compared', () => {
    const verdict = judgeCheck(latencyP95, latency(histogram(latencies(1_000, 0.04)), null), full);
    assert.equal(verdict.outcome, 'pass');
    assert.match(verdict.message, /^not compared: stable takes no traffic at 100%/);
  });
  test('too little canary traffic is still insufficient', () => {
    assert.equal(judgeCheck(errorRate, errors(counts(0, 10), null), full).outcome, 'inconclusive');
  });
});

describe('a look: every check, and the canary server', () => {
  const healthy = [errors(counts(100, 10_000), counts(1_000, 100_000)), latency(histogram(latencies(10_000, 0.02)), histogram(latencies(100_000, 0.02)))];

  test('a healthy canary passes every default check', () => {
    const run = judgeEvidence(analysis.checks, { checks: healthy, windowSeconds: 600 }, options, '2026-12-01T00:00:00Z', 'canary');
    assert.equal(run.outcome, 'pass', explainRun(run));
    assert.deepEqual(run.verdicts.map((v) => v.check), ['error-rate', 'latency-p95']);
  });

  test('a canary the router reports down fails whatever its counters say', () => {
    const run = judgeEvidence(analysis.checks, { checks: healthy, windowSeconds: 600, canaryDown: 'server canary is DOWN (L4CON)' }, options, '', 'canary');
    assert.equal(run.outcome, 'fail');
    assert.match(explainRun(run), /^canary-health: the canary is down while it takes traffic: server canary is DOWN \(L4CON\)$/);
  });

  test('no evidence at all is inconclusive, never a pass', () => {
    const run = judgeEvidence(analysis.checks, { checks: [], windowSeconds: 0 }, options, '', 'canary');
    assert.equal(run.outcome, 'inconclusive');
    assert.match(explainRun(run), /error-rate: no data for the canary; latency-p95: no latency data for the canary/);
  });

  test('the outcome is the worst verdict: fail over error over inconclusive over pass', () => {
    const v = (outcome: VerdictOutcome): CheckVerdict => ({ check: outcome, outcome, message: '' });
    const cases: Array<[VerdictOutcome[], VerdictOutcome]> = [
      [[], 'pass'],
      [['pass', 'pass'], 'pass'],
      [['pass', 'inconclusive'], 'inconclusive'],
      [['inconclusive', 'error'], 'error'],
      [['error', 'fail', 'pass'], 'fail'],
    ];
    for (const [outcomes, expected] of cases) assert.equal(runOutcome(outcomes.map(v)), expected, outcomes.join('+'));
  });
});

describe('the synthetic step: the new version against stable under the same load', () => {
  const load = { maxIncreaseOverStable: 0.02, maxLatencyRatioOverStable: 1.25 };
  const sample = (requests: number, errorShare: number, meanSeconds: number) => ({ requests, errors: Math.round(requests * errorShare), histogram: latencies(requests, meanSeconds) });
  const judge = { confidence: 0.99, passConfidence: 0.95, minCanarySamples: 50 };

  test('a version as healthy as stable passes, 1% errors both', () => {
    const run = judgeSyntheticLoad(load, { canary: sample(3_000, 0.01, 0.02), stable: sample(3_000, 0.01, 0.02) }, judge, '', 'synthetic');
    assert.equal(run.outcome, 'pass', explainRun(run));
  });
  test('a version 5x slower fails', () => {
    const run = judgeSyntheticLoad(load, { canary: sample(3_000, 0.01, 0.1), stable: sample(3_000, 0.01, 0.02) }, judge, '', 'synthetic');
    assert.equal(run.outcome, 'fail');
    assert.match(explainRun(run), /^load-latency-p95: /);
  });
  test('without stable, absolute limits judge with their sample size', () => {
    const run = judgeSyntheticLoad({ ...load, maxErrorRate: 0.05 }, { canary: sample(3_000, 0.2, 0.02), stable: null }, judge, '', 'synthetic');
    assert.equal(run.outcome, 'fail');
    assert.match(explainRun(run), /load-errors: .*against the maximum 5%/);
  });
});

describe('absolute limits when stable has no data', () => {
  test('a canary clearly above the maximum fails even though the comparison cannot decide', () => {
    const verdict = judgeCheck(errorRate, errors(counts(300, 1000), null), options);
    assert.equal(verdict.outcome, 'fail');
    assert.match(verdict.message, /against the maximum 5%/);
  });

  test('a canary within the maximum stays undecided without stable: the comparison is still owed', () => {
    const verdict = judgeCheck(errorRate, errors(counts(10, 1000), null), options);
    assert.equal(verdict.outcome, 'inconclusive');
    assert.match(verdict.message, /no data for stable/);
  });

  test('intervals are shown within [0, 1]', () => {
    const verdict = judgeCheck(errorRate, errors(counts(0, 60), counts(0, 60_000)), options);
    assert.ok(verdict.interval![0] >= -1 && verdict.interval![1] <= 1);
    const max = judgeCheck({ name: 'success', kind: 'ratio', events: '', total: '', min: 0.9 }, errors(counts(995, 1000), null), { ...options, stableServes: false });
    assert.ok(max.interval![1] <= 1, `upper ${max.interval![1]}`);
  });
});
