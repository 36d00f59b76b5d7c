/** Percentile by nearest rank over a copy of the samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Runs `work` over `items`, at most `width` at a time; the results come in completion order. */
export async function inPool<T, R>(items: readonly T[], width: number, work: (item: T) => Promise<R>): Promise<R[]> {
  let next = 0;
  const results: R[] = [];
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) results.push(await work(items[next++]!));
    }),
  );
  return results;
}

/** A latency sample set as the benchmarks report it, in milliseconds. */
export interface LatencySummary {
  trials: number;
  p50Ms: number;
  p99Ms: number;
  minMs: number;
  maxMs: number;
}

export function summarize(samples: number[]): LatencySummary {
  return {
    trials: samples.length,
    p50Ms: round(percentile(samples, 50), 1),
    p99Ms: round(percentile(samples, 99), 1),
    minMs: round(Math.min(...samples), 1),
    maxMs: round(Math.max(...samples), 1),
  };
}
