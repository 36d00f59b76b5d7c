import { validateReleaseSpec } from '../../src/spec/parse';
import type { ReleaseSpec } from '../../src/spec/release-spec';
import { DEFAULT_SIMULATED_STABLE } from '../../src/providers/simulated/fleet';

export const STABLE = DEFAULT_SIMULATED_STABLE;

export interface FastSpecOptions {
  /** Bake per step name, e.g. { 'ramp-10': '30s' }; every other step bakes 0. */
  bake?: Record<string, string>;
  health?: Record<string, Record<string, unknown>>;
  approval?: string[];
  analysis?: Record<string, unknown>;
  load?: Record<string, unknown>;
  /** Simulated user requests per second (default 20,000: a few seconds of bake hold plenty of evidence). */
  trafficPerSecond?: number;
  /** Delay of every simulated provider call in ms, to widen windows a test must hit (default 0). */
  providerLatencyMs?: number;
  drill?: boolean;
  hooks?: Record<string, { before?: unknown[]; after?: unknown[] }>;
  /** How long the previous version stays warm after a promotion (default 0: tests that do not ask for it see a promotion finish at once). */
  warmWindow?: string;
}

/** The default four phases (six steps) on the simulated target, with zero bakes unless asked. */
export function fastSpec(service: string, version: string, options: FastSpecOptions = {}): ReleaseSpec {
  const internal = { header: 'x-rampart-audience', value: 'internal' };
  const steps = [
    // Simulated load costs nothing to generate: enough of it that the comparison with stable can decide.
    { name: 'synthetic', phase: 'synthetic', weight: 0, analysis: false, load: { duration: '1s', rate: 5_000, ...options.load } },
    { name: 'canary-internal', phase: 'canary', weight: 0, internalAudience: internal },
    { name: 'canary-5', phase: 'canary', weight: 5, internalAudience: internal },
    { name: 'ramp-10', phase: 'ramp', weight: 10 },
    { name: 'ramp-50', phase: 'ramp', weight: 50 },
    { name: 'full', phase: 'full', weight: 100 },
  ].map((step) => ({
    ...step,
    bake: options.bake?.[step.name] ?? 0,
    approval: options.approval?.includes(step.name) ?? false,
    ...(options.hooks?.[step.name] ?? {}),
  }));
  return validateReleaseSpec({
    service,
    version,
    requestedBy: 'test',
    target: { type: 'simulated', health: options.health ?? {}, trafficPerSecond: options.trafficPerSecond ?? 20_000, latencyMs: options.providerLatencyMs ?? 0 },
    ...(options.drill ? { drill: true } : {}),
    strategy: { steps },
    analysis: { interval: '100ms', ...options.analysis },
    rollback: { warmWindow: options.warmWindow ?? 0 },
  });
}
