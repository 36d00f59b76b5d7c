import { ApplicationFailure, Context } from '@temporalio/activity';
import { type RawMeasurement } from '../src/engine/analysis';
import { formatPromDuration } from '../src/engine/duration';
import { UnsupportedTargetError, type ProviderRegistry, type ProviderSet } from '../src/providers';
import type { LoadResult } from '../src/providers/load/generator';
import { renderQuery } from '../src/providers/metrics/provider';
import { sameRoutes, STABLE_ONLY, type Routes } from '../src/providers/traffic/router';
import type { AnalysisSpec, HookSpec, LoadTestSpec, TargetSpec } from '../src/spec/release-spec';

/** What every activity of a release needs to find its providers. */
export interface ReleaseRef {
  service: string;
  environment: string;
  version: string;
  target: TargetSpec;
}

export interface ActivityDependencies {
  providers: ProviderRegistry;
}

/**
 * The release's side effects, each a thin call into a provider. Every one is idempotent, because
 * Temporal may run an activity again after a worker crash; the undos (stopCanary, resetRoutes,
 * restoreStable) most of all, since a rollback may be retried.
 */
export function createActivities({ providers }: ActivityDependencies) {
  function providersFor(ref: ReleaseRef): ProviderSet {
    try {
      return providers.forTarget(ref.target);
    } catch (error) {
      if (error instanceof UnsupportedTargetError) throw ApplicationFailure.nonRetryable(error.message, 'UnsupportedTarget');
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
      await deployer.deploy(ref.service, 'canary', ref.version);
      await router.awaitHealthy?.(ref.service, 'canary');
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
      await deployer.deploy(ref.service, 'stable', ref.version);
      await router.awaitHealthy?.(ref.service, 'stable');
    },

    /** Undo of promoteStable: the old version back in the stable slot. */
    async restoreStable(ref: ReleaseRef, previousVersion: string): Promise<void> {
      const { deployer, router } = providersFor(ref);
      await deployer.deploy(ref.service, 'stable', previousVersion);
      await router.awaitHealthy?.(ref.service, 'stable');
    },

    async runLoadTest(ref: ReleaseRef, load: LoadTestSpec): Promise<LoadResult> {
      return providersFor(ref).load.run({ service: ref.service, version: ref.version, load }, () => Context.current().heartbeat());
    },

    /** Measures every check once, for canary and stable. Errors are data here: the workflow judges them. */
    async measure(ref: ReleaseRef, analysis: Pick<AnalysisSpec, 'checks' | 'window'>, stableVersion: string | null): Promise<RawMeasurement[]> {
      const { metrics } = providersFor(ref);
      const window = formatPromDuration(analysis.window);
      return Promise.all(
        analysis.checks.map(async (check): Promise<RawMeasurement> => {
          const ask = (track: 'canary' | 'stable', version: string) =>
            metrics.query({
              query: renderQuery(check.query, { service: ref.service, version, track, window }),
              check: check.name,
              service: ref.service,
              version,
              track,
            });
          try {
            const [canary, stable] = await Promise.all([
              ask('canary', ref.version),
              check.maxIncreaseOverStable !== undefined && stableVersion ? ask('stable', stableVersion) : Promise.resolve(null),
            ]);
            return { check: check.name, canary, stable };
          } catch (error) {
            return { check: check.name, canary: null, stable: null, error: (error as Error).message };
          }
        }),
      );
    },

    /** Announces a release or drill event to a Slack-compatible webhook ({text}); a failure is retried, then given up. */
    async notify(url: string, message: { text: string; [key: string]: unknown }): Promise<void> {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(message),
        signal: AbortSignal.timeout(10_000),
      });
      if (!response.ok) throw new Error(`notification webhook answered ${response.status} ${response.statusText}`);
    },

    /** POSTs the release context to a hook; a non-2xx answer fails the step. */
    async runHook(ref: ReleaseRef, hook: HookSpec, context: { releaseId: string; step: string; when: 'before' | 'after' }): Promise<void> {
      const response = await fetch(hook.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...context, hook: hook.name, service: ref.service, environment: ref.environment, version: ref.version }),
        signal: AbortSignal.timeout(hook.timeout),
      });
      if (!response.ok) throw new Error(`hook ${hook.name} answered ${response.status} ${response.statusText}`);
    },
  };
}

export type ReleaseActivities = ReturnType<typeof createActivities>;
