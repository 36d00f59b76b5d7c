/** Metric providers answer one instant query with one number; null means no data (inconclusive, never a pass). */

export type Track = 'stable' | 'canary';

export interface MetricQuery {
  /** The check's query with {{service}}, {{version}}, {{track}} and {{window}} filled in. */
  query: string;
  check: string;
  service: string;
  version: string;
  track: Track;
}

export interface MetricProvider {
  readonly type: string;
  query(request: MetricQuery): Promise<number | null>;
  isOnline(): Promise<boolean>;
}

export function renderQuery(template: string, values: Record<'service' | 'version' | 'track' | 'window', string>): string {
  return template.replace(/\{\{\s*(service|version|track|window)\s*\}\}/g, (_, key: keyof typeof values) => values[key]);
}
