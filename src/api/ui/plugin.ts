// The release dashboard under /ui/: one HTML page and its bundled script and stylesheet. They hold
// no data, so they are public; everything the page shows comes from the token routes of the API,
// called by the browser with the token the user signed in with.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { principalOf } from '../context';
import { errorResponses } from '../schemas';
import { bundleDashboard, type DashboardAssets } from './bundle';

export const UI_PREFIX = '/ui';

/** Where `npm run build` writes the bundle, relative to the repository root (dist/ mirrors src/). */
export const PREBUILT_DIR_FROM_ROOT = join('dist', 'src', 'api', 'ui', 'assets');
const PREBUILT_DIR = join(__dirname, 'assets');

/**
 * Self only, and no inline script or style: a script injected through a release field could not
 * run, and the page cannot send data anywhere but this API.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Rampart</title>
<link rel="stylesheet" href="${UI_PREFIX}/app.css">
<script type="module" src="${UI_PREFIX}/app.js"></script>
</head>
<body>
<div id="app"><noscript>The Rampart dashboard needs JavaScript.</noscript></div>
</body>
</html>
`;

async function loadAssets(): Promise<DashboardAssets> {
  const js = join(PREBUILT_DIR, 'app.js');
  const css = join(PREBUILT_DIR, 'app.css');
  if (existsSync(js) && existsSync(css)) return { 'app.js': readFileSync(js, 'utf8'), 'app.css': readFileSync(css, 'utf8') };
  return bundleDashboard();
}

export const whoamiSchema = z.object({ name: z.string(), role: z.string() }).describe('The caller: its token name and role.');

export const dashboardRoutes: FastifyPluginAsyncZod = async (app) => {
  const assets = await loadAssets();
  const publicRoute = { access: { kind: 'public' as const } };
  const send = (reply: FastifyReply, type: string, body: string) =>
    reply
      .header('content-security-policy', DASHBOARD_CSP)
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .type(type)
      .send(body);

  app.get('/v1/whoami', {
    config: { access: { kind: 'token', role: 'viewer' } },
    schema: { tags: ['operations'], summary: 'Who the token is: its name and role (the dashboard enables what the role allows).', security: [{ bearer: [] }], response: { 200: whoamiSchema, ...errorResponses } },
  }, async (request) => {
    const { name, role } = principalOf(request);
    return { name, role };
  });

  app.get(UI_PREFIX, { config: publicRoute, schema: { hide: true } }, async (_request, reply) => reply.redirect(`${UI_PREFIX}/`));
  app.get(`${UI_PREFIX}/`, { config: publicRoute, schema: { hide: true } }, async (_request, reply) => send(reply, 'text/html; charset=utf-8', PAGE));
  app.get(`${UI_PREFIX}/app.js`, { config: publicRoute, schema: { hide: true } }, async (_request, reply) =>
    send(reply, 'text/javascript; charset=utf-8', assets['app.js']),
  );
  app.get(`${UI_PREFIX}/app.css`, { config: publicRoute, schema: { hide: true } }, async (_request, reply) => send(reply, 'text/css; charset=utf-8', assets['app.css']));
};
