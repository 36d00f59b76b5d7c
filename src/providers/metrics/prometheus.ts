import type { Counts, Histogram } from '../../engine/statistics';
import type { CountsQuery, HistogramQuery, MetricProvider } from './provider';

export interface PrometheusOptions {
  /** Base URL, e.g. http://127.0.0.1:18090 (a path prefix such as /prometheus is kept). */
  url: string;
  /** How long one query may take, end to end; also passed to Prometheus as its own evaluation timeout. Default 5000 ms. */
  timeoutMs?: number;
  /** Extra request headers, e.g. an Authorization header for a Prometheus behind a proxy. */
  headers?: Record<string, string>;
}

interface PrometheusAnswer {
  status?: unknown;
  errorType?: unknown;
  data?: { resultType?: unknown; result?: unknown };
}

type Sample = [number, string];
interface Series {
  metric: Record<string, string>;
  value: Sample;
}

/**
 * Prometheus' own error types (api/v1): a fixed vocabulary, so naming one tells the operator what went wrong
 * without repeating anything the answer's sender wrote.
 */
const ERROR_TYPES: Record<string, string> = {
  bad_data: 'Prometheus refused the query as malformed (bad_data): check its syntax',
  execution: 'the query failed while Prometheus evaluated it (execution)',
  timeout: 'Prometheus timed out evaluating the query',
  canceled: 'Prometheus cancelled the query',
  internal: 'Prometheus reported an internal error',
  unavailable: 'Prometheus is not ready (unavailable)',
  not_found: 'Prometheus does not know this endpoint (not_found)',
};

/** Thrown when Prometheus could not give a usable answer; its message is Rampart's own words, never the answer's body. */
export class PrometheusQueryError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PrometheusQueryError';
  }
}

/**
 * Evidence from Prometheus' HTTP API: counts from two instant queries (bad events, all events), a
 * latency distribution from one query by `le`. An answer without data (an empty vector; NaN or ±Inf,
 * which is what a division by zero or a missing series gives) is null, never zero. Anything Prometheus
 * could not answer throws, and the caller counts it as an error, not as data.
 *
 * The body of an answer is never repeated in an error: the URL may point somewhere other than a
 * Prometheus, and an error message reaches everyone who can read the release's status.
 */
export class PrometheusMetricProvider implements MetricProvider {
  readonly type = 'prometheus';
  private readonly baseUrl: string;
  private readonly timeoutMs: number;

  constructor(private readonly options: PrometheusOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.url);
    } catch (error) {
      throw new Error(`Prometheus URL "${options.url}" is not a URL`, { cause: error });
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`Prometheus URL "${options.url}" must be http or https`);
    // Credentials in the URL would end up in every error message that names it.
    if (parsed.username || parsed.password) throw new Error('Prometheus URL must not hold credentials: pass an Authorization header instead');
    this.baseUrl = parsed.href.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 5_000;
  }

  async counts(request: CountsQuery): Promise<Counts | null> {
    const context = describe(request);
    const [events, total] = await Promise.all([this.scalar(request.events, `${context}, events`), this.scalar(request.total, `${context}, total`)]);
    if (events === null || total === null) return null;
    const counts = { events: Math.round(events), total: Math.round(total) };
    if (counts.events < 0 || counts.total < 0) {
      throw new PrometheusQueryError(`${context}: negative counts (events ${counts.events}, total ${counts.total}); count with increase() over a counter`);
    }
    if (counts.events > counts.total) {
      // increase() extrapolates each series on its own, so on a quiet track events may edge past total.
      return { events: counts.total, total: counts.total };
    }
    return counts;
  }

  async histogram(request: HistogramQuery): Promise<Histogram | null> {
    const context = `${describe(request)}, buckets`;
    const answer = await this.instant(request.buckets, context);
    if (answer.resultType !== 'vector') throw new PrometheusQueryError(`${context}: Prometheus returned a ${answer.resultType} result; a latency check needs a vector by le`);
    const buckets: Array<{ le: number; count: number }> = [];
    const seen = new Set<number>();
    for (const series of answer.result as Series[]) {
      const raw = series.metric?.le;
      if (raw === undefined) throw new PrometheusQueryError(`${context}: a series has no le label; aggregate with sum by (le) (…)`);
      const le = raw === '+Inf' ? Number.POSITIVE_INFINITY : Number(raw);
      if (Number.isNaN(le)) throw new PrometheusQueryError(`${context}: le "${raw.slice(0, 20)}" is not a bound`);
      if (seen.has(le)) throw new PrometheusQueryError(`${context}: two series share le=${raw.slice(0, 20)}; aggregate with sum by (le) (…)`);
      seen.add(le);
      const count = Number(series.value?.[1]);
      // A bucket without a number makes the whole distribution unknowable: no data.
      if (!Number.isFinite(count)) return null;
      buckets.push({ le, count: Math.max(0, count) });
    }
    if (buckets.length === 0) return null;
    buckets.sort((a, b) => a.le - b.le);
    // increase() extrapolates every bucket on its own, which can break the cumulative order by a fraction.
    let floor = 0;
    for (const bucket of buckets) {
      bucket.count = Math.max(floor, bucket.count);
      floor = bucket.count;
    }
    return { buckets };
  }

  async isOnline(): Promise<boolean> {
    try {
      const response = await fetch(`${this.baseUrl}/-/ready`, { signal: AbortSignal.timeout(this.timeoutMs), headers: this.options.headers, redirect: 'manual' });
      await response.arrayBuffer();
      return response.ok;
    } catch {
      return false;
    }
  }

  /** One query that must give one number: a scalar or a single series. Null when it gives none. */
  private async scalar(query: string, context: string): Promise<number | null> {
    const answer = await this.instant(query, context);
    let sample: Sample | undefined;
    if (answer.resultType === 'scalar') {
      sample = answer.result as Sample;
    } else if (answer.resultType === 'vector') {
      const series = answer.result as Series[];
      if (series.length === 0) return null;
      if (series.length > 1) {
        // Picking one series would judge a release on an arbitrary one of them.
        throw new PrometheusQueryError(`${context}: Prometheus returned ${series.length} series; aggregate the query to one, e.g. with sum()`);
      }
      sample = series[0]!.value;
    } else {
      throw new PrometheusQueryError(`${context}: Prometheus returned a ${answer.resultType} result; a count needs an instant vector or a scalar`);
    }
    const value = Number(sample?.[1]);
    return Number.isFinite(value) ? value : null;
  }

  private async instant(query: string, context: string): Promise<{ resultType: string; result: unknown }> {
    let response: Response;
    try {
      // POST keeps long queries out of URL length limits.
      response = await fetch(`${this.baseUrl}/api/v1/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...this.options.headers },
        body: new URLSearchParams({ query, timeout: `${Math.max(1, Math.floor(this.timeoutMs / 1000))}s` }),
        signal: AbortSignal.timeout(this.timeoutMs),
        // A redirect could lead anywhere; Prometheus' API answers where it is asked.
        redirect: 'manual',
      });
    } catch (error) {
      throw new PrometheusQueryError(`Prometheus ${this.baseUrl} could not answer ${context}: ${describeFetchError(error)}`, { cause: error });
    }
    const fail = (reason: string) => new PrometheusQueryError(`Prometheus ${this.baseUrl} could not answer ${context}: HTTP ${response.status}, ${reason}`);
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel();
      throw fail('a redirect, which is not followed');
    }
    let answer: PrometheusAnswer;
    try {
      answer = (await response.json()) as PrometheusAnswer;
    } catch {
      throw fail('not a Prometheus API answer');
    }
    if (answer === null || typeof answer !== 'object') throw fail('not a Prometheus API answer');
    if (answer.status === 'error') {
      const known = typeof answer.errorType === 'string' ? ERROR_TYPES[answer.errorType] : undefined;
      throw fail(known ?? 'an error of a kind Prometheus does not name');
    }
    if (!response.ok || answer.status !== 'success') throw fail('not a Prometheus API answer');
    const { resultType, result } = answer.data ?? {};
    if (resultType === 'vector' && Array.isArray(result)) return { resultType, result };
    if (resultType === 'scalar' && Array.isArray(result)) return { resultType, result };
    if (resultType === 'matrix' || resultType === 'string') return { resultType, result };
    throw fail('not a Prometheus API answer');
  }
}

function describe(request: CountsQuery | HistogramQuery): string {
  return `check ${request.check} (${request.service} ${request.environment} ${request.track} ${request.version})`;
}

function describeFetchError(error: unknown): string {
  const err = error as Error & { cause?: { code?: string } };
  if (err.name === 'TimeoutError') return 'timed out';
  // The cause's code (ECONNREFUSED, ENOTFOUND) says enough; its message may carry more than a viewer needs.
  if (err.cause?.code) return `unreachable (${err.cause.code})`;
  return 'unreachable';
}
