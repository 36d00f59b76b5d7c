import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/*
 * The app being released in demos and end-to-end tests. Each version behaves as its environment says, so one
 * target config holds good and faulty versions:
 *   DEMO_BEHAVIOUR   JSON map version (or a version prefix, e.g. a short SHA) -> { "errorRate": 0..1, "latencyMs": n,
 *                    "crashAfterMs": n }; crashAfterMs makes the instance exit that long after it first took traffic
 *                    (a user request: not a health check, a scrape or synthetic load), so its port refuses connections
 *   DEMO_ERROR_RATE  share of requests answered 500 when the version is not in the map (default 0)
 *   DEMO_LATENCY_MS  delay before every answer when the version is not in the map (default 0)
 * RAMPART_VERSION and PORT come from the deployer. Every answer names the version (x-version header and body).
 */

export interface Behaviour {
  errorRate: number;
  latencyMs: number;
  /** Exit this long after the first user request; unset never crashes. */
  crashAfterMs?: number;
}

export function resolveBehaviour(version: string, env: NodeJS.ProcessEnv): Behaviour {
  const fallback: Behaviour = {
    errorRate: parseShare(env.DEMO_ERROR_RATE ?? '0', 'DEMO_ERROR_RATE'),
    latencyMs: parseLatency(env.DEMO_LATENCY_MS ?? '0', 'DEMO_LATENCY_MS'),
  };
  if (!env.DEMO_BEHAVIOUR) return fallback;
  let map: Record<string, Partial<Behaviour>>;
  try {
    map = JSON.parse(env.DEMO_BEHAVIOUR) as Record<string, Partial<Behaviour>>;
  } catch (error) {
    throw new Error(`DEMO_BEHAVIOUR is not JSON: ${(error as Error).message}`, { cause: error });
  }
  // The longest matching key wins, so a full SHA can override its short prefix.
  const key = Object.keys(map)
    .filter((candidate) => version.startsWith(candidate))
    .sort((a, b) => b.length - a.length)[0];
  if (key === undefined) return fallback;
  const entry = map[key]!;
  return {
    errorRate: entry.errorRate === undefined ? fallback.errorRate : parseShare(String(entry.errorRate), `DEMO_BEHAVIOUR[${key}].errorRate`),
    latencyMs: entry.latencyMs === undefined ? fallback.latencyMs : parseLatency(String(entry.latencyMs), `DEMO_BEHAVIOUR[${key}].latencyMs`),
    ...(entry.crashAfterMs === undefined ? {} : { crashAfterMs: parseLatency(String(entry.crashAfterMs), `DEMO_BEHAVIOUR[${key}].crashAfterMs`) }),
  };
}

function parseShare(raw: string, name: string): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || value > 1) throw new Error(`${name} must be a share from 0 to 1, got "${raw}"`);
  return value;
}

function parseLatency(raw: string, name: string): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number of milliseconds, got "${raw}"`);
  return value;
}

/** Fine enough around tens of milliseconds that a latency check can tell 1.25x apart from 1x. */
const DURATION_BUCKETS = [0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5];

export function createDemoServer(
  version: string,
  behaviour: Behaviour,
  onFirstUserRequest: () => void = () => undefined,
): { server: http.Server; registry: Registry } {
  // Its own registry, so tests that build several servers in one process never collide.
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by status code.',
    labelNames: ['code', 'version'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time to answer an HTTP request.',
    labelNames: ['code', 'version'],
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  // Series exist from the first scrape, at zero: increase() over a window in which a series first appears
  // loses the observations of its first sample.
  for (const code of ['200', '500']) {
    requests.inc({ code, version }, 0);
    duration.zero({ code, version });
  }
  let tookTraffic = false;

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    res.setHeader('x-version', version);
    if (path === '/healthz') {
      res.end(`ok ${version}\n`);
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.setHeader('content-type', registry.contentType);
          res.end(text);
        },
        (error: Error) => {
          res.statusCode = 500;
          res.end(`metrics failed: ${error.message}\n`);
        },
      );
      return;
    }
    if (!tookTraffic && req.headers['x-rampart-load'] === undefined) {
      tookTraffic = true;
      onFirstUserRequest();
    }
    // Only user requests are measured: scrapes and health checks would dilute the error rate.
    const stopTimer = duration.startTimer();
    void (async () => {
      if (behaviour.latencyMs > 0) await sleep(behaviour.latencyMs);
      const failed = Math.random() < behaviour.errorRate;
      res.statusCode = failed ? 500 : 200;
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.end(failed ? `error from ${version}\n` : `hello from ${version}\n`);
      const labels = { code: String(res.statusCode), version };
      requests.inc(labels);
      stopTimer(labels);
    })();
  });
  server.keepAliveTimeout = 65_000;
  return { server, registry };
}

function main(): void {
  const version = process.env.RAMPART_VERSION ?? 'dev';
  const port = Number(process.env.PORT ?? '8080');
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new Error(`PORT must be a TCP port, got "${process.env.PORT}"`);
  const behaviour = resolveBehaviour(version, process.env);
  const crash = () => {
    if (behaviour.crashAfterMs === undefined) return;
    setTimeout(() => {
      // A crash, not a shutdown: no draining, the port refuses connections from now on.
      console.error(`demo-service ${version}: crashing as DEMO_BEHAVIOUR says, ${behaviour.crashAfterMs} ms after the first user request`);
      process.exit(70);
    }, behaviour.crashAfterMs);
  };
  const { server } = createDemoServer(version, behaviour, crash);
  // Loopback unless told otherwise: containers set HOST=0.0.0.0 so their router can reach them.
  const host = process.env.HOST ?? '127.0.0.1';
  server.listen(port, host, () => {
    console.log(`demo-service ${version} on ${host}:${port}, error rate ${behaviour.errorRate}, latency ${behaviour.latencyMs} ms`);
  });
  const shutdown = (signal: string) => {
    console.log(`demo-service ${version}: ${signal}, closing`);
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    // Keep-alive clients (HAProxy) must not hold the port for long.
    setTimeout(() => process.exit(0), 2_000).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

if (require.main === module) {
  try {
    main();
  } catch (error) {
    console.error(`demo-service: ${(error as Error).message}`);
    process.exit(1);
  }
}
