// Anytime-valid statistics for canary analysis. Pure and dependency-free: the release workflow imports
// it, so every verdict is part of the replayable history. The math and its references are in
// docs/analysis.md; the reference values the tests check against are in test/unit/fixtures/.

/** Events out of trials: errors out of requests, or slow requests out of requests. */
export interface Counts {
  events: number;
  total: number;
}

/** A time-uniform confidence interval: it holds at every look, however often the analysis looks. */
export interface Interval {
  estimate: number;
  lower: number;
  upper: number;
}

/**
 * The rate a variance is computed from: (events + 1/2) / (total + 1), so that zero errors in a
 * handful of requests does not claim zero variance (which would make a tiny sample look certain).
 */
export function varianceRate(counts: Counts): number {
  return (counts.events + 0.5) / (counts.total + 1);
}

export function rate(counts: Counts): number {
  return counts.total > 0 ? counts.events / counts.total : 0;
}

/**
 * Half-width of the normal-mixture boundary (the mixture SPRT of Robbins, as used for A/B tests by
 * Johari, Pekelis and Walsh): an estimate with variance `variance`, mixing scale `tau` (the size of
 * effect the test is tuned to find fastest), holds with probability at least 1 - alpha at every look.
 */
export function mixtureHalfWidth(variance: number, alpha: number, tau: number): number {
  if (!(variance > 0)) return 0;
  const t2 = tau * tau;
  return Math.sqrt(((variance * (variance + t2)) / t2) * (2 * Math.log(1 / alpha) + Math.log((variance + t2) / variance)));
}

/**
 * A mixing distribution for the boundary: one scale, or several with equal weight. One scale is tuned
 * to one size of effect: small scales resolve a difference of a point or two in the fewest samples
 * but need hundreds of requests to call even a +50-point canary bad; several scales find small
 * effects at a small premium (each pays log(number of scales) in the exponent) and large ones in a
 * few dozen requests. The average of the mixtures' martingales is a martingale, so Ville's inequality
 * and the anytime guarantee still hold.
 */
export type MixingScales = number | readonly number[];

/** Rampart's default: from a tenth of a point to fifty points. */
export const MIXING_SCALES: readonly number[] = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5];

/** The mixture martingale of one scale at distance x from the null, for an estimate of variance v. */
function mixtureMartingale(x: number, variance: number, tau: number): number {
  const t2 = tau * tau;
  return Math.sqrt(variance / (variance + t2)) * Math.exp((t2 * x * x) / (2 * variance * (variance + t2)));
}

/**
 * Half-width of the boundary for a mixing distribution: the distance x at which the (equally
 * weighted) mixture martingale reaches 1/alpha. With one scale it is mixtureHalfWidth's closed form;
 * with several, found by bisection (the martingale grows with x), bracketed by each scale's own
 * boundary at level alpha x weight, which the sum must reach first.
 */
export function boundaryHalfWidth(variance: number, alpha: number, scales: MixingScales): number {
  if (typeof scales === 'number') return mixtureHalfWidth(variance, alpha, scales);
  if (scales.length === 1) return mixtureHalfWidth(variance, alpha, scales[0]!);
  if (!(variance > 0)) return 0;
  const weight = 1 / scales.length;
  let high = Math.min(...scales.map((tau) => mixtureHalfWidth(variance, alpha * weight, tau)));
  let low = 0;
  const crossed = (x: number) => scales.reduce((sum, tau) => sum + weight * mixtureMartingale(x, variance, tau), 0) >= 1 / alpha;
  for (let i = 0; i < 80 && high - low > 1e-12 * Math.max(1, high); i++) {
    const mid = (low + high) / 2;
    if (crossed(mid)) high = mid;
    else low = mid;
  }
  return high;
}

/** Variance of one track's rate estimate. */
function rateVariance(counts: Counts): number {
  const p = varianceRate(counts);
  return (p * (1 - p)) / Math.max(1, counts.total);
}

/**
 * Anytime-valid interval for canary rate minus stable rate. `lower` uses `alphaLower`, `upper` uses
 * `alphaUpper`: a rollback needs stronger evidence than a pass, so the two sides differ.
 */
export function differenceInterval(canary: Counts, stable: Counts, alphaLower: number, alphaUpper: number, tau: MixingScales): Interval {
  const estimate = rate(canary) - rate(stable);
  const variance = rateVariance(canary) + rateVariance(stable);
  return { estimate, lower: estimate - boundaryHalfWidth(variance, alphaLower, tau), upper: estimate + boundaryHalfWidth(variance, alphaUpper, tau) };
}

/** Anytime-valid interval for one track's rate, for absolute limits (`max`, `min`). */
export function rateInterval(counts: Counts, alphaLower: number, alphaUpper: number, tau: MixingScales): Interval {
  const estimate = rate(counts);
  const variance = rateVariance(counts);
  return { estimate, lower: estimate - boundaryHalfWidth(variance, alphaLower, tau), upper: estimate + boundaryHalfWidth(variance, alphaUpper, tau) };
}

/**
 * How many canary requests (with as many or more for stable) a difference of `distance` needs before
 * the interval's half-width shrinks below it, at the rate `p`: what "insufficient traffic" tells the
 * operator. Found by doubling then bisection; the half-width falls monotonically with the sample.
 */
export function samplesToResolve(p: number, distance: number, alpha: number, tau: MixingScales, twoSample: boolean): number {
  if (!(distance > 0)) return Number.POSITIVE_INFINITY;
  const q = Math.min(Math.max(p, 0.001), 0.999);
  const halfWidth = (n: number) => boundaryHalfWidth(((twoSample ? 2 : 1) * q * (1 - q)) / n, alpha, tau);
  let high = 1;
  while (halfWidth(high) >= distance) {
    high *= 2;
    if (high > 1e12) return Number.POSITIVE_INFINITY;
  }
  let low = Math.floor(high / 2);
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2);
    if (halfWidth(mid) >= distance) low = mid;
    else high = mid;
  }
  return high;
}

/**
 * A latency distribution: cumulative counts at each upper bound (seconds), ascending; the last bound
 * may be Infinity, which JSON (and so a Temporal payload) carries as null.
 */
export interface Histogram {
  buckets: Array<{ le: number | null; count: number }>;
}

function upperBound(le: number | null): number {
  return typeof le === 'number' && !Number.isNaN(le) ? le : Number.POSITIVE_INFINITY;
}

/**
 * Cumulative counts from increase() over bucket series can dip from one bucket to the next (each
 * series is extrapolated on its own); like histogram_quantile, a bucket is read as at least the one below.
 */
function cumulativeCount(count: number, below: number): number {
  return Math.max(count, below);
}

export function histogramTotal(histogram: Histogram): number {
  return histogram.buckets.reduce((total, bucket) => cumulativeCount(bucket.count, total), 0);
}

/**
 * The q-quantile, interpolated linearly inside its bucket as Prometheus' histogram_quantile does (the
 * first bucket starts at 0). Null without observations; the highest finite bound when it falls in +Inf.
 */
export function histogramQuantile(histogram: Histogram, q: number): number | null {
  const total = histogramTotal(histogram);
  if (total <= 0) return null;
  const rank = q * total;
  let previousBound = 0;
  let previousCount = 0;
  for (const bucket of histogram.buckets) {
    const le = upperBound(bucket.le);
    const count = cumulativeCount(bucket.count, previousCount);
    if (count >= rank) {
      if (!Number.isFinite(le)) return previousBound;
      const inBucket = count - previousCount;
      if (inBucket <= 0) return le;
      return previousBound + ((le - previousBound) * (rank - previousCount)) / inBucket;
    }
    previousBound = le;
    previousCount = count;
  }
  return previousBound;
}

/**
 * How many observations were slower than `threshold` seconds, interpolating inside the bucket that
 * holds it (observations assumed uniform within a bucket, as histogram_quantile assumes). Rounded to
 * whole requests so the result is a count a test can use.
 */
export function countAbove(histogram: Histogram, threshold: number): Counts {
  const total = histogramTotal(histogram);
  let previousBound = 0;
  let previousCount = 0;
  let below = total;
  for (const bucket of histogram.buckets) {
    const le = upperBound(bucket.le);
    const count = cumulativeCount(bucket.count, previousCount);
    if (threshold < le) {
      const share = Number.isFinite(le) ? (threshold - previousBound) / (le - previousBound) : 0;
      below = previousCount + Math.max(0, Math.min(1, share)) * (count - previousCount);
      break;
    }
    previousBound = le;
    previousCount = count;
  }
  return { events: Math.round(total - below), total: Math.round(total) };
}
