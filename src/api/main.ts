// The API on its own, against a running Temporal (TEMPORAL_ADDRESS): stateless, so as many replicas as
// needed can run behind a load balancer. `npm start` runs it embedded with the dev server and a worker.
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../config';
import { temporalConnectionOptions } from '../temporal/connect';
import { ensureSearchAttributes } from '../temporal/search-attributes';
import { startApi } from './server';

async function main(): Promise<void> {
  const config = loadConfig();
  const say = (line: string) => console.log(`[rampart-api] ${line}`);
  if (!config.TEMPORAL_ADDRESS) throw new Error('set TEMPORAL_ADDRESS to the Temporal frontend (host:port); `npm start` runs the API embedded with its own dev server');
  const connection = await Connection.connect(temporalConnectionOptions(config)!);
  // A cluster that lacks Rampart's search attributes would fail every release; add what is missing.
  await ensureSearchAttributes(connection, config.TEMPORAL_NAMESPACE);
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const api = await startApi({ config, client });
  if (api.settings.tokens.length === 0) say('warning: no API tokens configured (RAMPART_API_TOKENS or RAMPART_API_TOKENS_FILE): every API route answers 401');
  say(`listening on ${api.url} (docs ${api.url}/docs), Temporal ${config.TEMPORAL_ADDRESS}`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: finishing requests in flight`);
    await api.close();
    await connection.close();
    say('stopped');
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error) => {
  console.error(`[rampart-api] ${(error as Error).message ?? error}`);
  process.exit(1);
});
