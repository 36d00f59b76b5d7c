import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { RampartConfig } from '../config';
import { projectPath } from '../config';
import { resolveTemporalCli } from './cli';
import { startDevServer, type DevServer } from './dev-server';
import { ensureSearchAttributes } from './search-attributes';

export interface TemporalHandle {
  address: string;
  namespace: string;
  uiUrl: string | null;
  /** The embedded dev server when Rampart started one. */
  devServer: DevServer | null;
  client: Client;
  close(): Promise<void>;
}

/**
 * Connects to TEMPORAL_ADDRESS when it is set; otherwise starts the embedded dev server on a SQLite
 * file in the data folder, so releases survive a restart of Rampart.
 */
export async function connectTemporal(config: RampartConfig, log: (line: string) => void = () => {}): Promise<TemporalHandle> {
  let devServer: DevServer | null = null;
  let address = config.TEMPORAL_ADDRESS;
  if (!address) {
    const cli = await resolveTemporalCli({
      explicitPath: config.TEMPORAL_CLI_PATH,
      toolsDir: projectPath(config.RAMPART_TOOLS_DIR),
      install: config.RAMPART_INSTALL_TEMPORAL,
    });
    log(`Temporal CLI: ${cli.path} (${cli.source})`);
    devServer = await startDevServer({
      cliPath: cli.path,
      dbFile: join(projectPath(config.RAMPART_DATA_DIR), 'temporal.sqlite'),
      port: config.RAMPART_TEMPORAL_PORT,
      uiPort: config.RAMPART_TEMPORAL_UI_PORT,
      namespace: config.TEMPORAL_NAMESPACE,
    });
    address = devServer.address;
  }
  const connection = await Connection.connect({ address });
  await ensureSearchAttributes(connection, config.TEMPORAL_NAMESPACE);
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  return {
    address,
    namespace: config.TEMPORAL_NAMESPACE,
    uiUrl: devServer?.uiUrl ?? null,
    devServer,
    client,
    async close() {
      await connection.close();
      await devServer?.stop();
    },
  };
}
