import type { DrillClient } from '../temporal/drills';
import type { ReleaseClient } from '../temporal/releases';
import type { Access, Principal } from './auth';
import type { ApiMetrics } from './metrics';
import type { ApiSettings } from './settings';
import type { SpecRegistry } from './spec-registry';

/** What the routes need of Temporal: the ReleaseClient, or a stand-in with the same methods. */
export type ReleaseOperations = Pick<
  ReleaseClient,
  'submit' | 'enqueue' | 'status' | 'command' | 'list' | 'lane' | 'dora' | 'applyAlerts' | 'rollback' | 'rolloutStatus' | 'rolloutCommand' | 'where'
>;

/** What the drill routes need of Temporal Schedules: the DrillClient, or a stand-in with the same methods. */
export type DrillOperations = Pick<DrillClient, 'create' | 'describe' | 'list' | 'pause' | 'resume' | 'trigger' | 'delete' | 'results'>;

/** Everything a route plugin is given: built once per app, shared by its routes. */
export interface ApiContext {
  settings: ApiSettings;
  releases: ReleaseOperations;
  specs: SpecRegistry;
  metrics: ApiMetrics;
  /** Drill schedules; null when the app was built without them (the drill routes answer 503). */
  drills: DrillOperations | null;
  /** Resolves when Temporal answers (readiness). */
  ping(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route; a route without it needs an admin token (closed by default). */
    access?: Access;
  }
  interface FastifyRequest {
    /** The body exactly as received: webhook signatures are computed over these bytes. */
    rawBody?: Buffer;
    principal?: Principal;
  }
}

/** The caller, set by the authentication hook before any handler runs. */
export function principalOf(request: { principal?: Principal }): Principal {
  if (!request.principal) throw new Error('route reached without an authenticated principal');
  return request.principal;
}

/** A release id as one URL path segment. */
export function releasePath(releaseId: string): string {
  // A rollout's id (a spec with regions) is followed at /v1/rollouts.
  if (releaseId.startsWith('rollout/')) return `/v1/rollouts/${encodeURIComponent(releaseId)}`;
  return `/v1/releases/${encodeURIComponent(releaseId)}`;
}
