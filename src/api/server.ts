// Listens and closes gracefully; everything else is in app.ts.
import type { Client } from '@temporalio/client';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import pino from 'pino';
import type { RampartConfig } from '../config';
import { OutboundAllowlist } from '../providers/outbound';
import { DrillClient } from '../temporal/drills';
import { ReleaseClient } from '../temporal/releases';
import { buildApp } from './app';
import type { ApiMetrics } from './metrics';
import { apiSettingsFromConfig, ensureLocalToken, type ApiSettings } from './settings';
import { SpecRegistry } from './spec-registry';

export interface RunningApi {
  app: FastifyInstance;
  url: string;
  /** Where the generated local token is, when one was generated (embedded default only). */
  localTokenFile: string | null;
  settings: ApiSettings;
  /** Stops taking requests, lets the ones in flight finish (up to the grace period), then closes. */
  close(): Promise<void>;
}

export interface ListenOptions {
  host: string;
  port: number;
  /** How long requests in flight may take to finish at shutdown before their connections are cut. */
  graceMs?: number;
}

export async function listen(app: FastifyInstance, options: ListenOptions): Promise<Pick<RunningApi, 'url' | 'close'>> {
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    close() {
      closing ??= (async () => {
        const grace = setTimeout(() => app.server.closeAllConnections(), options.graceMs ?? 10_000);
        grace.unref();
        try {
          await app.close();
        } finally {
          clearTimeout(grace);
        }
      })();
      return closing;
    },
  };
}

export interface StartApiOptions {
  config: RampartConfig;
  client: Client;
  /** The embedded default passes its data folder: with no token configured, a local admin token is generated there. */
  localTokenDir?: string;
  metrics?: ApiMetrics;
  logger?: FastifyBaseLogger;
}

/** Builds the API from the configuration and a Temporal client, and listens where the configuration says. */
export async function startApi(options: StartApiOptions): Promise<RunningApi> {
  const { config, client } = options;
  const settings = apiSettingsFromConfig(config);
  let localTokenFile: string | null = null;
  if (settings.tokens.length === 0 && options.localTokenDir) {
    const local = ensureLocalToken(options.localTokenDir);
    settings.tokens = [local.token];
    localTokenFile = local.file;
  }
  const outbound = OutboundAllowlist.parse(config.RAMPART_OUTBOUND_HOSTS);
  const specs = settings.specsDir ? SpecRegistry.load(settings.specsDir, outbound) : new SpecRegistry([], outbound);
  const app = await buildApp({
    releases: new ReleaseClient(client, config.RAMPART_TASK_QUEUE),
    drills: new DrillClient(client, config.RAMPART_TASK_QUEUE),
    ping: async () => {
      await client.connection.withDeadline(Date.now() + 2_000, () => client.workflowService.getSystemInfo({}));
    },
    settings,
    specs,
    ...(options.metrics ? { metrics: options.metrics } : {}),
    logger: options.logger ?? pino({ level: config.RAMPART_LOG_LEVEL, base: { component: 'api' } }),
  });
  const running = await listen(app, { host: config.RAMPART_API_HOST, port: config.RAMPART_API_PORT });
  return { app, settings, localTokenFile, ...running };
}
