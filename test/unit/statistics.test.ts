// The statistics against values computed independently, in Python from the papers' formulas
// (test/unit/fixtures/statistics_reference.py says how, and how to regenerate).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { TAU } from '../../src/engine/analysis';
import {
  boundaryHalfWidth,
  countAbove,
  differenceInterval,
  histogramQuantile,
  histogramTotal,
  MIXING_SCALES,
  mixtureHalfWidth,
  rateInterval,
  samplesToResolve,
  type Counts,
  type Histogram,
} from '../../src/engine/statistics';

type Buckets = Array<[number | null, number]>;
interface Reference {
  halfWidths: Array<{ variance: number; alpha: number; tau: number; halfWidth: number }>;
  differences: Array<{ canary: Counts; stable: Counts; alphaLower: number; alphaUpper: number; tau: number; estimate: number; lower: number; upper: number }>;
  oneSample: Array<{ counts: Counts; alphaLower: number; alphaUpper: number; tau: number; estimate: number; lower: number; upper: number }>;
  quantiles: Array<{ histogram: string; buckets: Buckets; q: number; value: number | null }>;
  countAbove: Array<{ histogram: string; buckets: Buckets; threshold: number; total: number; above: number }>;
  monteCarlo: { bounds: { everFailedAtMargin: number }; scenarios: Scenario[]; mixtureScales: number[]; mixtureScenarios: Scenario[] };
  mixtureHalfWidths: Array<{ variance: number; alpha: number; scales: number[]; halfWidth: number }>;
  mixtureDifferences: Array<{ canary: Counts; stable: Counts; alphaLower: number; alphaUpper: number; scales: number[]; estimate: number; lower: number; upper: number }>;
  mixtureOneSample: Array<{ counts: Counts; alphaLower: number; alphaUpper: number; scales: number[]; estimate: number; lower: number; upper: number }>;
  samplesToResolve: Array<{ rate: number; distance: number; alpha: number; twoSample: boolean; scales: number[]; samples: number }>;
}
interface Scenario {
  scenario: string;
  everFailed: number;
  canaryRate: number;
  stableRate: number;
}

const reference = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'statistics-reference.json'), 'utf8')) as Reference;
const histogram = (buckets: Buckets): Histogram => ({ buckets: buckets.map(([le, count]) => ({ le, count })) });

/** Equal to 1e-9 relative (absolute near zero): the same math in another arrangement only differs in the last bits. */
function close(actual: number, expected: number, what: string): void {
  const tolerance = 1e-9 * Math.max(1e-6, Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} differs from the reference ${expected}`);
}

describe('the normal-mixture boundary', () => {
  test(`half-widths match the reference (${reference.halfWidths.length} cases, variances 1e-12 to 0.25)`, () => {
    for (const c of reference.halfWidths) close(mixtureHalfWidth(c.variance, c.alpha, c.tau), c.halfWidth, `v=${c.variance} alpha=${c.alpha} tau=${c.tau}`);
  });

  test('zero, negative or NaN variance gives a zero half-width, never NaN', () => {
    for (const variance of [0, -1, Number.NaN]) assert.equal(mixtureHalfWidth(variance, 0.01, 0.02), 0);
  });
});

/**
 * A mixture's half-width is found by bisection, which stops within 1e-12 of the boundary (relative
 * above 1, absolute below: a trillionth of a share) and keeps the end that has crossed it, so the
 * width is never narrower than the reference and at most that much wider.
 */
function closeFromAbove(actual: number, expected: number, what: string): void {
  const slack = 1e-12 * Math.max(1, Math.abs(expected)) + 1e-13 * Math.abs(expected);
  assert.ok(actual >= expected - 1e-15 * Math.max(1, Math.abs(expected)) && actual - expected <= slack, `${what}: ${actual} differs from the reference ${expected} by ${actual - expected}`);
}

describe('the boundary of a discrete mixture of scales', () => {
  test('the reference was computed for the scales the judge uses', () => {
    assert.deepEqual([...MIXING_SCALES], reference.monteCarlo.mixtureScales);
    assert.deepEqual(TAU, MIXING_SCALES);
  });

  test(`half-widths match the reference (${reference.mixtureHalfWidths.length} cases, variances 1e-12 to 1, and other sets of scales)`, () => {
    for (const c of reference.mixtureHalfWidths) closeFromAbove(boundaryHalfWidth(c.variance, c.alpha, c.scales), c.halfWidth, `v=${c.variance} alpha=${c.alpha} scales=${c.scales.join(',')}`);
  });

  test('zero, negative or NaN variance gives a zero half-width, never NaN', () => {
    for (const variance of [0, -1, Number.NaN]) assert.equal(boundaryHalfWidth(variance, 0.01, MIXING_SCALES), 0);
  });

  test(`differences of two shares match the reference (${reference.mixtureDifferences.length} cases)`, () => {
    for (const c of reference.mixtureDifferences) {
      const interval = differenceInterval(c.canary, c.stable, c.alphaLower, c.alphaUpper, c.scales);
      const what = `canary ${c.canary.events}/${c.canary.total} stable ${c.stable.events}/${c.stable.total} alphas ${c.alphaLower}/${c.alphaUpper}`;
      close(interval.estimate, c.estimate, `${what} estimate`);
      closeFromAbove(c.estimate - interval.lower, c.estimate - c.lower, `${what} lower half-width`);
      closeFromAbove(interval.upper - c.estimate, c.upper - c.estimate, `${what} upper half-width`);
    }
  });

  test(`one-sample intervals match the reference (${reference.mixtureOneSample.length} cases)`, () => {
    for (const c of reference.mixtureOneSample) {
      const interval = rateInterval(c.counts, c.alphaLower, c.alphaUpper, c.scales);
      const what = `${c.counts.events}/${c.counts.total} alphas ${c.alphaLower}/${c.alphaUpper}`;
      close(interval.estimate, c.estimate, `${what} estimate`);
      closeFromAbove(c.estimate - interval.lower, c.estimate - c.lower, `${what} lower half-width`);
      closeFromAbove(interval.upper - c.estimate, c.upper - c.estimate, `${what} upper half-width`);
    }
  });
});

describe('intervals for shares', () => {
  test(`differences of two shares match the reference (${reference.differences.length} cases: tiny, zero, large, p near 0 and 1)`, () => {
    for (const c of reference.differences) {
      const interval = differenceInterval(c.canary, c.stable, c.alphaLower, c.alphaUpper, c.tau);
      const what = `canary ${c.canary.events}/${c.canary.total} stable ${c.stable.events}/${c.stable.total} tau ${c.tau}`;
      close(interval.estimate, c.estimate, `${what} estimate`);
      close(interval.lower, c.lower, `${what} lower`);
      close(interval.upper, c.upper, `${what} upper`);
    }
  });

  test(`one-sample intervals match the reference (${reference.oneSample.length} cases)`, () => {
    for (const c of reference.oneSample) {
      const interval = rateInterval(c.counts, c.alphaLower, c.alphaUpper, c.tau);
      const what = `${c.counts.events}/${c.counts.total} alphas ${c.alphaLower}/${c.alphaUpper}`;
      close(interval.estimate, c.estimate, `${what} estimate`);
      close(interval.lower, c.lower, `${what} lower`);
      close(interval.upper, c.upper, `${what} upper`);
    }
  });

  test('every reference interval is finite, ordered and contains its estimate', () => {
    for (const c of [...reference.differences, ...reference.oneSample]) {
      assert.ok(Number.isFinite(c.lower) && Number.isFinite(c.upper));
      assert.ok(c.lower < c.estimate && c.estimate < c.upper);
    }
  });
});

describe('samplesToResolve', () => {
  const cases: Array<[string, number, number, number, boolean]> = [
    ['a 2-point difference at 1%, two samples, 95%', 0.01, 0.02, 0.05, true],
    ['a 2-point difference at 1%, one sample, 95%', 0.01, 0.02, 0.05, false],
    ['a 5-point difference at 10%, 99%', 0.1, 0.05, 0.01, true],
    ['a 0.2-point difference at 0%, clamped to 0.1%', 0, 0.002, 0.05, true],
    ['a 1-point difference at 100%, clamped to 99.9%', 1, 0.01, 0.05, false],
  ];
  for (const [name, p, distance, alpha, twoSample] of cases) {
    test(`${name}: the smallest sample whose half-width is below the distance`, () => {
      const n = samplesToResolve(p, distance, alpha, 0.02, twoSample);
      const q = Math.min(Math.max(p, 0.001), 0.999);
      const width = (size: number) => mixtureHalfWidth(((twoSample ? 2 : 1) * q * (1 - q)) / size, alpha, 0.02);
      assert.ok(Number.isInteger(n) && n >= 1);
      assert.ok(width(n) < distance, `half-width at ${n} is ${width(n)}`);
      if (n > 1) assert.ok(width(n - 1) >= distance, `half-width at ${n - 1} is already ${width(n - 1)}`);
    });
  }
  test(`sample sizes match the reference, solved there for the variance instead (${reference.samplesToResolve.length} cases, one scale and the mixture)`, () => {
    for (const c of reference.samplesToResolve) {
      const scales = c.scales.length === 1 ? c.scales[0]! : c.scales;
      assert.equal(samplesToResolve(c.rate, c.distance, c.alpha, scales, c.twoSample), c.samples, `${c.distance} at ${c.rate}, alpha ${c.alpha}, scales ${c.scales.join(',')}`);
    }
  });

  test('no distance to resolve is never resolved', () => {
    assert.equal(samplesToResolve(0.01, 0, 0.05, 0.02, true), Number.POSITIVE_INFINITY);
    assert.equal(samplesToResolve(0.01, Number.NaN, 0.05, 0.02, true), Number.POSITIVE_INFINITY);
  });
});

describe('histograms, as PromQL histogram_quantile reads them', () => {
  test(`quantiles match the reference (${reference.quantiles.length} cases, +Inf as null, non-monotone and fractional counts)`, () => {
    for (const c of reference.quantiles) {
      const value = histogramQuantile(histogram(c.buckets), c.q);
      if (c.value === null) assert.equal(value, null, `${c.histogram} q=${c.q}`);
      else close(value ?? Number.NaN, c.value, `${c.histogram} q=${c.q}`);
    }
  });

  test(`observations above a threshold match the reference, rounded to whole requests (${reference.countAbove.length} cases)`, () => {
    for (const c of reference.countAbove) {
      const counts = countAbove(histogram(c.buckets), c.threshold);
      const what = `${c.histogram} above ${c.threshold}`;
      assert.equal(counts.total, Math.round(c.total), `${what} total`);
      assert.ok(Math.abs(counts.events - c.above) <= 0.5 + 1e-9, `${what}: ${counts.events} is not ${c.above} rounded`);
      assert.ok(counts.events >= 0 && counts.events <= counts.total, `${what}: ${counts.events} of ${counts.total}`);
    }
  });

  test('an empty histogram has no quantile and nothing above any threshold', () => {
    assert.equal(histogramQuantile({ buckets: [] }, 0.95), null);
    assert.equal(histogramTotal({ buckets: [] }), 0);
    assert.deepEqual(countAbove({ buckets: [] }, 0.1), { events: 0, total: 0 });
  });
});

describe('the Monte-Carlo of continuous monitoring (run in Python, recorded in the reference)', () => {
  test('a canary exactly at the margin is rolled back in at most 1 - confidence of releases, looked at 200 times', () => {
    const { bounds, scenarios } = reference.monteCarlo;
    assert.ok(scenarios.length >= 6);
    for (const s of scenarios) assert.ok(s.everFailed <= bounds.everFailedAtMargin, `${s.scenario}: ${s.everFailed}`);
  });

  test('with the mixture of scales too, on the same simulated requests', () => {
    const { bounds, scenarios, mixtureScenarios } = reference.monteCarlo;
    assert.equal(mixtureScenarios.length, scenarios.length);
    for (const s of mixtureScenarios) assert.ok(s.everFailed <= bounds.everFailedAtMargin, `${s.scenario}: ${s.everFailed}`);
  });
});
