// Metric providers return evidence, not verdict-shaped numbers: counts for a ratio check and a latency
// distribution for a latency check, per track, so the judge can weigh sample size (Kayenta's judge
// takes two samples, never two ratios). Null means no data: inconclusive, never a pass.
import type { Counts, Histogram } from '../../engine/statistics';

export type Track = 'stable' | 'canary';

interface QueryContext {
  check: string;
  service: string;
  environment: string;
  version: string;
  track: Track;
}

/** A ratio check's two queries, placeholders filled in: bad events and all events of one track. */
export interface CountsQuery extends QueryContext {
  events: string;
  total: string;
}

/** A latency check's query, placeholders filled in: cumulative counts by `le` (seconds). */
export interface HistogramQuery extends QueryContext {
  buckets: string;
}

export interface MetricProvider {
  readonly type: string;
  counts(request: CountsQuery): Promise<Counts | null>;
  histogram(request: HistogramQuery): Promise<Histogram | null>;
  isOnline(): Promise<boolean>;
}

export type QueryPlaceholder = 'service' | 'environment' | 'region' | 'version' | 'track' | 'window';

/** Fills the placeholders; {{region}} is empty outside a rollout, and PromQL's region="" matches series without the label. */
export function renderQuery(template: string, values: Record<Exclude<QueryPlaceholder, 'region'>, string> & { region?: string }): string {
  return template.replace(/\{\{\s*(service|environment|region|version|track|window)\s*\}\}/g, (_, key: QueryPlaceholder) => values[key] ?? '');
}
