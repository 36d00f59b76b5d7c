import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { SEARCH_ATTRIBUTES } from '../../workflows/definitions';
import type { RampartConfig } from '../config';
import { ConfigError, projectPath } from '../config';
import { resolveTemporalCli, TemporalCliNotFoundError } from './cli';
import { startDevServer, type DevServer } from './dev-server';
import { ensureSearchAttributes } from './search-attributes';

export interface TemporalHandle {
  address: string;
  /** TLS and API key of TEMPORAL_ADDRESS, for the worker's own connection; null for the embedded dev server. */
  connectionOptions: TemporalConnectionOptions | null;
  namespace: string;
  uiUrl: string | null;
  /** The embedded dev server when Rampart started one. */
  devServer: DevServer | null;
  client: Client;
  close(): Promise<void>;
}

/** What Connection.connect and NativeConnection.connect need to reach a secured Temporal. */
export interface TemporalConnectionOptions {
  address: string;
  /** Unset: plaintext, as the dev server and an unsecured cluster speak. */
  tls?: TLSConfig;
  apiKey?: string;
}

type TlsSetting = 'TEMPORAL_TLS_SERVER_CA_CERT_PATH' | 'TEMPORAL_TLS_SERVER_NAME' | 'TEMPORAL_TLS_CLIENT_CERT_PATH' | 'TEMPORAL_TLS_CLIENT_KEY_PATH';
const TLS_SETTINGS: readonly TlsSetting[] = ['TEMPORAL_TLS_SERVER_CA_CERT_PATH', 'TEMPORAL_TLS_SERVER_NAME', 'TEMPORAL_TLS_CLIENT_CERT_PATH', 'TEMPORAL_TLS_CLIENT_KEY_PATH'];

function readConfigFile(path: string, field: string): Buffer {
  try {
    return readFileSync(projectPath(path));
  } catch (error) {
    throw new ConfigError([{ field, message: `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` }]);
  }
}

/** A certificate read now, so a wrong file is named at start rather than as a failed handshake later. */
function certificate(path: string, field: string): { pem: Buffer; parsed: X509Certificate } {
  const pem = readConfigFile(path, field);
  try {
    return { pem, parsed: new X509Certificate(pem) };
  } catch (error) {
    throw new ConfigError([{ field, message: `${path} is not a PEM certificate: ${(error as Error).message}` }]);
  }
}

function apiKey(config: RampartConfig): string | undefined {
  if (config.TEMPORAL_API_KEY && config.TEMPORAL_API_KEY_FILE) {
    throw new ConfigError([{ field: 'TEMPORAL_API_KEY', message: 'set TEMPORAL_API_KEY or TEMPORAL_API_KEY_FILE, not both' }]);
  }
  if (config.TEMPORAL_API_KEY_FILE) {
    const key = readConfigFile(config.TEMPORAL_API_KEY_FILE, 'TEMPORAL_API_KEY_FILE').toString('utf8').trim();
    if (!key) throw new ConfigError([{ field: 'TEMPORAL_API_KEY_FILE', message: `${config.TEMPORAL_API_KEY_FILE} is empty` }]);
    return key;
  }
  return config.TEMPORAL_API_KEY || undefined;
}

/**
 * How to reach TEMPORAL_ADDRESS: TLS (the server's CA and name), mTLS (a client certificate and key)
 * and an API key, as Temporal Cloud and secured clusters need them. Files are read and checked here,
 * once; the same options serve the client's Connection and the worker's NativeConnection.
 */
export function temporalConnectionOptions(config: RampartConfig): TemporalConnectionOptions | null {
  const key = apiKey(config);
  const given = TLS_SETTINGS.filter((name) => config[name] !== undefined);
  if (!config.TEMPORAL_ADDRESS) {
    const secured: string[] = [...given, ...(key !== undefined ? ['TEMPORAL_API_KEY'] : []), ...(config.TEMPORAL_TLS ? ['TEMPORAL_TLS'] : [])];
    if (secured.length) {
      throw new ConfigError(
        secured.map((field) => ({ field, message: 'the embedded dev server speaks plaintext only: set TEMPORAL_ADDRESS to the server this is for, or unset it' })),
      );
    }
    return null;
  }
  const address = config.TEMPORAL_ADDRESS;
  if (config.TEMPORAL_TLS === false) {
    const problems: { field: string; message: string }[] = given.map((field) => ({ field, message: 'TEMPORAL_TLS is false, so this would be ignored: turn TLS on or unset it' }));
    // Sent in the clear, the key would be readable by anyone on the path, and valid until revoked.
    if (key !== undefined) problems.push({ field: 'TEMPORAL_API_KEY', message: 'an API key is only sent over TLS: unset TEMPORAL_TLS=false' });
    if (problems.length) throw new ConfigError(problems);
    return { address };
  }
  if (!config.TEMPORAL_TLS && given.length === 0 && key === undefined) return { address };

  const tls: TLSConfig = {};
  if (config.TEMPORAL_TLS_SERVER_NAME) tls.serverNameOverride = config.TEMPORAL_TLS_SERVER_NAME;
  if (config.TEMPORAL_TLS_SERVER_CA_CERT_PATH) tls.serverRootCACertificate = certificate(config.TEMPORAL_TLS_SERVER_CA_CERT_PATH, 'TEMPORAL_TLS_SERVER_CA_CERT_PATH').pem;
  const certPath = config.TEMPORAL_TLS_CLIENT_CERT_PATH;
  const keyPath = config.TEMPORAL_TLS_CLIENT_KEY_PATH;
  if (certPath === undefined && keyPath !== undefined) {
    throw new ConfigError([{ field: 'TEMPORAL_TLS_CLIENT_CERT_PATH', message: 'mTLS needs the client certificate too (TEMPORAL_TLS_CLIENT_KEY_PATH is set)' }]);
  }
  if (certPath !== undefined && keyPath === undefined) {
    throw new ConfigError([{ field: 'TEMPORAL_TLS_CLIENT_KEY_PATH', message: 'mTLS needs the private key of the client certificate too (TEMPORAL_TLS_CLIENT_CERT_PATH is set)' }]);
  }
  if (certPath !== undefined && keyPath !== undefined) {
    const cert = certificate(certPath, 'TEMPORAL_TLS_CLIENT_CERT_PATH');
    const pem = readConfigFile(keyPath, 'TEMPORAL_TLS_CLIENT_KEY_PATH');
    let matches: boolean;
    try {
      matches = cert.parsed.checkPrivateKey(createPrivateKey(pem));
    } catch (error) {
      throw new ConfigError([{ field: 'TEMPORAL_TLS_CLIENT_KEY_PATH', message: `${keyPath} is not a PEM private key: ${(error as Error).message}` }]);
    }
    if (!matches) throw new ConfigError([{ field: 'TEMPORAL_TLS_CLIENT_KEY_PATH', message: `${keyPath} is not the key of the certificate in ${certPath}` }]);
    tls.clientCertPair = { crt: cert.pem, key: pem };
  }
  return { address, tls, ...(key !== undefined ? { apiKey: key } : {}) };
}

/**
 * Connects to TEMPORAL_ADDRESS when it is set; otherwise starts the embedded dev server on a SQLite
 * file in the data folder, so releases survive a restart of Rampart.
 */
export async function connectTemporal(config: RampartConfig, log: (line: string) => void = () => {}): Promise<TemporalHandle> {
  let devServer: DevServer | null = null;
  let sdkServer: TestWorkflowEnvironment | null = null;
  const secured = temporalConnectionOptions(config);
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
  const connection = await Connection.connect(secured ?? { address });
  await ensureSearchAttributes(connection, config.TEMPORAL_NAMESPACE);
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  return {
    address,
    connectionOptions: secured,
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
