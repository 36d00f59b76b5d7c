// A seeded model of user traffic in front of a stable and a canary slot: what the judge would see from
// a real router and a real app, noise included. Pure, no timers: the caller says which window of time
// to generate and under which routes, so the same model serves the wall-clock fleet and the judgment
// benchmark's simulated clock.
//
// The model, per track (canary, stable):
// - users arrive as a Poisson process of rate `trafficPerSecond`; a share `internalShare` of them are
//   internal users. Internal users reach the canary when the internal audience is on; of the rest,
//   `canaryWeight`% do (Poisson thinning: each track's arrivals are again Poisson, independent);
// - each answered request is an error with the version's `errorRate` (binomial);
// - its latency is log-normal around the version's median (`latencyMs`) with sigma LATENCY_SIGMA;
//   the histogram is a multinomial over the buckets' probabilities (the log-normal CDF);
// - from `crashesAt` on, the version answers nothing: every request routed to it is a refused
//   connection, counted as an error of that track (as HAProxy's connection_errors_total would).
// Counts over a window are drawn at once (exact samplers, see random.ts), never request by request,
// so a million requests cost as much as a hundred.
import type { Counts, Histogram } from '../../engine/statistics';
import { LOAD_HISTOGRAM_BOUNDS } from '../load/generator';
import type { Random } from './random';

/**
 * Spread of latencies around the median: log-normal with this sigma, so p95 is about 1.64x the
 * median and p99 about 2.0x (a quiet service; real ones often have heavier tails).
 */
export const LATENCY_SIGMA = 0.3;

/** Upper bounds of the latency histogram, in seconds; one more bucket above the last (+Inf). */
export const LATENCY_BOUNDS: readonly number[] = LOAD_HISTOGRAM_BOUNDS;

export interface VersionBehaviour {
  errorRate: number;
  /** Median latency in milliseconds. */
  latencyMs: number;
  /** When (seconds, on the caller's clock) the version starts refusing every connection; null: never. */
  crashesAt: number | null;
}

export interface TrafficRoutes {
  /** Percent of (non-internal) users sent to the canary. */
  canaryWeight: number;
  /** Whether internal users are sent to the canary whatever the weight. */
  internalAudience: boolean;
}

export interface TrafficSetting {
  trafficPerSecond: number;
  internalShare: number;
  routes: TrafficRoutes;
  /** The version in each slot; null when the slot is empty (it takes no traffic). */
  canary: VersionBehaviour | null;
  stable: VersionBehaviour | null;
}

export interface TrackTraffic {
  /** Requests the version answered (any status). */
  answered: number;
  /** Answered requests that were errors (5xx). */
  errors: number;
  /** Requests routed to the version that it refused (it had crashed). */
  refused: number;
  /** Answered requests per latency bucket, not cumulative: one per LATENCY_BOUNDS entry, then +Inf. */
  latency: number[];
}

export interface WindowTraffic {
  canary: TrackTraffic;
  stable: TrackTraffic;
}

export function emptyTrack(): TrackTraffic {
  return { answered: 0, errors: 0, refused: 0, latency: new Array<number>(LATENCY_BOUNDS.length + 1).fill(0) };
}

export function emptyWindow(): WindowTraffic {
  return { canary: emptyTrack(), stable: emptyTrack() };
}

export function addTrack(into: TrackTraffic, from: TrackTraffic): TrackTraffic {
  into.answered += from.answered;
  into.errors += from.errors;
  into.refused += from.refused;
  for (let i = 0; i < into.latency.length; i++) into.latency[i] = into.latency[i]! + from.latency[i]!;
  return into;
}

export function addWindow(into: WindowTraffic, from: WindowTraffic): WindowTraffic {
  addTrack(into.canary, from.canary);
  addTrack(into.stable, from.stable);
  return into;
}

/** User requests per second reaching each track under these routes. */
export function trackRates(setting: Pick<TrafficSetting, 'trafficPerSecond' | 'internalShare' | 'routes' | 'canary' | 'stable'>): { canary: number; stable: number } {
  const { trafficPerSecond: total, routes } = setting;
  if (!setting.canary) return { canary: 0, stable: setting.stable ? total : 0 };
  if (!setting.stable) return { canary: total, stable: 0 };
  const internal = routes.internalAudience ? Math.min(1, Math.max(0, setting.internalShare)) : 0;
  const weight = Math.min(100, Math.max(0, routes.canaryWeight)) / 100;
  const canary = total * (internal + (1 - internal) * weight);
  return { canary, stable: total - canary };
}

/** Whether the routes send any users to the canary (its first user traffic starts the crash clock). */
export function routesReachCanary(routes: TrafficRoutes, internalShare: number): boolean {
  return routes.canaryWeight > 0 || (routes.internalAudience && internalShare > 0);
}

/** Standard normal CDF through erfc (Numerical Recipes' Chebyshev fit, relative error below 1.2e-7, tails included). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const erfc =
    t *
    Math.exp(
      -x * x -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return z >= 0 ? 1 - erfc / 2 : erfc / 2;
}

const bucketCache = new Map<number, number[]>();

/**
 * Probability of each latency bucket for a version whose median is `latencyMs`. Buckets less likely
 * than 1e-15 get none (a billion requests would put a millionth of one there), which lets the
 * multinomial skip them.
 */
export function latencyBucketProbabilities(latencyMs: number): readonly number[] {
  let probabilities = bucketCache.get(latencyMs);
  if (probabilities) return probabilities;
  const median = Math.max(latencyMs, 1e-6) / 1000;
  let previous = 0;
  probabilities = [...LATENCY_BOUNDS, Number.POSITIVE_INFINITY].map((bound) => {
    const cdf = Number.isFinite(bound) ? normalCdf(Math.log(bound / median) / LATENCY_SIGMA) : 1;
    const p = Math.max(0, cdf - previous);
    previous = Math.max(previous, cdf);
    return p < 1e-15 ? 0 : p;
  });
  const sum = probabilities.reduce((a, b) => a + b, 0);
  probabilities = probabilities.map((p) => p / sum);
  if (bucketCache.size > 10_000) bucketCache.clear();
  bucketCache.set(latencyMs, probabilities);
  return probabilities;
}

/** Adds `requests` requests answered by `version` (errors and latencies drawn) to `into`. */
export function answer(random: Random, version: Pick<VersionBehaviour, 'errorRate' | 'latencyMs'>, requests: number, into: TrackTraffic, latencies = true): TrackTraffic {
  if (requests <= 0) return into;
  into.answered += requests;
  into.errors += random.binomial(requests, version.errorRate);
  if (latencies) random.multinomial(requests, latencyBucketProbabilities(version.latencyMs), into.latency);
  return into;
}

function track(random: Random, version: VersionBehaviour | null, rate: number, from: number, to: number, into: TrackTraffic, latencies: boolean): void {
  if (!version || rate <= 0 || to <= from) return;
  const crash = version.crashesAt ?? Number.POSITIVE_INFINITY;
  // Disjoint stretches of a Poisson process are independent, so the window splits at the crash exactly.
  const upTo = Math.min(to, Math.max(from, crash));
  if (upTo > from) answer(random, version, random.poisson(rate * (upTo - from)), into, latencies);
  if (to > upTo) into.refused += random.poisson(rate * (to - upTo));
}

export interface SimulateOptions {
  /** Draw latency histograms (default true); a judge that reads only counts can skip them. */
  latencies?: boolean;
}

/**
 * Draws the traffic of [from, to) (seconds) under one setting and adds it to `into`. Windows that do
 * not overlap are independent, so a longer window may be drawn in pieces, in any order of sizes.
 */
export function simulateWindow(random: Random, setting: TrafficSetting, from: number, to: number, into: WindowTraffic = emptyWindow(), options: SimulateOptions = {}): WindowTraffic {
  const rates = trackRates(setting);
  const latencies = options.latencies ?? true;
  track(random, setting.canary, rates.canary, from, to, into.canary, latencies);
  track(random, setting.stable, rates.stable, from, to, into.stable, latencies);
  return into;
}

/** Whether the version refuses connections at `at`. */
export function crashed(version: VersionBehaviour | null, at: number): boolean {
  return version !== null && version.crashesAt !== null && at >= version.crashesAt;
}

/** A track's error counts as the default error-rate check reads them: 5xx plus refused connections, out of both. */
export function errorCounts(traffic: TrackTraffic): Counts {
  return { events: traffic.errors + traffic.refused, total: traffic.answered + traffic.refused };
}

/** A track's latency histogram as the default latency check reads it: cumulative by upper bound in seconds. */
export function latencyHistogram(traffic: TrackTraffic): Histogram {
  let cumulative = 0;
  return {
    buckets: traffic.latency.map((count, i) => {
      cumulative += count;
      return { le: i < LATENCY_BOUNDS.length ? LATENCY_BOUNDS[i]! : Number.POSITIVE_INFINITY, count: cumulative };
    }),
  };
}
