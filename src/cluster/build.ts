import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { withFileLock } from '../process/lock';
import { TEMPORAL_SERVER_VERSION } from './config';

/*
 * The Temporal server and its SQL tool, built from the Go module proxy into the tools folder once per version
 * (`.tools/temporal-server/<version>/`), with the PostgreSQL schemas of the same version copied beside them. The
 * server has no Debian package and these machines reach no release downloads; `go install pkg@version` uses the
 * module's own go.sum, so nothing but the module proxy is needed.
 */

export interface TemporalBinaries {
  server: string;
  sqlTool: string;
  /** schema/postgresql/v12 of the same module: `temporal/versioned` and `visibility/versioned`. */
  schemaDir: string;
}

export function temporalBinaries(toolsDir: string, version = TEMPORAL_SERVER_VERSION): TemporalBinaries {
  const dir = path.join(toolsDir, 'temporal-server', version);
  return { server: path.join(dir, 'temporal-server'), sqlTool: path.join(dir, 'temporal-sql-tool'), schemaDir: path.join(dir, 'schema', 'postgresql', 'v12') };
}

function built(binaries: TemporalBinaries): boolean {
  return existsSync(binaries.server) && existsSync(binaries.sqlTool) && existsSync(path.join(binaries.schemaDir, 'temporal', 'versioned'));
}

/** Builds what is missing (a lock keeps two `up`s from building at once); returns the paths and the build's duration. */
export async function ensureTemporalBinaries(toolsDir: string, log: (line: string) => void = () => {}): Promise<TemporalBinaries & { builtInMs: number | null }> {
  const binaries = temporalBinaries(toolsDir);
  if (built(binaries)) return { ...binaries, builtInMs: null };
  const dir = path.dirname(binaries.server);
  await mkdir(dir, { recursive: true });
  return withFileLock(
    path.join(dir, 'build'),
    async () => {
      if (built(binaries)) return { ...binaries, builtInMs: null };
      const started = Date.now();
      const module = `go.temporal.io/server@v${TEMPORAL_SERVER_VERSION}`;
      log(`building Temporal server ${TEMPORAL_SERVER_VERSION} and its SQL tool from the Go module proxy (about 6 minutes from cold caches)`);
      // Outside any module, so the build uses the server's own go.mod and go.sum.
      const scratch = await mkdtemp(path.join(tmpdir(), 'rampart-temporal-build-'));
      try {
        const env = { ...process.env, GOBIN: scratch, GOFLAGS: `${process.env.GOFLAGS ?? ''} -buildvcs=false`.trim(), GO111MODULE: 'on' };
        await run('go', ['install', `go.temporal.io/server/cmd/server@v${TEMPORAL_SERVER_VERSION}`, `go.temporal.io/server/cmd/tools/sql@v${TEMPORAL_SERVER_VERSION}`], scratch, env);
        const download = JSON.parse(await run('go', ['mod', 'download', '-json', module], scratch, env)) as { Dir?: string };
        if (!download.Dir) throw new Error(`go mod download ${module} did not say where the module is`);
        await rm(path.join(dir, 'schema'), { recursive: true, force: true });
        await cp(path.join(download.Dir, 'schema', 'postgresql', 'v12'), binaries.schemaDir, { recursive: true });
        await rename(path.join(scratch, 'sql'), binaries.sqlTool);
        // The server last: its presence is what says the build is complete.
        await rename(path.join(scratch, 'server'), binaries.server);
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
      const builtInMs = Date.now() - started;
      log(`built in ${(builtInMs / 1000).toFixed(0)} s into ${dir}`);
      return { ...binaries, builtInMs };
    },
    // A cold build takes minutes; a second `up` waits for it rather than failing.
    { timeoutMs: 20 * 60_000 },
  );
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4_000)));
    child.once('error', (error) =>
      reject(new Error(`${command} could not start (${error.message}): building the Temporal server needs Go ${'>='} 1.26.8 on PATH`, { cause: error })),
    );
    child.once('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${command} ${args.join(' ')} failed with code ${code}:\n${stderr}`))));
  });
}
