import autocannon from 'autocannon';
import { histogramOfLatencies, type LoadGenerator, type LoadRequest, type LoadResult } from './generator';

export interface AutocannonOptions {
  /**
   * Where the load goes: one base URL per track (the new version in the canary slot, stable in its own), or one
   * chosen per request. The load goes straight at the instances, not through the router: the new version takes no
   * user traffic yet, and stable's users must not share their instance's router queue with the test.
   */
  baseUrl: Record<LoadRequest['track'], string> | ((request: LoadRequest) => string | Promise<string>);
  /** Seconds one request may take before it counts as an error; default 10. */
  requestTimeoutSeconds?: number;
  /** How often onProgress is called while the load runs; default 1000 ms. */
  progressIntervalMs?: number;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
}

/**
 * Latencies kept to three significant digits, counted per value: exact enough for percentiles, and memory is
 * bounded by the number of distinct rounded values, not by the number of requests.
 */
export class LatencyRecorder {
  private readonly counts = new Map<number, number>();
  private total = 0;

  record(ms: number): void {
    const rounded = ms > 0 ? Number(ms.toPrecision(3)) : 0;
    this.counts.set(rounded, (this.counts.get(rounded) ?? 0) + 1);
    this.total++;
  }

  get count(): number {
    return this.total;
  }

  /** Every recorded latency (ms) with how many times it was seen. */
  entries(): IterableIterator<[ms: number, count: number]> {
    return this.counts.entries();
  }

  /** Nearest-rank percentile: the smallest recorded value with at least p% of the values at or below it; 0 when nothing was recorded. */
  percentile(p: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.total));
    let seen = 0;
    for (const value of [...this.counts.keys()].sort((a, b) => a - b)) {
      seen += this.counts.get(value)!;
      if (seen >= rank) return value;
    }
    return 0;
  }
}

/**
 * Synthetic load with autocannon, at a fixed overall rate. Percentiles come from our own record of every
 * response's time, not from autocannon's histogram: autocannon reports p90 and p97.5 but no p95, and it
 * inflates latencies to correct for coordinated omission at a fixed rate. Errors are 1xx/4xx/5xx answers plus
 * connection errors and timeouts (autocannon counts timeouts among its errors).
 *
 * The load stops at once, and run rejects, when `signal` aborts (the release was aborted during its load test) or
 * when onProgress throws.
 */
export class AutocannonLoadGenerator implements LoadGenerator {
  readonly type = 'autocannon';

  constructor(private readonly options: AutocannonOptions) {}

  async run(request: LoadRequest, onProgress?: () => void, signal?: AbortSignal): Promise<LoadResult> {
    const { load } = request;
    signal?.throwIfAborted();
    const base = await this.resolveBaseUrl(request);
    const prefix = base.pathname.replace(/\/+$/, '');
    const latencies = new LatencyRecorder();
    const started = Date.now();

    // autocannon paces in one-second bursts and ends a run at its next sample tick, so a bare duration overshoots
    // by up to a second's burst. Capping the total keeps the count at rate x duration; the short sample interval
    // ends the run promptly.
    const total = Math.max(1, Math.ceil((load.rate * load.duration) / 1000));
    const result = await new Promise<autocannon.Result>((resolve, reject) => {
      // Shared with the callback, which autocannon may call before the interval below exists.
      const run: { stoppedBy?: Error; progress?: NodeJS.Timeout; onAbort?: () => void } = {};
      const instance = autocannon(
        {
          url: base.origin,
          connections: Math.min(load.connections, total),
          overallRate: load.rate,
          duration: load.duration / 1000,
          maxOverallRequests: total,
          sampleInt: 100,
          timeout: this.options.requestTimeoutSeconds ?? 10,
          headers: { 'x-rampart-load': request.version, ...this.options.headers },
          requests: load.paths.map((path) => ({ method: 'GET', path: `${prefix}${path}` })),
        },
        (error, finished) => {
          clearInterval(run.progress);
          if (run.onAbort) signal?.removeEventListener('abort', run.onAbort);
          if (run.stoppedBy) reject(run.stoppedBy);
          else if (error) reject(error);
          else resolve(finished);
        },
      );
      instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTimeMs: number) => latencies.record(responseTimeMs));
      const stop = (reason: unknown) => {
        if (run.stoppedBy) return;
        run.stoppedBy = reason instanceof Error ? reason : new Error(String(reason));
        clearInterval(run.progress);
        instance.stop();
      };
      run.progress = setInterval(() => {
        try {
          onProgress?.();
        } catch (error) {
          stop(error);
        }
      }, this.options.progressIntervalMs ?? 1_000);
      if (signal) {
        run.onAbort = () => stop(signal.reason ?? new Error('aborted'));
        signal.addEventListener('abort', run.onAbort, { once: true });
        if (signal.aborted) run.onAbort();
      }
    }).catch((error: unknown) => {
      // The canceller's own reason (Temporal's CancelledFailure) goes back as it is, so a cancelled activity reports cancelled.
      if (signal?.aborted) throw signal.reason;
      throw new Error(`load test of ${request.service} ${request.track} ${request.version} at ${base.href} failed: ${(error as Error).message}`, { cause: error });
    });

    const answered = result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'];
    const errors = result['1xx'] + result['4xx'] + result['5xx'] + result.errors;
    const requests = answered + result.errors;
    // A capped run can end before its duration (the last burst answered early): the load still covered the duration.
    const seconds = Math.max(load.duration / 1000, (Date.now() - started) / 1000, 0.001);
    return {
      requests,
      errors,
      // Nothing measured is a failure, never a pass.
      errorRate: requests === 0 ? 1 : errors / requests,
      requestsPerSecond: requests / seconds,
      // Latency of the answers only; a run with no answers has errorRate 1, which is what fails it.
      latencyMs: { p50: latencies.percentile(50), p95: latencies.percentile(95), p99: latencies.percentile(99) },
      histogram: histogramOfLatencies(latencies.entries()),
    };
  }

  private async resolveBaseUrl(request: LoadRequest): Promise<URL> {
    const raw = typeof this.options.baseUrl === 'function' ? await this.options.baseUrl(request) : this.options.baseUrl[request.track];
    try {
      return new URL(raw);
    } catch (error) {
      throw new Error(`load test of ${request.service} ${request.version}: "${raw}" is not a base URL`, { cause: error });
    }
  }
}
