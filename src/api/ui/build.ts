// `npm run build`: writes the dashboard bundle next to the compiled plugin, so a production image
// serves prebuilt files and needs neither esbuild nor the sources.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleDashboard } from './bundle';
import { PREBUILT_DIR_FROM_ROOT } from './plugin';

async function main(): Promise<void> {
  const assets = await bundleDashboard();
  const dir = join(__dirname, '..', '..', '..', PREBUILT_DIR_FROM_ROOT);
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(assets)) writeFileSync(join(dir, name), text);
  console.log(`dashboard bundle written to ${PREBUILT_DIR_FROM_ROOT}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
