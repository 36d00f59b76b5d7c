import { ApplicationFailure, Context } from '@temporalio/activity';
import type { AnalysisEvidence, CheckEvidence, Track, TrackEvidence } from '../src/engine/analysis';
import { formatPromDuration } from '../src/engine/duration';
import { UnsupportedTargetError, type ProviderRegistry, type ProviderSet } from '../src/providers';
import type { LoadResult } from '../src/providers/load/generator';
import { OutboundAllowlist, OutboundRefusedError, postJson, type OutboundResult } from '../src/providers/outbound';
import { renderQuery } from '../src/providers/metrics/provider';
import { sameRoutes, STABLE_ONLY, type Routes } from '../src/providers/traffic/router';
import type { CheckSpec, HookSpec, LoadTestSpec, TargetSpec } from '../src/spec/release-spec';

/** What every activity of a release needs to find its providers. */
export interface ReleaseRef {
  service: string;
  environment: string;
  version: string;
  target: TargetSpec;
  /** The region of a rollout's release: fills {{region}} in metric queries. */
  region?: string;
}

/** What one look of the analysis asks for. */
export interface MeasureRequest {
  checks: CheckSpec[];
  /** When the step moved traffic (epoch ms): the evidence covers the time since. */
  since: number;
  /** The version to compare with; null when stable takes no traffic (at 100%) or there is none. */
  stableVersion: string | null;
  /** Whether the step routes any traffic to the canary (a weight, or an internal audience). */
  canaryRouted: boolean;
}

/** A synthetic load test's results: the new version, and stable under the same load when there is one. */
export interface SyntheticResult {
  canary: LoadResult;
  stable: LoadResult | null;
}

export interface ActivityDependencies {
  providers: ProviderRegistry;
  /** Hosts hooks and notifications may call; default none. */
  outbound?: OutboundAllowlist;
}

/**
 * The release's side effects, each a thin call into a provider. Every one is idempotent, because
 * Temporal may run an activity again after a worker crash; the undos (stopCanary, resetRoutes,
 * restoreStable) most of all, since a rollback may be retried.
 */
/** How often a deploy tells the server it is alive: a worker lost mid-deploy is noticed within the heartbeat timeout, not the deploy's. */
const DEPLOY_HEARTBEAT_MS = 2_000;

/**
 * Runs a deploy (a process start and its health check, which may take minutes) while heartbeating,
 * so the workflow's heartbeat timeout, not the deploy's start-to-close timeout, bounds how long a
 * deploy lost with its worker waits before another worker retries it.
 */
async function heartbeating<T>(work: () => Promise<T>): Promise<T> {
  let context: Context | null = null;
  try {
    context = Context.current();
  } catch {
    // Called outside an activity (a bench or a test calling the function directly): nothing to tell.
  }
  const beat = context ? setInterval(() => context.heartbeat(), DEPLOY_HEARTBEAT_MS) : null;
  try {
    return await work();
  } finally {
    if (beat) clearInterval(beat);
  }
}

export function createActivities({ providers, outbound = new OutboundAllowlist() }: ActivityDependencies) {
  function providersFor(ref: ReleaseRef): ProviderSet {
    try {
      return providers.forTarget(ref.target, ref.region);
    } catch (error) {
      if (error instanceof UnsupportedTargetError) throw ApplicationFailure.nonRetryable(error.message, 'UnsupportedTarget');
      throw error;
    }
  }

  function cancellation(): { signal?: AbortSignal } {
    try {
      return { signal: Context.current().cancellationSignal };
    } catch {
      return {}; // called outside an activity (a script, a test): nothing to cancel it
    }
  }

  // The registry refused these hosts already; this is the second fence, for specs that reached the
  // worker another way (an older release, a direct client). Refused means never dialled.
  async function callOutbound(what: string, url: string, payload: unknown, timeoutMs: number, headers: Record<string, string> = {}): Promise<OutboundResult> {
    try {
      // A cancelled activity (an abort, a worker shutting down) stops waiting for the hook at once.
      return await postJson(url, payload, { allowlist: outbound, timeoutMs, headers, ...cancellation() });
    } catch (error) {
      if (error instanceof OutboundRefusedError) throw ApplicationFailure.nonRetryable(`${what} ${error.message}`, 'OutboundRefused');
      throw error;
    }
  }

  return {
    /** Which versions run where before the release touches anything. */
    async describeService(ref: ReleaseRef): Promise<{ stable: string | null; canary: string | null }> {
      return providersFor(ref).deployer.slots(ref.service);
    },

    async deployCanary(ref: ReleaseRef): Promise<void> {
      const { deployer, router } = providersFor(ref);
      await heartbeating(async () => {
        await deployer.deploy(ref.service, 'canary', ref.version);
        await router.awaitHealthy?.(ref.service, 'canary');
      });
    },

    /** Undo of deployCanary. */
    async stopCanary(ref: ReleaseRef): Promise<void> {
      await providersFor(ref).deployer.stop(ref.service, 'canary');
    },

    async setRoutes(ref: ReleaseRef, routes: Routes): Promise<Routes> {
      return providersFor(ref).router.setRoutes(ref.service, routes);
    },

    /**
     * Reads the routes back and puts them right if the router lost them (a restarted HAProxy comes
     * back stable-only): the workflow's routes are the truth, the router's must follow.
     */
    async ensureRoutes(ref: ReleaseRef, routes: Routes): Promise<{ routes: Routes; found: Routes; reapplied: boolean }> {
      const { router } = providersFor(ref);
      const found = await router.getRoutes(ref.service);
      if (sameRoutes(found, routes)) return { routes: found, found, reapplied: false };
      return { routes: await router.setRoutes(ref.service, routes), found, reapplied: true };
    },

    /** Undo of every setRoutes: all traffic back on stable, internal audience cleared. */
    async resetRoutes(ref: ReleaseRef): Promise<Routes> {
      return providersFor(ref).router.setRoutes(ref.service, STABLE_ONLY);
    },

    /** Full rollout: the new version moves into the stable slot, replacing (retiring) the old one. */
    async promoteStable(ref: ReleaseRef): Promise<void> {
      const { deployer, router } = providersFor(ref);
      await heartbeating(async () => {
        await deployer.deploy(ref.service, 'stable', ref.version);
        await router.awaitHealthy?.(ref.service, 'stable');
      });
    },

    /** Undo of promoteStable: the old version back in the stable slot. */
    async restoreStable(ref: ReleaseRef, previousVersion: string): Promise<void> {
      const { deployer, router } = providersFor(ref);
      await heartbeating(async () => {
        await deployer.deploy(ref.service, 'stable', previousVersion);
        await router.awaitHealthy?.(ref.service, 'stable');
      });
    },

    /**
     * Synthetic load at the new version and, when there is one, at stable under the same load at the
     * same time, so the judge compares like with like. An abort cancels the activity, and the
     * cancellation stops the load (heartbeats deliver it).
     */
    async runLoadTest(ref: ReleaseRef, load: LoadTestSpec, stableVersion: string | null): Promise<SyntheticResult> {
      const { load: generator } = providersFor(ref);
      const context = Context.current();
      const progress = () => context.heartbeat();
      const run = (track: 'canary' | 'stable', version: string) =>
        generator.run({ service: ref.service, version, track, load }, progress, context.cancellationSignal);
      const [canary, stable] = await Promise.all([run('canary', ref.version), stableVersion ? run('stable', stableVersion) : Promise.resolve(null)]);
      return { canary, stable };
    },

    /**
     * Gathers one look's evidence: per check and track, the counts or latency distribution since the
     * step moved traffic (`since`, epoch ms), and whether the router sees the canary down. A provider
     * error is evidence too (the workflow judges it), never a thrown activity.
     */
    async measure(ref: ReleaseRef, request: MeasureRequest): Promise<AnalysisEvidence> {
      const { metrics, router } = providersFor(ref);
      // Whole seconds since the step moved traffic, rounded down: a window reaching back before the move
      // would mix in what the slot served before (another step, or the previous release's canary).
      const windowSeconds = Math.floor((Date.now() - request.since) / 1000);
      if (windowSeconds < 1) return { checks: request.checks.map((check) => ({ check: check.name, canary: null, stable: null })), windowSeconds: 0, canaryDown: null };
      const window = formatPromDuration(windowSeconds * 1000);
      const checks = await Promise.all(
        request.checks.map(async (check): Promise<CheckEvidence> => {
          const ask = async (track: Track, version: string): Promise<TrackEvidence | null> => {
            const values = { service: ref.service, environment: ref.environment, region: ref.region ?? '', version, track, window };
            const context = { check: check.name, service: ref.service, environment: ref.environment, version, track };
            if (check.kind === 'ratio') {
              const counts = await metrics.counts({ ...context, events: renderQuery(check.events, values), total: renderQuery(check.total, values) });
              return counts && { kind: 'counts', ...counts };
            }
            const histogram = await metrics.histogram({ ...context, buckets: renderQuery(check.buckets, values) });
            return histogram && { kind: 'histogram', ...histogram };
          };
          const compares = (check.kind === 'ratio' ? check.maxIncreaseOverStable : check.maxRatioOverStable) !== undefined;
          try {
            const [canary, stable] = await Promise.all([
              ask('canary', ref.version),
              compares && request.stableVersion ? ask('stable', request.stableVersion) : Promise.resolve(null),
            ]);
            return { check: check.name, canary, stable };
          } catch (error) {
            return { check: check.name, canary: null, stable: null, error: (error as Error).message };
          }
        }),
      );
      const canaryDown = request.canaryRouted && router.serverDown ? await router.serverDown(ref.service, 'canary').catch(() => null) : null;
      return { checks, windowSeconds, canaryDown };
    },

    /** Announces a release or drill event to a Slack-compatible webhook ({text}); a failure is retried, then given up. */
    async notify(url: string, message: { text: string; [key: string]: unknown }): Promise<void> {
      const result = await callOutbound('notification webhook', url, message, 10_000);
      if (result.outcome !== 'ok') throw outboundFailure(`notification webhook ${result.reason}`, result);
    },

    /** POSTs the release context to a hook; a non-2xx answer fails the step. */
    async runHook(ref: ReleaseRef, hook: HookSpec, context: { releaseId: string; step: string; when: 'before' | 'after'; idempotencyKey: string }): Promise<void> {
      const payload = { ...context, hook: hook.name, service: ref.service, environment: ref.environment, version: ref.version };
      // The same key on every attempt: a hook that is idempotent by key runs its work once.
      const result = await callOutbound(`hook ${hook.name}`, hook.url, payload, hook.timeout, { 'idempotency-key': context.idempotencyKey });
      if (result.outcome !== 'ok') throw outboundFailure(`hook ${hook.name} ${result.reason}`, result);
    },
  };
}

/** A redirect answers the same way every time: retrying it is pointless. Anything else may pass on a retry. */
function outboundFailure(message: string, result: OutboundResult): Error {
  return result.outcome === 'redirect' ? ApplicationFailure.nonRetryable(message, 'OutboundRedirect') : new Error(message);
}

export type ReleaseActivities = ReturnType<typeof createActivities>;
