import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client';
import type { DoraFigures } from '../engine/dora';

/**
 * The API's own metrics, in a registry of its own (never prom-client's global one), so two apps in
 * one process (tests) never collide, and other parts of Rampart can add theirs to the same registry.
 */
export class ApiMetrics {
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly duration: Histogram<'method' | 'route'>;
  readonly webhooks: Counter<'source' | 'outcome'>;
  readonly commands: Counter<'command' | 'source' | 'outcome'>;
  readonly alerts: Counter<'status' | 'action'>;
  readonly dora: DoraGauges;

  constructor(
    readonly registry: Registry = new Registry(),
    options: {
      defaultMetrics?: boolean;
      /** Other registries served on the same page (the deployment metrics of a worker in this process). */
      include?: readonly Registry[];
      dora?: DoraGaugeOptions;
    } = {},
  ) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'rampart_api_' });
    this.requests = new Counter({
      name: 'rampart_api_requests_total',
      help: 'HTTP requests answered, by route pattern and status code.',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'rampart_api_request_duration_seconds',
      help: 'Time to answer an HTTP request.',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    this.webhooks = new Counter({
      name: 'rampart_api_webhook_deliveries_total',
      help: 'Webhook deliveries by source (ci, github, alertmanager) and outcome (started, queued, duplicate, replayed, ignored, rejected).',
      labelNames: ['source', 'outcome'],
      registers: [registry],
    });
    this.commands = new Counter({
      name: 'rampart_api_commands_total',
      help: 'Release commands sent, by command, source (operator, alert) and outcome (applied, rejected, not-found).',
      labelNames: ['command', 'source', 'outcome'],
      registers: [registry],
    });
    this.alerts = new Counter({
      name: 'rampart_api_alerts_total',
      help: 'Alerts received from Alertmanager, by status and the action taken.',
      labelNames: ['status', 'action'],
      registers: [registry],
    });
    this.dora = new DoraGauges(registry, options.dora);
    for (const other of options.include ?? []) this.include(other);
  }

  /**
   * Serves another registry's metrics on this page too, as prom-client's Registry.merge does: the
   * metric objects are shared, so what the other side records shows at the next scrape.
   */
  include(other: Registry): void {
    // getMetricsAsArray is typed as plain objects; they are the metric instances (what Registry.merge relies on).
    for (const metric of other.getMetricsAsArray()) this.registry.registerMetric(metric as unknown as Metric);
  }
}

export interface DoraGaugeOptions {
  /** The window the figures cover, in days (default 30). */
  days?: number;
  /** How long one computation serves scrapes (default 15 s), so scrapes do not load Temporal visibility. */
  cacheMs?: number;
  /** How long a scrape waits for a computation (default 5 s); a slower one is served from the cache at a later scrape. */
  waitMs?: number;
}

type DoraSource = (days: number) => Promise<DoraFigures[]>;
type Where = 'service' | 'environment';

/**
 * The four DORA keys per service and environment as gauges, computed when scraped from the releases'
 * own history (ReleaseClient.dora). A failed computation is reported to the app's log and leaves the
 * gauges empty (rampart_dora_up 0) until the next one; it never fails the page.
 */
export class DoraGauges {
  readonly days: number;
  readonly up: Gauge;
  private readonly cacheMs: number;
  private readonly waitMs: number;
  private source: DoraSource | null = null;
  private onError: (error: unknown) => void = () => undefined;
  private latest: { at: number; figures: DoraFigures[] | null } | null = null;
  private pending: Promise<DoraFigures[] | null> | null = null;

  constructor(registry: Registry, options: DoraGaugeOptions = {}) {
    this.days = options.days ?? 30;
    this.cacheMs = options.cacheMs ?? 15_000;
    this.waitMs = options.waitMs ?? 5_000;
    const window = `over the last ${this.days} days`;
    const figures = () => this.figures();
    const perService = (name: string, help: string, value: (f: DoraFigures) => number | null) =>
      new Gauge<Where>({
        name,
        help,
        labelNames: ['service', 'environment'],
        registers: [registry],
        async collect() {
          this.reset();
          for (const f of (await figures()) ?? []) {
            const v = value(f);
            if (v !== null) this.set({ service: f.service, environment: f.environment }, v);
          }
        },
      });
    perService('rampart_dora_deployments', `Releases promoted to 100% ${window} (drills, superseded and cancelled releases left out).`, (f) => f.deployments);
    perService('rampart_dora_deployment_frequency_per_day', `DORA deployment frequency: deployments per day ${window}.`, (f) => f.deploymentFrequencyPerDay);
    perService('rampart_dora_lead_time_seconds', `DORA lead time for changes: median from commit time to 100% ${window}.`, (f) => f.leadTimeForChanges?.medianSeconds ?? null);
    perService('rampart_dora_change_failure_rate', `DORA change failure rate: failed releases (rolled back or aborted) over failed plus deployed ${window}.`, (f) => f.changeFailureRate);
    perService('rampart_dora_failed_deployments', `Releases rolled back or aborted ${window}.`, (f) => f.failedDeployments);
    perService('rampart_dora_recovery_time_seconds', `DORA failed deployment recovery time: median from the decision to roll back to traffic back on stable ${window}.`, (f) => f.failedDeploymentRecoveryTime?.medianSeconds ?? null);
    this.up = new Gauge({
      name: 'rampart_dora_up',
      help: 'Whether the DORA figures on this page are current (1) or could not be computed for this scrape (0).',
      registers: [registry],
      async collect() {
        this.set((await figures()) === null ? 0 : 1);
      },
    });
  }

  /** Where the figures come from and where a failure to compute them is reported; until then the gauges stay empty. */
  attach(source: DoraSource, onError: (error: unknown) => void): void {
    this.source = source;
    this.onError = onError;
    this.latest = null;
  }

  /** The cached figures, or a fresh computation shared by every gauge of the scrape; null when unavailable. */
  private async figures(): Promise<DoraFigures[] | null> {
    if (!this.source) return null;
    if (this.latest && Date.now() - this.latest.at < this.cacheMs) return this.latest.figures;
    const source = this.source;
    // Started on a later tick, so `pending` is set before the computation can settle and clear it.
    this.pending ??= Promise.resolve()
      .then(() => source(this.days))
      .then(
        (figures) => figures,
        (error: unknown) => {
          this.onError(error);
          return null;
        },
      )
      .then((figures) => {
        // A failure is cached too, so a struggling visibility store is not asked again at every scrape.
        this.latest = { at: Date.now(), figures };
        this.pending = null;
        return figures;
      });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), this.waitMs)));
    try {
      return await Promise.race([this.pending, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}
