import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { SEARCH_ATTRIBUTES } from '../../workflows/definitions';
import type { RampartConfig } from '../config';
import { projectPath } from '../config';
import { resolveTemporalCli, TemporalCliNotFoundError } from './cli';
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
  let sdkServer: TestWorkflowEnvironment | null = null;
  let address = config.TEMPORAL_ADDRESS;
  if (!address) {
    const dbFile = join(projectPath(config.RAMPART_DATA_DIR), 'temporal.sqlite');
    try {
      const cli = await resolveTemporalCli({
        explicitPath: config.TEMPORAL_CLI_PATH,
        toolsDir: projectPath(config.RAMPART_TOOLS_DIR),
        install: config.RAMPART_INSTALL_TEMPORAL,
      });
      log(`Temporal CLI: ${cli.path} (${cli.source})`);
      devServer = await startDevServer({
        cliPath: cli.path,
        dbFile,
        port: config.RAMPART_TEMPORAL_PORT,
        uiPort: config.RAMPART_TEMPORAL_UI_PORT,
        namespace: config.TEMPORAL_NAMESPACE,
      });
      address = devServer.address;
    } catch (error) {
      if (!(error instanceof TemporalCliNotFoundError)) throw error;
      // The last resort: the SDK downloads the dev server itself (needs the internet; it allows the server 5 s).
      log(`${error.message}\nTrying the SDK's own download of the dev server as a last resort.`);
      try {
        sdkServer = await TestWorkflowEnvironment.createLocal({
          server: {
            dbFilename: dbFile,
            namespace: config.TEMPORAL_NAMESPACE,
            ip: '127.0.0.1',
            port: config.RAMPART_TEMPORAL_PORT,
            ...(config.RAMPART_TEMPORAL_UI_PORT > 0 ? { ui: true, uiPort: config.RAMPART_TEMPORAL_UI_PORT } : {}),
            searchAttributes: SEARCH_ATTRIBUTES,
          },
        });
      } catch (download) {
        throw new TemporalCliNotFoundError([...error.attempts, `the SDK's own download: ${(download as Error).message.split('\n')[0]}`]);
      }
      address = sdkServer.address;
    }
  }
  const connection = await Connection.connect({ address });
  await ensureSearchAttributes(connection, config.TEMPORAL_NAMESPACE);
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  return {
    address,
    namespace: config.TEMPORAL_NAMESPACE,
    uiUrl: devServer?.uiUrl ?? (sdkServer && config.RAMPART_TEMPORAL_UI_PORT > 0 ? `http://127.0.0.1:${config.RAMPART_TEMPORAL_UI_PORT}` : null),
    devServer,
    client,
    async close() {
      await connection.close();
      await devServer?.stop();
      await sdkServer?.teardown();
    },
  };
}
