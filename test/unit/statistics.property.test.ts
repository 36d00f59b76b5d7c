// Properties of the statistics and the judge, over generated inputs. Every run is seeded (fast-check's
// `seed`, and a seeded PRNG inside each simulated release), so a failure reproduces exactly.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { judgeCheck, TAU, type JudgeOptions } from '../../src/engine/analysis';
import {
  boundaryHalfWidth,
  countAbove,
  differenceInterval,
  histogramQuantile,
  histogramTotal,
  MIXING_SCALES,
  mixtureHalfWidth,
  rateInterval,
  type Histogram,
  type MixingScales,
} from '../../src/engine/statistics';
import type { RatioCheckSpec } from '../../src/spec/release-spec';

const SEED = 20261201;

/** mulberry32: a small seeded PRNG, so each simulated release is reproducible from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Positions (1-based) of the errors among `n` requests, each an error with probability `p`: geometric gaps, one draw per error. */
function errorPositions(random: () => number, p: number, n: number): number[] {
  const positions: number[] = [];
  const logMiss = Math.log1p(-p);
  // A rate too small to tell from 0 in floating point gives no errors (and no endless loop).
  if (!(logMiss < 0)) return positions;
  for (let at = 0; ; ) {
    at += Math.floor(Math.log(1 - random()) / logMiss) + 1;
    if (at > n) return positions;
    positions.push(at);
  }
}

// The judge's defaults (release-spec.ts).
const judge: JudgeOptions = { confidence: 0.99, passConfidence: 0.95, minCanarySamples: 20, stableServes: true };
// Sized to run in about 15 s: an undecided look costs the judge a samplesToResolve search (tens of boundary solves).
const LOOKS = 40;
const RELEASES_PER_SCENARIO = 150;
const SCENARIOS = 16;

/**
 * One release judged every `lookEvery` requests with the canary's error rate `excess` above stable's;
 * did any look fail it? With `excess` equal to the check's margin the release sits exactly on the
 * null hypothesis, where the false-alarm bound is tight.
 */
function everFails(check: RatioCheckSpec, stableRate: number, excess: number, canaryShare: number, lookEvery: number, seed: number): boolean {
  const random = prng(seed);
  const requests = LOOKS * lookEvery;
  const canaryFinal = Math.round(canaryShare * requests);
  const canaryErrors = errorPositions(random, stableRate + excess, canaryFinal);
  const stableErrors = errorPositions(random, stableRate, requests - canaryFinal);
  let c = 0;
  let s = 0;
  for (let look = 1; look <= LOOKS; look++) {
    const canaryTotal = Math.round(canaryShare * look * lookEvery);
    const stableTotal = look * lookEvery - canaryTotal;
    while (c < canaryErrors.length && canaryErrors[c]! <= canaryTotal) c++;
    while (s < stableErrors.length && stableErrors[s]! <= stableTotal) s++;
    // A look whose difference is within the margin cannot fail (the interval's lower end is below its
    // estimate, a property below), so only the others are put to the judge: twice the releases for the time.
    if (canaryTotal > 0 && stableTotal > 0 && c / canaryTotal - s / stableTotal <= (check.maxIncreaseOverStable ?? 0)) continue;
    const evidence = { check: check.name, canary: { kind: 'counts' as const, events: c, total: canaryTotal }, stable: { kind: 'counts' as const, events: s, total: stableTotal } };
    if (judgeCheck(check, evidence, judge).outcome === 'fail') return true;
  }
  return false;
}

/** Simulated releases over generated scenarios (stable's rate in [0, 0.2], the canary's share of traffic, the look interval). */
function falseAlarms(margin: number): { releases: number; failed: number } {
  const check: RatioCheckSpec = { name: 'error-rate', kind: 'ratio', events: 'e', total: 't', maxIncreaseOverStable: margin };
  let releases = 0;
  let failed = 0;
  fc.assert(
    fc.property(
      fc.double({ min: 0, max: 0.2, noNaN: true }),
      fc.double({ min: 0.02, max: 0.5, noNaN: true }),
      fc.integer({ min: 100, max: 600 }),
      fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      (stableRate, canaryShare, lookEvery, seed) => {
        let scenarioFailed = 0;
        for (let r = 0; r < RELEASES_PER_SCENARIO; r++) scenarioFailed += everFails(check, stableRate, margin, canaryShare, lookEvery, seed + r) ? 1 : 0;
        releases += RELEASES_PER_SCENARIO;
        failed += scenarioFailed;
        // 1% of 150 releases is 1.5: a scenario whose true rate were at the bound would exceed 6 about 0.05% of the time.
        return scenarioFailed <= 6;
      },
    ),
    { seed: SEED, numRuns: SCENARIOS },
  );
  return { releases, failed };
}

describe('the judge under continuous monitoring, with its default mixture of scales', () => {
  test('the judge uses the discrete mixture of scales', () => {
    assert.equal(TAU, MIXING_SCALES);
    assert.ok(Array.isArray(TAU) && TAU.length > 1);
  });

  test(`a canary equal to stable, judged with no margin, is rolled back in at most 1 - confidence of releases (${SCENARIOS} scenarios x ${RELEASES_PER_SCENARIO} releases, ${LOOKS} looks each)`, (t) => {
    const { releases, failed } = falseAlarms(0);
    t.diagnostic(`${failed} of ${releases} rolled back`);
    assert.ok(failed / releases <= 1 - judge.confidence, `${failed} of ${releases} healthy releases rolled back`);
  });

  test('a canary exactly 2 points worse than stable, the default margin, is rolled back in at most 1 - confidence of releases', (t) => {
    const { releases, failed } = falseAlarms(0.02);
    t.diagnostic(`${failed} of ${releases} rolled back`);
    assert.ok(failed / releases <= 1 - judge.confidence, `${failed} of ${releases} releases at the margin rolled back`);
  });
});

describe('the statistics', () => {
  const alpha = fc.double({ min: 0.001, max: 0.4, noNaN: true });
  const tau = fc.double({ min: 0.001, max: 0.5, noNaN: true });
  const counts = fc.integer({ min: 0, max: 1_000_000 }).chain((total) => fc.record({ events: fc.integer({ min: 0, max: total }), total: fc.constant(total) }));

  test('the half-width shrinks as the sample grows', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.0001, max: 0.9999, noNaN: true }), fc.integer({ min: 1, max: 10_000_000 }), fc.integer({ min: 1, max: 10_000_000 }), alpha, tau, (p, a, b, al, t) => {
        const [small, large] = a < b ? [a, b] : [b, a];
        return mixtureHalfWidth((p * (1 - p)) / large, al, t) <= mixtureHalfWidth((p * (1 - p)) / small, al, t);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  test('a lower alpha (more confidence) never narrows the interval', () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-12, max: 0.25, noNaN: true }), alpha, alpha, tau, (variance, a, b, t) => {
        const [strict, loose] = a < b ? [a, b] : [b, a];
        return mixtureHalfWidth(variance, strict, t) >= mixtureHalfWidth(variance, loose, t);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  /** The judge's default half the time, otherwise one to eight scales in any order. */
  const scales: fc.Arbitrary<readonly number[]> = fc.oneof(fc.constant(MIXING_SCALES), fc.array(fc.double({ min: 0.001, max: 1, noNaN: true }), { minLength: 1, maxLength: 8 }));
  const mixing: fc.Arbitrary<MixingScales> = fc.oneof(tau, scales);
  /** Variances over twelve decades, as a handful of requests to billions would give. */
  const variance = fc.double({ min: -12, max: 0, noNaN: true }).map((exponent) => 10 ** exponent);
  /** The bisection stops within 1e-12 of the boundary (relative above 1): two nearly equal widths may swap by that much. */
  const atMost = (a: number, b: number) => a <= b + 1e-12 * Math.max(1, b);

  test('with a mixture of scales, the half-width grows with the variance', () => {
    fc.assert(
      fc.property(variance, variance, alpha, scales, (a, b, al, s) => {
        const [small, large] = a < b ? [a, b] : [b, a];
        return atMost(boundaryHalfWidth(small, al, s), boundaryHalfWidth(large, al, s));
      }),
      { seed: SEED, numRuns: 400 },
    );
  });

  test('with a mixture of scales, a lower alpha never narrows the interval', () => {
    fc.assert(
      fc.property(variance, alpha, alpha, scales, (v, a, b, s) => {
        const [strict, loose] = a < b ? [a, b] : [b, a];
        return atMost(boundaryHalfWidth(v, loose, s), boundaryHalfWidth(v, strict, s));
      }),
      { seed: SEED, numRuns: 400 },
    );
  });

  test("a mixture's half-width lies between its best scale's at alpha and its best scale's at alpha / number of scales", () => {
    // The average of the scales' martingales is at most the largest, so it reaches 1/alpha no sooner
    // than the first scale alone would; and one scale alone, weighted 1/k, reaches 1/alpha at its
    // own level-alpha/k boundary, so the average has reached it by then.
    fc.assert(
      fc.property(variance, alpha, scales, (v, al, s) => {
        const width = boundaryHalfWidth(v, al, s);
        const sanity = Math.min(...s.map((t) => mixtureHalfWidth(v, al, t)));
        const bracket = Math.min(...s.map((t) => mixtureHalfWidth(v, al / s.length, t)));
        return width >= sanity * (1 - 1e-12) && width <= bracket;
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  test('one scale given as a list is that scale', () => {
    fc.assert(
      fc.property(variance, alpha, tau, (v, al, t) => boundaryHalfWidth(v, al, [t]) === mixtureHalfWidth(v, al, t) && boundaryHalfWidth(v, al, t) === mixtureHalfWidth(v, al, t)),
      { seed: SEED, numRuns: 200 },
    );
  });

  test('every interval contains its estimate, and is finite', () => {
    fc.assert(
      fc.property(counts, counts, alpha, alpha, mixing, (canary, stable, al, au, t) => {
        for (const interval of [differenceInterval(canary, stable, al, au, t), rateInterval(canary, al, au, t)]) {
          if (!(Number.isFinite(interval.lower) && Number.isFinite(interval.upper))) return false;
          if (!(interval.lower < interval.estimate && interval.estimate < interval.upper)) return false;
        }
        return true;
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  /** Ascending bounds, non-negative increments, and the +Inf bucket as null (as JSON carries it). */
  const histograms = fc
    // Bounds on a 0.1 ms grid, as real bucket layouts are: bounds a few ulps apart would only test float rounding.
    .array(fc.tuple(fc.integer({ min: 5, max: 20_000 }).map((tenthsOfMs) => tenthsOfMs / 10_000), fc.integer({ min: 0, max: 500 })), { minLength: 1, maxLength: 14 })
    .chain((raw) =>
      fc.integer({ min: 0, max: 200 }).map((overflow): Histogram => {
        const bounds = [...new Set(raw.map(([bound]) => bound))].sort((x, y) => x - y);
        let cumulative = 0;
        const buckets: Histogram['buckets'] = bounds.map((le, i) => ({ le, count: (cumulative += raw[i]![1]) }));
        return { buckets: [...buckets, { le: null, count: cumulative + overflow }] };
      }),
    );

  test('the count above a threshold falls as the threshold rises', () => {
    fc.assert(
      fc.property(histograms, fc.double({ min: 0, max: 3, noNaN: true }), fc.double({ min: 0, max: 3, noNaN: true }), (h, a, b) => {
        const [low, high] = a < b ? [a, b] : [b, a];
        const above = countAbove(h, low);
        return above.events >= countAbove(h, high).events && above.events <= above.total && above.total === histogramTotal(h);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  test('the quantile inverts the count above: about (1 - q) of requests are slower than the q-quantile', () => {
    fc.assert(
      fc.property(histograms, fc.double({ min: 0.01, max: 0.999, noNaN: true }), (h, q) => {
        const total = histogramTotal(h);
        const quantile = histogramQuantile(h, q);
        if (total === 0) return quantile === null;
        if (quantile === null) return false;
        const slower = countAbove(h, quantile).events;
        const highestFinite = h.buckets.at(-2)?.le ?? 0;
        // Past the highest finite bound the quantile is clamped to it, so at least that share is slower.
        if (quantile >= (highestFinite ?? 0) && (h.buckets.at(-2)?.count ?? 0) < q * total) return slower >= (1 - q) * total - 1;
        return Math.abs(slower - (1 - q) * total) <= 1;
      }),
      { seed: SEED, numRuns: 500 },
    );
  });
});
