import type { LoadTestSpec } from '../../spec/release-spec';

/** Load generators drive synthetic load at a version that takes no user traffic yet. */

export interface LoadRequest {
  service: string;
  version: string;
  load: LoadTestSpec;
}

export interface LoadResult {
  requests: number;
  errors: number;
  errorRate: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p95: number; p99: number };
}

export interface LoadGenerator {
  readonly type: string;
  run(request: LoadRequest, onProgress?: () => void): Promise<LoadResult>;
}
