import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { z } from 'zod';
import type { simulatedTargetSchema, simulatedVersionHealthSchema } from '../../spec/release-spec';
import type { Deployer, Slot, SlotState } from '../deploy/deployer';
import type { LoadGenerator, LoadRequest, LoadResult } from '../load/generator';
import type { MetricProvider, MetricQuery } from '../metrics/provider';
import { STABLE_ONLY, type Routes, type TrafficRouter } from '../traffic/router';

/**
 * An in-process fleet: two slots per service, the routes in front of them, and health per version
 * from the target's configuration. It is the demo and benchmark target; nothing end-to-end relies on it.
 * With a state folder, each service's fleet lives in a JSON file, so a worker that was killed and
 * replaced finds the fleet as its predecessor left it, as it would find real machines.
 */

export type SimulatedTarget = z.infer<typeof simulatedTargetSchema>;
type VersionHealth = z.infer<typeof simulatedVersionHealthSchema>;

export const DEFAULT_SIMULATED_STABLE = '0000000000000000000000000000000000000000';

export interface FleetEvent {
  at: string;
  action: 'deploy' | 'stop' | 'set-routes';
  slot?: Slot;
  version?: string | null;
  routes?: Routes;
}

export interface ServiceFleet {
  slots: SlotState;
  routes: Routes;
  /** Attempts so far per version, to fail the first N as the health config asks. */
  deployAttempts: Record<string, number>;
  routeAttempts: Record<string, number>;
  events: FleetEvent[];
}

const HEALTHY: VersionHealth = { errorRate: 0, latencyMs: 20, noData: false, deployFailures: 0, trafficFailures: 0 };

export class SimulatedFleet {
  private readonly services = new Map<string, ServiceFleet>();

  constructor(private readonly options: { stateDir?: string; keepEvents?: number } = {}) {
    if (options.stateDir) mkdirSync(options.stateDir, { recursive: true });
  }

  /** The fleet of one service, created on first use with the target's stable version in the stable slot. */
  service(service: string, target?: SimulatedTarget): ServiceFleet {
    let fleet = this.services.get(service) ?? this.load(service);
    if (!fleet) {
      fleet = {
        slots: { stable: target?.stableVersion ?? DEFAULT_SIMULATED_STABLE, canary: null },
        routes: { ...STABLE_ONLY },
        deployAttempts: {},
        routeAttempts: {},
        events: [],
      };
    }
    this.services.set(service, fleet);
    return fleet;
  }

  /** Reads state again from the folder, for tests that look at what another process did. */
  reload(service: string): ServiceFleet | undefined {
    this.services.delete(service);
    const fleet = this.load(service);
    if (fleet) this.services.set(service, fleet);
    return fleet;
  }

  record(service: string, fleet: ServiceFleet, event: Omit<FleetEvent, 'at'>): void {
    fleet.events.push({ at: new Date().toISOString(), ...event });
    const keep = this.options.keepEvents ?? 1_000;
    if (fleet.events.length > keep) fleet.events.splice(0, fleet.events.length - keep);
    this.save(service, fleet);
  }

  save(service: string, fleet: ServiceFleet): void {
    if (!this.options.stateDir) return;
    const file = this.file(service);
    writeFileSync(`${file}.tmp`, JSON.stringify(fleet));
    renameSync(`${file}.tmp`, file);
  }

  private load(service: string): ServiceFleet | undefined {
    if (!this.options.stateDir) return undefined;
    try {
      return JSON.parse(readFileSync(this.file(service), 'utf8')) as ServiceFleet;
    } catch {
      return undefined;
    }
  }

  private file(service: string): string {
    return join(this.options.stateDir!, `${service}.json`);
  }
}

function health(target: SimulatedTarget, version: string | null): VersionHealth {
  return { ...HEALTHY, ...(version ? target.health[version] : undefined) };
}

async function delay(target: SimulatedTarget): Promise<void> {
  if (target.latencyMs > 0) await sleep(target.latencyMs);
}

export class SimulatedDeployer implements Deployer {
  readonly type = 'simulated';
  constructor(private readonly fleet: SimulatedFleet, private readonly target: SimulatedTarget) {}

  async deploy(service: string, slot: Slot, version: string): Promise<void> {
    await delay(this.target);
    const fleet = this.fleet.service(service, this.target);
    if (fleet.slots[slot] === version) return;
    const attempt = (fleet.deployAttempts[version] = (fleet.deployAttempts[version] ?? 0) + 1);
    if (attempt <= health(this.target, version).deployFailures) {
      this.fleet.save(service, fleet);
      throw new Error(`simulated deploy of ${version} to the ${slot} slot failed (attempt ${attempt})`);
    }
    fleet.slots[slot] = version;
    this.fleet.record(service, fleet, { action: 'deploy', slot, version });
  }

  async stop(service: string, slot: Slot): Promise<void> {
    await delay(this.target);
    const fleet = this.fleet.service(service, this.target);
    if (fleet.slots[slot] === null) return;
    const version = fleet.slots[slot];
    fleet.slots[slot] = null;
    this.fleet.record(service, fleet, { action: 'stop', slot, version });
  }

  async slots(service: string): Promise<SlotState> {
    return { ...this.fleet.service(service, this.target).slots };
  }
}

export class SimulatedRouter implements TrafficRouter {
  readonly type = 'simulated';
  constructor(private readonly fleet: SimulatedFleet, private readonly target: SimulatedTarget) {}

  async setRoutes(service: string, routes: Routes): Promise<Routes> {
    await delay(this.target);
    const fleet = this.fleet.service(service, this.target);
    const version = fleet.slots.canary;
    if (routes.canaryWeight > 0 && version) {
      const attempt = (fleet.routeAttempts[version] = (fleet.routeAttempts[version] ?? 0) + 1);
      if (attempt <= health(this.target, version).trafficFailures) {
        this.fleet.save(service, fleet);
        throw new Error(`simulated router refused the weight change (attempt ${attempt})`);
      }
    }
    fleet.routes = { canaryWeight: routes.canaryWeight, internalAudience: routes.internalAudience ? { ...routes.internalAudience } : null };
    this.fleet.record(service, fleet, { action: 'set-routes', routes: fleet.routes });
    return { ...fleet.routes };
  }

  async getRoutes(service: string): Promise<Routes> {
    return { ...this.fleet.service(service, this.target).routes };
  }
}

export class SimulatedMetrics implements MetricProvider {
  readonly type = 'simulated';
  constructor(private readonly fleet: SimulatedFleet, private readonly target: SimulatedTarget) {}

  /** Checks named for errors read the version's error rate, for latency its latency in seconds. */
  async query(request: MetricQuery): Promise<number | null> {
    await delay(this.target);
    const slots = this.fleet.service(request.service, this.target).slots;
    const version = slots[request.track];
    const h = health(this.target, version);
    if (!version || h.noData) return null;
    if (request.check.includes('latency')) return h.latencyMs / 1_000;
    if (request.check.includes('error')) return h.errorRate;
    return 0;
  }

  async isOnline(): Promise<boolean> {
    return true;
  }
}

export class SimulatedLoadGenerator implements LoadGenerator {
  readonly type = 'simulated';
  constructor(private readonly target: SimulatedTarget) {}

  /** Answers at once with what the version's configured health would give under the requested load. */
  async run(request: LoadRequest): Promise<LoadResult> {
    await delay(this.target);
    const h = health(this.target, request.version);
    const requests = Math.max(1, Math.round((request.load.rate * request.load.duration) / 1_000));
    const errors = Math.round(requests * h.errorRate);
    return {
      requests,
      errors,
      errorRate: errors / requests,
      requestsPerSecond: request.load.rate,
      latencyMs: { p50: h.latencyMs, p95: h.latencyMs, p99: h.latencyMs },
    };
  }
}
