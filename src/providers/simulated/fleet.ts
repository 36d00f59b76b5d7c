import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { z } from 'zod';
import { histogramQuantile, type Counts, type Histogram } from '../../engine/statistics';
import type { simulatedTargetSchema, simulatedVersionHealthSchema } from '../../spec/release-spec';
import type { Deployer, Slot, SlotState } from '../deploy/deployer';
import type { LoadGenerator, LoadRequest, LoadResult } from '../load/generator';
import type { CountsQuery, HistogramQuery, MetricProvider } from '../metrics/provider';
import { STABLE_ONLY, type Routes, type TrafficRouter } from '../traffic/router';
import { hashString, Random } from './random';
import {
  addWindow,
  answer,
  crashed,
  emptyTrack,
  emptyWindow,
  errorCounts,
  latencyHistogram,
  simulateWindow,
  type TrackTraffic,
  type VersionBehaviour,
  type WindowTraffic,
} from './traffic';

/**
 * An in-process fleet: two slots per service, the routes in front of them, and health per version
 * from the target's configuration. It is the demo and benchmark target; nothing end-to-end relies on it.
 * With a state folder, each service's fleet lives in a JSON file, so a worker that was killed and
 * replaced finds the fleet as its predecessor left it, as it would find real machines.
 *
 * User traffic comes from the seeded model in traffic.ts against wall-clock time: the fleet keeps a
 * timeline of what ran where under which routes, and a query for the last W seconds is drawn from
 * the model over that timeline, in ticks of 100 ms, each seeded by (seed, service, tick). The same
 * tick is therefore the same requests whoever asks and whenever, and looks are consistent and
 * cumulative; whole seconds are cached so a long bake does not redraw its past at every look.
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

/** What ran where under which routes from `at` (epoch ms) until the next entry. */
export interface TimelineEntry {
  at: number;
  stable: string | null;
  canary: string | null;
  canaryWeight: number;
  internalAudience: boolean;
}

export interface ServiceFleet {
  slots: SlotState;
  routes: Routes;
  /** Attempts so far per version, to fail the first N as the health config asks. */
  deployAttempts: Record<string, number>;
  routeAttempts: Record<string, number>;
  events: FleetEvent[];
  /** Every change of slots or routes, oldest first; before the first entry the service ran as in it. */
  timeline?: TimelineEntry[];
  /** When users were first routed to each version (epoch ms): the clock of `crashAfter` starts there. */
  firstUserTraffic?: Record<string, number>;
}

const HEALTHY: VersionHealth = { errorRate: 0, latencyMs: 20, noData: false, deployFailures: 0, trafficFailures: 0 };
const TICK_MS = 100;
const TICKS_PER_SECOND = 1_000 / TICK_MS;
const KEEP_TIMELINE = 1_000;
/** Whole seconds of drawn traffic kept per service: an hour, about 3 MB. Older ones are drawn again, identically. */
const KEEP_SECONDS = 3_600;

interface TrafficCache {
  /** The target the seconds were drawn for: another seed or health draws other traffic. */
  target: string;
  seconds: Map<number, WindowTraffic>;
}

export class SimulatedFleet {
  private readonly services = new Map<string, ServiceFleet>();
  private readonly drawn = new Map<string, TrafficCache>();

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
      noteChange(fleet, Date.now());
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
    const now = Date.now();
    fleet.events.push({ at: new Date(now).toISOString(), ...event });
    const keep = this.options.keepEvents ?? 1_000;
    if (fleet.events.length > keep) fleet.events.splice(0, fleet.events.length - keep);
    noteChange(fleet, now);
    this.save(service, fleet);
  }

  save(service: string, fleet: ServiceFleet): void {
    if (!this.options.stateDir) return;
    const file = this.file(service);
    writeFileSync(`${file}.tmp`, JSON.stringify(fleet));
    renameSync(`${file}.tmp`, file);
  }

  /**
   * The user traffic of [fromMs, toMs) (epoch ms, whole ticks of 100 ms) as the model draws it over the
   * service's timeline. Only ticks that are over may be asked for: a tick is drawn once its routes are
   * settled, so a later look sees it unchanged.
   */
  traffic(service: string, target: SimulatedTarget, fromMs: number, toMs: number): WindowTraffic {
    const fleet = this.service(service, target);
    const cache = this.cacheOf(service, target);
    const total = emptyWindow();
    let tick = Math.floor(fromMs / TICK_MS);
    const end = Math.floor(toMs / TICK_MS);
    while (tick < end) {
      if (tick % TICKS_PER_SECOND === 0 && tick + TICKS_PER_SECOND <= end) {
        const second = tick / TICKS_PER_SECOND;
        let drawn = cache.seconds.get(second);
        if (!drawn) {
          drawn = emptyWindow();
          for (let t = tick; t < tick + TICKS_PER_SECOND; t++) drawTick(fleet, target, service, t, drawn);
          cache.seconds.set(second, drawn);
          if (cache.seconds.size > KEEP_SECONDS) cache.seconds.delete(cache.seconds.keys().next().value!);
        }
        addWindow(total, drawn);
        tick += TICKS_PER_SECOND;
      } else {
        drawTick(fleet, target, service, tick, total);
        tick++;
      }
    }
    return total;
  }

  /** The behaviour of a version in this service now: its health, and when it crashes if it does. */
  behaviour(service: string, target: SimulatedTarget, version: string | null): VersionBehaviour | null {
    return behaviourOf(this.service(service, target), target, version);
  }

  private cacheOf(service: string, target: SimulatedTarget): TrafficCache {
    const key = JSON.stringify(target);
    let cache = this.drawn.get(service);
    if (!cache || cache.target !== key) {
      cache = { target: key, seconds: new Map() };
      this.drawn.set(service, cache);
    }
    return cache;
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

/** Appends the fleet's current slots and routes to its timeline, and starts the crash clock of versions users now reach. */
function noteChange(fleet: ServiceFleet, now: number): void {
  const entry: TimelineEntry = {
    at: now,
    stable: fleet.slots.stable,
    canary: fleet.slots.canary,
    canaryWeight: fleet.routes.canaryWeight,
    internalAudience: fleet.routes.internalAudience !== null,
  };
  const timeline = (fleet.timeline ??= []);
  const last = timeline[timeline.length - 1];
  if (last && last.stable === entry.stable && last.canary === entry.canary && last.canaryWeight === entry.canaryWeight && last.internalAudience === entry.internalAudience) return;
  timeline.push(entry);
  if (timeline.length > KEEP_TIMELINE) timeline.splice(0, timeline.length - KEEP_TIMELINE);
  const first = (fleet.firstUserTraffic ??= {});
  // "First user traffic" is when users are first routed to the version; an internal audience counts.
  if (entry.canary && (entry.canaryWeight > 0 || entry.internalAudience)) first[entry.canary] ??= now;
  if (entry.stable && (entry.canaryWeight < 100 || !entry.canary)) first[entry.stable] ??= now;
}

function health(target: SimulatedTarget, version: string | null): VersionHealth {
  return { ...HEALTHY, ...(version ? target.health[version] : undefined) };
}

function behaviourOf(fleet: ServiceFleet, target: SimulatedTarget, version: string | null): VersionBehaviour | null {
  if (!version) return null;
  const h = health(target, version);
  const firstTraffic = fleet.firstUserTraffic?.[version];
  const crashesAt = h.crashAfter !== undefined && firstTraffic !== undefined ? (firstTraffic + h.crashAfter) / 1_000 : null;
  return { errorRate: h.errorRate, latencyMs: h.latencyMs, crashesAt };
}

/** Draws one tick of the service's traffic into `into`, splitting it where the timeline changes. */
function drawTick(fleet: ServiceFleet, target: SimulatedTarget, service: string, tick: number, into: WindowTraffic): void {
  const random = new Random(target.seed, hashString(service), Math.floor(tick / 2 ** 32), tick >>> 0);
  const from = tick * TICK_MS;
  const to = from + TICK_MS;
  const timeline = fleet.timeline ?? [];
  let index = 0;
  while (index + 1 < timeline.length && timeline[index + 1]!.at <= from) index++;
  const current = (): TimelineEntry => timeline[index] ?? { at: from, stable: fleet.slots.stable, canary: fleet.slots.canary, canaryWeight: fleet.routes.canaryWeight, internalAudience: fleet.routes.internalAudience !== null };
  let pieceFrom = from;
  for (;;) {
    const entry = current();
    const next = timeline[index + 1];
    const pieceTo = next && next.at < to ? next.at : to;
    simulateWindow(
      random,
      {
        trafficPerSecond: target.trafficPerSecond,
        internalShare: target.internalShare,
        routes: { canaryWeight: entry.canaryWeight, internalAudience: entry.internalAudience },
        canary: behaviourOf(fleet, target, entry.canary),
        stable: behaviourOf(fleet, target, entry.stable),
      },
      pieceFrom / 1_000,
      pieceTo / 1_000,
      into,
    );
    if (pieceTo >= to) return;
    pieceFrom = pieceTo;
    index++;
  }
}

async function delay(target: SimulatedTarget, signal?: AbortSignal): Promise<void> {
  if (target.latencyMs > 0) await sleep(target.latencyMs, undefined, signal ? { signal } : undefined);
}

/** The fleet a service runs in: its own, or, for a region of a rollout, `<service>@<fleet>`, so regions never share slots. */
export function fleetKey(service: string, target: SimulatedTarget): string {
  return target.fleet ? `${service}@${target.fleet}` : service;
}

export class SimulatedDeployer implements Deployer {
  readonly type = 'simulated';
  constructor(private readonly fleet: SimulatedFleet, private readonly target: SimulatedTarget) {}

  async deploy(service: string, slot: Slot, version: string): Promise<void> {
    await delay(this.target);
    const fleet = this.fleet.service(fleetKey(service, this.target), this.target);
    if (fleet.slots[slot] === version) return;
    const attempt = (fleet.deployAttempts[version] = (fleet.deployAttempts[version] ?? 0) + 1);
    if (attempt <= health(this.target, version).deployFailures) {
      this.fleet.save(fleetKey(service, this.target), fleet);
      throw new Error(`simulated deploy of ${version} to the ${slot} slot failed (attempt ${attempt})`);
    }
    fleet.slots[slot] = version;
    this.fleet.record(fleetKey(service, this.target), fleet, { action: 'deploy', slot, version });
  }

  async stop(service: string, slot: Slot): Promise<void> {
    await delay(this.target);
    const fleet = this.fleet.service(fleetKey(service, this.target), this.target);
    if (fleet.slots[slot] === null) return;
    const version = fleet.slots[slot];
    fleet.slots[slot] = null;
    this.fleet.record(fleetKey(service, this.target), fleet, { action: 'stop', slot, version });
  }

  async slots(service: string): Promise<SlotState> {
    return { ...this.fleet.service(fleetKey(service, this.target), this.target).slots };
  }
}

export class SimulatedRouter implements TrafficRouter {
  readonly type = 'simulated';
  constructor(private readonly fleet: SimulatedFleet, private readonly target: SimulatedTarget) {}

  async setRoutes(service: string, routes: Routes): Promise<Routes> {
    await delay(this.target);
    const fleet = this.fleet.service(fleetKey(service, this.target), this.target);
    const version = fleet.slots.canary;
    if (routes.canaryWeight > 0 && version) {
      const attempt = (fleet.routeAttempts[version] = (fleet.routeAttempts[version] ?? 0) + 1);
      if (attempt <= health(this.target, version).trafficFailures) {
        this.fleet.save(fleetKey(service, this.target), fleet);
        throw new Error(`simulated router refused the weight change (attempt ${attempt})`);
      }
    }
    fleet.routes = { canaryWeight: routes.canaryWeight, internalAudience: routes.internalAudience ? { ...routes.internalAudience } : null };
    this.fleet.record(fleetKey(service, this.target), fleet, { action: 'set-routes', routes: fleet.routes });
    return { ...fleet.routes };
  }

  async getRoutes(service: string): Promise<Routes> {
    return { ...this.fleet.service(fleetKey(service, this.target), this.target).routes };
  }

  /** A version that crashed refuses connections, and the router's health checks see it. */
  async serverDown(service: string, slot: 'stable' | 'canary'): Promise<string | null> {
    const version = this.fleet.service(fleetKey(service, this.target), this.target).slots[slot];
    const behaviour = this.fleet.behaviour(fleetKey(service, this.target), this.target, version);
    if (!behaviour || !crashed(behaviour, Date.now() / 1_000)) return null;
    const since = new Date(behaviour.crashesAt! * 1_000).toISOString();
    return `server ${slot} (${version}) is DOWN: connection refused since ${since} (simulated crash)`;
  }
}

/** The range of a PromQL range selector, e.g. `[1m30s]`, in seconds; the longest in the query. */
export function queryWindowSeconds(query: string): number | null {
  const unit: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3_600, d: 86_400, w: 604_800, y: 31_536_000 };
  let longest: number | null = null;
  for (const [, range] of query.matchAll(/\[((?:\d+(?:ms|[smhdwy]))+)(?::[^\]]*)?\]/g)) {
    let seconds = 0;
    for (const [, amount, u] of range!.matchAll(/(\d+)(ms|[smhdwy])/g)) seconds += Number(amount) * unit[u!]!;
    longest = Math.max(longest ?? 0, seconds);
  }
  return longest;
}

/**
 * Evidence drawn from the traffic model: error counts (5xx plus refused connections, out of both) and
 * the latency histogram of one track over the query's window (its range selector, `[{{window}}]` in
 * the default queries; without one, the time since the routes last changed). A version whose health
 * says `noData` reports nothing.
 */
export class SimulatedMetrics implements MetricProvider {
  readonly type = 'simulated';
  constructor(private readonly fleet: SimulatedFleet, private readonly target: SimulatedTarget) {}

  async counts(request: CountsQuery): Promise<Counts | null> {
    await delay(this.target);
    const traffic = this.observe(request, request.total);
    return traffic && errorCounts(traffic);
  }

  async histogram(request: HistogramQuery): Promise<Histogram | null> {
    await delay(this.target);
    const traffic = this.observe(request, request.buckets);
    return traffic && latencyHistogram(traffic);
  }

  async isOnline(): Promise<boolean> {
    return true;
  }

  private observe(request: CountsQuery | HistogramQuery, query: string): TrackTraffic | null {
    if (health(this.target, request.version).noData) return null;
    const now = Date.now();
    const to = now - (now % TICK_MS);
    const seconds = queryWindowSeconds(query) ?? (now - (this.fleet.service(fleetKey(request.service, this.target), this.target).timeline?.at(-1)?.at ?? now)) / 1_000;
    return this.fleet.traffic(fleetKey(request.service, this.target), this.target, to - Math.round(seconds * 1_000), to)[request.track];
  }
}

/**
 * A constant-rate load generator (rate x duration requests, as autocannon's `overallRate` sends) whose
 * answers come from the same model as user traffic: errors binomial, latencies log-normal, seeded by
 * (seed, service, version, track). It answers at once rather than taking the load's duration, so
 * workflow tests and the engine benchmark stay fast.
 */
export class SimulatedLoadGenerator implements LoadGenerator {
  readonly type = 'simulated';
  constructor(private readonly target: SimulatedTarget) {}

  async run(request: LoadRequest, onProgress?: () => void, signal?: AbortSignal): Promise<LoadResult> {
    signal?.throwIfAborted();
    await delay(this.target, signal);
    signal?.throwIfAborted();
    const h = health(this.target, request.version);
    const requests = Math.max(1, Math.round((request.load.rate * request.load.duration) / 1_000));
    const random = new Random(this.target.seed, hashString(request.service), hashString(request.version), hashString(request.track));
    const traffic = answer(random, h, requests, emptyTrack());
    const histogram = latencyHistogram(traffic);
    onProgress?.();
    const quantileMs = (q: number) => Math.round((histogramQuantile(histogram, q) ?? 0) * 1_000_000) / 1_000;
    return {
      requests,
      errors: traffic.errors,
      errorRate: traffic.errors / requests,
      requestsPerSecond: request.load.rate,
      latencyMs: { p50: quantileMs(0.5), p95: quantileMs(0.95), p99: quantileMs(0.99) },
      histogram,
    };
  }
}
