import { createServer, type Server } from 'node:http';
import { Runtime } from '@temporalio/worker';
import type { Registry } from 'prom-client';
import type { RampartConfig } from '../config';
import { createLogger, sdkLogger, type Logger } from './logger';

/**
 * Sets up a worker process's observability once, before any worker or connection exists: pino for
 * the SDK's log lines, and the SDK's own Prometheus exporter for its runtime metrics.
 */
export function installRuntime(config: RampartConfig): Logger {
  const logger = createLogger({ level: config.RAMPART_LOG_LEVEL });
  const sdkLevel = config.RAMPART_LOG_LEVEL === 'debug' || config.RAMPART_LOG_LEVEL === 'trace' ? 'DEBUG' : 'WARN';
  Runtime.install({
    logger: sdkLogger(logger, sdkLevel),
    ...(config.RAMPART_SDK_METRICS_ADDRESS === 'off'
      ? {}
      : { telemetryOptions: { metrics: { prometheus: { bindAddress: config.RAMPART_SDK_METRICS_ADDRESS } } } }),
  });
  return logger;
}

/** A bare /metrics endpoint for a registry, for processes that run no API (stand-alone workers). */
export async function serveMetrics(registry: Registry, port: number, host = '0.0.0.0'): Promise<Server> {
  const server = createServer((request, response) => {
    if (request.url !== '/metrics') {
      response.writeHead(404).end();
      return;
    }
    registry
      .metrics()
      .then((text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text))
      .catch((error: Error) => response.writeHead(500).end(error.message));
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  return server;
}
