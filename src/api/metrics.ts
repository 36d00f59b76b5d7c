import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

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

  constructor(readonly registry: Registry = new Registry(), options: { defaultMetrics?: boolean } = {}) {
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
  }
}
