import type { Histogram } from '../../engine/statistics';
import type { LoadTestSpec } from '../../spec/release-spec';

/**
 * Load generators drive synthetic load at a version that takes no user traffic yet, and at stable under
 * the same load, so the judge can compare the two as it compares user traffic.
 */

export interface LoadRequest {
  service: string;
  version: string;
  /** Which slot the load goes to: the new version (canary slot) or stable, for the comparison. */
  track: 'canary' | 'stable';
  load: LoadTestSpec;
}

export interface LoadResult {
  requests: number;
  /** 1xx, 4xx and 5xx answers, connection errors and timeouts. */
  errors: number;
  errorRate: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p95: number; p99: number };
  /** Every answer's latency, cumulative by upper bound in seconds: what the judge weighs. */
  histogram: Histogram;
}

export interface LoadGenerator {
  readonly type: string;
  /** Stops early, rejecting, when `signal` aborts (the activity was cancelled: an abort during the load test). */
  run(request: LoadRequest, onProgress?: () => void, signal?: AbortSignal): Promise<LoadResult>;
}

/** Bounds in seconds for the histograms of load results: fine enough to tell 1.25x apart from 1 ms to 10 s. */
export const LOAD_HISTOGRAM_BOUNDS: readonly number[] = [
  0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3,
  0.4, 0.5, 0.6, 0.75, 1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10,
];

/** Cumulative histogram over LOAD_HISTOGRAM_BOUNDS (and +Inf) of latencies in milliseconds. */
export function histogramOfLatencies(latenciesMs: Iterable<[ms: number, count: number]>): Histogram {
  const counts = new Array<number>(LOAD_HISTOGRAM_BOUNDS.length + 1).fill(0);
  for (const [ms, count] of latenciesMs) {
    const seconds = ms / 1000;
    let index = LOAD_HISTOGRAM_BOUNDS.findIndex((bound) => seconds <= bound);
    if (index < 0) index = LOAD_HISTOGRAM_BOUNDS.length;
    counts[index] = (counts[index] ?? 0) + count;
  }
  let cumulative = 0;
  return {
    buckets: [...LOAD_HISTOGRAM_BOUNDS, Number.POSITIVE_INFINITY].map((le, i) => {
      cumulative += counts[i]!;
      return { le, count: cumulative };
    }),
  };
}
