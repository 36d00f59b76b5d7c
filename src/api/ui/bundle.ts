// The dashboard's browser code and styles, bundled with esbuild from the project's own dependencies
// (Preact, htm, uPlot): the page loads nothing from outside this API.
import { join } from 'node:path';

export interface DashboardAssets {
  'app.js': string;
  'app.css': string;
}

export const CLIENT_DIR = join(__dirname, 'client');

export async function bundleDashboard(): Promise<DashboardAssets> {
  // Imported here only: a production image serves the prebuilt files and has no esbuild.
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: { app: join(CLIENT_DIR, 'main.ts'), style: join(CLIENT_DIR, 'style.css') },
    bundle: true,
    format: 'esm',
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    write: false,
    outdir: 'out',
    logLevel: 'silent',
  });
  const text = (name: string) => {
    const file = result.outputFiles.find((f) => f.path.endsWith(`/${name}`));
    if (!file) throw new Error(`the dashboard bundle has no ${name}`);
    return file.text;
  };
  // Two entry points so the stylesheet gets its own file; the script's own CSS (uPlot's) is imported by style.css.
  return { 'app.js': text('app.js'), 'app.css': text('style.css') };
}
