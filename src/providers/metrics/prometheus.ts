import type { MetricProvider, MetricQuery } from './provider';

export interface PrometheusOptions {
  /** Base URL, e.g. http://127.0.0.1:18090 (a path prefix such as /prometheus is kept). */
  url: string;
  /** How long one query may take, end to end; also passed to Prometheus as its own evaluation timeout. Default 5000 ms. */
  timeoutMs?: number;
  /** Extra request headers, e.g. an Authorization header for a Prometheus behind a proxy. */
  headers?: Record<string, string>;
}

interface PrometheusAnswer {
  status?: string;
  errorType?: string;
  error?: string;
  data?: { resultType?: string; result?: unknown };
}

type Sample = [number, string];

/**
 * Instant queries over Prometheus' HTTP API. An answer without a usable number (empty vector, NaN, ±Inf,
 * which is what a division by zero gives) is null: no data. Anything Prometheus could not answer throws, and
 * the caller counts it as an error, not as data.
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
    this.baseUrl = parsed.href.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 5_000;
  }

  async query(request: MetricQuery): Promise<number | null> {
    const context = `check ${request.check} (${request.service} ${request.track} ${request.version})`;
    let answer: PrometheusAnswer;
    try {
      // POST keeps long queries out of URL length limits.
      const response = await fetch(`${this.baseUrl}/api/v1/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...this.options.headers },
        body: new URLSearchParams({ query: request.query, timeout: `${Math.max(1, Math.floor(this.timeoutMs / 1000))}s` }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      const text = await response.text();
      try {
        answer = JSON.parse(text) as PrometheusAnswer;
      } catch {
        throw new Error(`HTTP ${response.status}, not a Prometheus API answer: ${text.slice(0, 200)}`);
      }
      if (!response.ok || answer.status !== 'success') {
        throw new Error(`HTTP ${response.status}, ${answer.errorType ?? 'error'}: ${answer.error ?? 'no error message'}`);
      }
    } catch (error) {
      throw new Error(`Prometheus ${this.baseUrl} could not answer ${context}: ${describeFetchError(error)}; query: ${request.query}`, { cause: error });
    }
    return this.toNumber(answer, `${context}; query: ${request.query}`);
  }

  async isOnline(): Promise<boolean> {
    try {
      const response = await fetch(`${this.baseUrl}/-/ready`, { signal: AbortSignal.timeout(this.timeoutMs), headers: this.options.headers });
      await response.arrayBuffer();
      return response.ok;
    } catch {
      return false;
    }
  }

  private toNumber(answer: PrometheusAnswer, context: string): number | null {
    const { resultType, result } = answer.data ?? {};
    let sample: Sample | undefined;
    if (resultType === 'scalar') {
      sample = result as Sample;
    } else if (resultType === 'vector') {
      const series = result as Array<{ metric: Record<string, string>; value: Sample }>;
      if (series.length === 0) return null;
      if (series.length > 1) {
        // Picking one series would judge a release on an arbitrary one of them.
        const labels = series.slice(0, 3).map((s) => JSON.stringify(s.metric)).join(', ');
        throw new Error(`Prometheus returned ${series.length} series for ${context} (${labels}…): aggregate the query to one series, e.g. with sum()`);
      }
      sample = series[0]!.value;
    } else {
      throw new Error(`Prometheus returned a ${resultType ?? 'missing'} result for ${context}: an analysis check needs an instant vector or a scalar`);
    }
    const value = Number(sample?.[1]);
    return Number.isFinite(value) ? value : null;
  }
}

function describeFetchError(error: unknown): string {
  const err = error as Error & { cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError') return 'timed out';
  if (err.cause?.code) return `${err.message} (${err.cause.code})`;
  return err.message;
}
