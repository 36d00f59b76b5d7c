import type { TargetSpec } from '../spec/release-spec';
import type { Deployer } from './deploy/deployer';
import { LocalDeployer } from './deploy/local';
import { AutocannonLoadGenerator } from './load/autocannon';
import type { LoadGenerator } from './load/generator';
import { PrometheusMetricProvider } from './metrics/prometheus';
import type { MetricProvider } from './metrics/provider';
import {
  SimulatedDeployer,
  SimulatedFleet,
  SimulatedLoadGenerator,
  SimulatedMetrics,
  SimulatedRouter,
} from './simulated/fleet';
import { HaproxyRouter } from './traffic/haproxy';
import type { TrafficRouter } from './traffic/router';

/** Everything a release needs from the place it deploys to. */
export interface ProviderSet {
  deployer: Deployer;
  router: TrafficRouter;
  metrics: MetricProvider;
  load: LoadGenerator;
}

export interface ProviderDependencies {
  fleet: SimulatedFleet;
}

/**
 * Builds (and keeps) the providers of each target. Targets are part of the release spec, so the
 * same worker serves simulated and real services; an unknown type is an error, never a fallback.
 */
export class ProviderRegistry {
  /** Least recently used first (a Map keeps insertion order): every drill brings a target of its own, so the cache is bounded. */
  private readonly cache = new Map<string, ProviderSet>();

  constructor(private readonly deps: ProviderDependencies, private readonly maxTargets = 256) {}

  /** The providers of a target; a region's (a rollout's release) are its own, even where its target equals another region's. */
  forTarget(target: TargetSpec, region?: string): ProviderSet {
    const key = JSON.stringify([target, region ?? null]);
    let set = this.cache.get(key);
    if (set) {
      this.cache.delete(key);
    } else {
      set = this.create(target, region);
      this.evictBeyond(this.maxTargets - 1);
    }
    this.cache.set(key, set);
    return set;
  }

  /** Providers are cheap to build again; an evicted set is closed (sockets, child processes stay with their deployer's pid records). */
  private evictBeyond(size: number): void {
    while (this.cache.size > size) {
      const [oldest, set] = this.cache.entries().next().value as [string, ProviderSet];
      this.cache.delete(oldest);
      void Promise.allSettled([set.router.close?.()]);
    }
  }

  /** How many targets have providers built right now. */
  get size(): number {
    return this.cache.size;
  }

  private create(target: TargetSpec, region: string | undefined): ProviderSet {
    switch (target.type) {
      case 'simulated':
        return {
          deployer: new SimulatedDeployer(this.deps.fleet, target),
          router: new SimulatedRouter(this.deps.fleet, target),
          metrics: new SimulatedMetrics(this.deps.fleet, target),
          load: new SimulatedLoadGenerator(target),
        };
      case 'local':
        return {
          deployer: new LocalDeployer({
            command: target.command,
            healthPath: target.healthPath,
            stablePort: target.stablePort,
            canaryPort: target.canaryPort,
            env: target.env,
            ...(region ? { region } : {}),
          }),
          router: new HaproxyRouter({ socket: target.haproxySocket }),
          metrics: new PrometheusMetricProvider({ url: target.prometheusUrl }),
          // Synthetic load goes straight at the slots: the new version in the canary slot, which no user reaches
          // yet, and stable beside it under the same load, for the comparison.
          load: new AutocannonLoadGenerator({ baseUrl: { canary: `http://127.0.0.1:${target.canaryPort}`, stable: `http://127.0.0.1:${target.stablePort}` } }),
        };
      default:
        throw new UnsupportedTargetError((target as { type: string }).type);
    }
  }

  async close(): Promise<void> {
    for (const set of this.cache.values()) {
      await Promise.allSettled([set.deployer.close?.(), set.router.close?.()]);
    }
    this.cache.clear();
  }
}

export class UnsupportedTargetError extends Error {
  constructor(type: string) {
    super(`target type "${type}" is not supported by this worker (supported: simulated, local)`);
    this.name = 'UnsupportedTargetError';
  }
}
