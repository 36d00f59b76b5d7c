import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ReleaseEvent } from '../engine/events';

const SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

/**
 * The deployment's own metrics, fed by the release workflows' events (a workflow sink, so a replay
 * does not count twice). Owns its registry, so tests and apps never collide on prom-client's global one.
 */
export class DeploymentMetrics {
  readonly started: Counter<'service' | 'environment'>;
  readonly finished: Counter<'service' | 'environment' | 'outcome'>;
  readonly phaseDuration: Histogram<'phase'>;
  readonly canaryWeight: Gauge<'service' | 'environment'>;
  readonly pauses: Counter<'service' | 'environment' | 'cause'>;
  readonly rollbacks: Counter<'service' | 'environment' | 'reason'>;
  readonly timeToSafe: Histogram<'service' | 'environment'>;
  readonly drills: Counter<'service' | 'environment' | 'result'>;
  readonly drillTimeToDetect: Histogram<'service' | 'environment'>;
  readonly drillTimeToSafe: Histogram<'service' | 'environment'>;
  readonly rollouts: Counter<'service' | 'environment' | 'state'>;
  readonly rolloutRegions: Counter<'service' | 'environment' | 'region' | 'state'>;

  constructor(readonly registry: Registry = new Registry()) {
    const registers = [registry];
    this.started = new Counter({ name: 'rampart_releases_started_total', help: 'Releases started.', labelNames: ['service', 'environment'], registers });
    this.finished = new Counter({
      name: 'rampart_releases_finished_total',
      help: 'Releases finished, by outcome (promoted, rolled-back, aborted, superseded, cancelled). Drills are not counted here.',
      labelNames: ['service', 'environment', 'outcome'],
      registers,
    });
    this.phaseDuration = new Histogram({ name: 'rampart_phase_duration_seconds', help: 'Time a release spent in each phase.', labelNames: ['phase'], buckets: SECONDS, registers });
    this.canaryWeight = new Gauge({ name: 'rampart_canary_weight_percent', help: 'Share of traffic on the canary, as last verified on the router.', labelNames: ['service', 'environment'], registers });
    this.pauses = new Counter({ name: 'rampart_pauses_total', help: 'Release pauses, by cause (operator, alert, inconclusive).', labelNames: ['service', 'environment', 'cause'], registers });
    this.rollbacks = new Counter({
      name: 'rampart_rollbacks_total',
      help: 'Rollbacks, by reason (analysis, load-test, step-failed, aborted, alert, superseded, cancelled).',
      labelNames: ['service', 'environment', 'reason'],
      registers,
    });
    this.timeToSafe = new Histogram({
      name: 'rampart_time_to_safe_seconds',
      help: 'From the decision to roll back to traffic verified back on stable.',
      labelNames: ['service', 'environment'],
      buckets: SECONDS,
      registers,
    });
    this.drills = new Counter({ name: 'rampart_drills_total', help: 'Rollback drills, by result (passed, failed, skipped).', labelNames: ['service', 'environment', 'result'], registers });
    this.drillTimeToDetect = new Histogram({ name: 'rampart_drill_time_to_detect_seconds', help: 'Drills: from the faulty version taking traffic to the decision to roll back.', labelNames: ['service', 'environment'], buckets: SECONDS, registers });
    this.rollouts = new Counter({
      name: 'rampart_rollouts_finished_total',
      help: 'Rollouts across regions finished (one deployment each), by state (promoted, halted, rolled-back, aborted).',
      labelNames: ['service', 'environment', 'state'],
      registers,
    });
    this.rolloutRegions = new Counter({
      name: 'rampart_rollout_regions_total',
      help: "Each region of a finished rollout, by the region's end state (promoted, failed, rolled-back, rollback-failed, cancelled).",
      labelNames: ['service', 'environment', 'region', 'state'],
      registers,
    });
    this.drillTimeToSafe = new Histogram({ name: 'rampart_drill_time_to_safe_seconds', help: 'Drills: from the faulty version taking traffic to all traffic verified back on stable.', labelNames: ['service', 'environment'], buckets: SECONDS, registers });
  }

  record(event: ReleaseEvent): void {
    const where = { service: event.service, environment: event.environment };
    switch (event.type) {
      case 'started':
        if (!event.drill) this.started.inc(where);
        return;
      case 'phase':
        if (event.previous) this.phaseDuration.observe({ phase: event.previous.phase }, event.previous.ms / 1_000);
        return;
      case 'routes':
        this.canaryWeight.set(where, event.canaryWeight);
        return;
      case 'paused':
        this.pauses.inc({ ...where, cause: event.cause });
        return;
      case 'rollback':
        this.rollbacks.inc({ ...where, reason: event.reason });
        return;
      case 'finished':
        if (event.lastPhase) this.phaseDuration.observe({ phase: event.lastPhase.phase }, event.lastPhase.ms / 1_000);
        if (event.timeToSafeMs !== null) this.timeToSafe.observe(where, event.timeToSafeMs / 1_000);
        if (!event.drill) this.finished.inc({ ...where, outcome: event.outcome });
        return;
      case 'drill':
        this.drills.inc({ ...where, result: event.result });
        if (event.timeToDetectMs !== null) this.drillTimeToDetect.observe(where, event.timeToDetectMs / 1_000);
        if (event.timeToSafeMs !== null) this.drillTimeToSafe.observe(where, event.timeToSafeMs / 1_000);
        return;
      case 'rollout':
        this.rollouts.inc({ ...where, state: event.state });
        for (const { region, state } of event.regions) this.rolloutRegions.inc({ ...where, region, state });
        return;
      case 'transition':
        return;
    }
  }
}
