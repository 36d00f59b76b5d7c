// The dashboard in a real headless Chromium (Debian's package, driven by playwright-core) against a
// real dev server, worker and API: sign-in, live list, the release page's evidence, commands that
// the API agrees with, a viewer's disabled buttons and refused forgery, and nothing without a token.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildApp } from '../../src/api/app';
import { listen } from '../../src/api/server';
import { DrillClient } from '../../src/temporal/drills';
import { sha, startRig, uniqueService, waitFor, type TestRig } from '../helpers/temporal';
import { call, heldSpec, releaseUrl, TEST_SETTINGS, TOKENS } from '../api/helpers';

// The functions given to page.evaluate run in the browser; these are the few of its globals they use.
declare const sessionStorage: { getItem(key: string): string | null };
declare const document: { documentElement: { scrollWidth: number; clientWidth: number } };

const CHROMIUM = '/usr/bin/chromium';
const IMAGES = join(__dirname, '..', '..', 'docs', 'images');
const skip = existsSync(CHROMIUM) ? false : `no ${CHROMIUM}: install Debian's chromium package (apt-get install chromium) to run the dashboard tests`;

let rig: TestRig;
let api: { url: string; close(): Promise<void> };
let browser: Browser;

async function status(releaseId: string): Promise<Record<string, unknown> & { state: string; pause: { actor: string; reason: string } | null }> {
  const answer = await call<never>(api.url, 'GET', releaseUrl(releaseId), { token: TOKENS.viewer.token });
  assert.equal(answer.status, 200);
  return answer.body;
}

/** A release on the simulated target with traffic enough for the analysis to decide, baking its canary step for `bake`. */
async function start(prefix: string, bake = '120s'): Promise<string> {
  const service = uniqueService(prefix);
  const spec = heldSpec(service, sha(service), { target: { type: 'simulated', trafficPerSecond: 2_000 } });
  (spec.strategy as { steps: { bake?: string }[] }).steps[0]!.bake = bake;
  const answer = await call<{ releaseId: string }>(api.url, 'POST', '/v1/releases', { token: TOKENS.operator.token, body: spec });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return answer.body.releaseId;
}

async function signIn(token: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (error) => assert.fail(`the page threw: ${error.message}`));
  await page.goto(`${api.url}/ui/`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('who').waitFor();
  return page;
}

describe('the release dashboard', { skip }, () => {
  before(async () => {
    rig = await startRig();
    // The drill routes need a drill client, which startApiRig's app goes without.
    const app = await buildApp({
      releases: rig.releases,
      drills: new DrillClient(rig.client),
      ping: async () => {
        await rig.client.workflowService.getSystemInfo({});
      },
      settings: TEST_SETTINGS,
    });
    api = await listen(app, { host: '127.0.0.1', port: 0, graceMs: 5_000 });
    browser = await chromium.launch({ executablePath: CHROMIUM });
    mkdirSync(IMAGES, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await api?.close();
    await rig?.close();
  });

  test('without a token only the sign-in page loads, and its policy allows nothing but this origin', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const dataCalls: string[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname.startsWith('/v1/')) dataCalls.push(request.url());
    });
    const answer = await page.goto(`${api.url}/ui/#/dora`);
    const csp = answer!.headers()['content-security-policy'] ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /connect-src 'self'(;|$)/);
    await page.getByLabel('API token').waitFor();
    assert.equal(await page.getByRole('navigation').count(), 0, 'no views before signing in');
    assert.deepEqual(dataCalls, [], 'no data route is called without a token');

    await page.getByLabel('API token').fill('not-a-token-at-all-0000');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'not valid' }).waitFor();
    assert.equal(await page.getByRole('navigation').count(), 0);
    // The data routes themselves refuse the browser without the header.
    const refused = await page.evaluate(async () => (await fetch('/v1/releases')).status);
    assert.equal(refused, 401);
    await context.close();
  });

  test('an operator sees a started release appear, its evidence, pauses it and aborts it', async () => {
    const page = await signIn(TOKENS.operator.token);
    await page.getByRole('heading', { name: 'Releases' }).waitFor();
    const releaseId = await start('ui-op');
    // No reload: the list polls.
    const row = page.locator(`tr[data-release-id="${releaseId}"]`);
    await row.waitFor({ timeout: 15_000 });

    await row.getByRole('link').click();
    await page.getByTestId('weight-chart').locator('canvas').waitFor();
    await waitFor('analysis runs on the page', async () => (await page.getByTestId('analysis-run').count()) > 0, 30_000, 200);
    await page.getByTestId('timeline').locator('[aria-current="step"]').filter({ hasText: 'canary' }).waitFor();
    await waitFor('the weight at 10%', async () => (await page.locator('.facts').textContent())?.includes('10%'), 30_000, 200);

    await page.getByRole('button', { name: 'Pause' }).click();
    await page.getByLabel(/Reason for pause/).fill('looking at the latency graph');
    await page.getByRole('button', { name: 'Send pause' }).click();
    await page.getByTestId('gate').filter({ hasText: 'looking at the latency graph' }).waitFor();
    const paused = await status(releaseId);
    assert.equal(paused.state, 'paused');
    assert.equal(paused.pause?.actor, TOKENS.operator.name);
    assert.equal(paused.pause?.reason, 'looking at the latency graph');
    // The state now refuses a second pause: the button says why.
    const pause = page.getByRole('button', { name: 'Pause' });
    assert.equal(await pause.isDisabled(), true);
    assert.match((await pause.getAttribute('title')) ?? '', /already paused/);

    await page.screenshot({ path: join(IMAGES, 'dashboard-release.png'), fullPage: true });

    await page.getByRole('button', { name: 'Abort' }).click();
    await page.getByLabel(/Reason for abort/).fill('the new version leaks memory');
    await page.getByRole('button', { name: 'Send abort' }).click();
    await page.getByTestId('outcome').filter({ hasText: 'aborted' }).waitFor({ timeout: 30_000 });
    await page.getByTestId('outcome').filter({ hasText: 'the new version leaks memory' }).waitFor();
    const aborted = await status(releaseId);
    assert.equal(aborted.state, 'aborted');
    assert.equal((await page.getByTestId('release-state').textContent())?.trim(), 'aborted');
    // Finished: every command is refused by the state, and the buttons say so.
    for (const name of ['Pause', 'Resume', 'Promote', 'Approve', 'Abort']) assert.equal(await page.getByRole('button', { name }).isDisabled(), true, name);
    await page.context().close();
  });

  test('a viewer sees the buttons disabled, and a command forged from the page is refused by the server', async () => {
    const releaseId = await start('ui-viewer');
    const page = await signIn(TOKENS.viewer.token);
    await page.goto(`${api.url}/ui/#/release/${encodeURIComponent(releaseId)}`);
    await page.getByTestId('weight-chart').waitFor();
    for (const name of ['Pause', 'Resume', 'Promote', 'Approve', 'Abort']) {
      const button = page.getByRole('button', { name });
      assert.equal(await button.isDisabled(), true, name);
      assert.match((await button.getAttribute('title')) ?? '', /needs the operator role/, name);
    }
    const forged = await page.evaluate(async (id) => {
      const response = await fetch(`/v1/releases/${encodeURIComponent(id)}/abort`, {
        method: 'POST',
        headers: { authorization: `Bearer ${sessionStorage.getItem('rampart.token') ?? ''}`, 'content-type': 'application/json' },
        body: JSON.stringify({ reason: 'forged from the page' }),
      });
      return { status: response.status, body: (await response.json()) as { detail: string } };
    }, releaseId);
    assert.equal(forged.status, 403);
    assert.match(forged.body.detail, /viewer role/);
    assert.equal((await status(releaseId)).state, 'running');
    await call(api.url, 'POST', `${releaseUrl(releaseId)}/abort`, { token: TOKENS.operator.token, body: { reason: 'test over' } });
    await page.context().close();
  });

  test('a refused command shows the API’s reason', async () => {
    const releaseId = await start('ui-refused');
    const page = await signIn(TOKENS.operator.token);
    await page.goto(`${api.url}/ui/#/release/${encodeURIComponent(releaseId)}`);
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.getByLabel(/Reason for pause/).fill('a second look');
    // Someone else pauses it first: the page has not polled yet, the server refuses.
    await call(api.url, 'POST', `${releaseUrl(releaseId)}/pause`, { token: TOKENS.admin.token, body: { reason: 'first' } });
    await page.getByRole('button', { name: 'Send pause' }).click();
    await page.getByRole('alert').filter({ hasText: /The API refused pause: .*the release is already paused \(operator: first\)/ }).waitFor();
    await call(api.url, 'POST', `${releaseUrl(releaseId)}/abort`, { token: TOKENS.operator.token, body: { reason: 'test over' } });
    await page.context().close();
  });

  test('the services and DORA pages show their tables and charts, and an operator steers a drill schedule', async () => {
    // A deployment and a drill, so the keys and the drill chart have something to show.
    const promoted = await start('ui-dora', '1s');
    const drilled = uniqueService('ui-drill');
    const drill = await call(api.url, 'POST', '/v1/drills', {
      token: TOKENS.operator.token,
      body: {
        service: drilled,
        spec: { target: { type: 'simulated' }, strategy: { steps: [{ name: 'canary', phase: 'canary', weight: 20, bake: '2s' }, { name: 'full', phase: 'full', weight: 100 }] }, analysis: { interval: '200ms' } },
        fault: { errorRate: 0.5 },
        every: '1h',
      },
    });
    assert.equal(drill.status, 201, JSON.stringify(drill.body));
    assert.equal((await call(api.url, 'POST', `/v1/drills/${drilled}/production/trigger`, { token: TOKENS.operator.token })).status, 202);
    await waitFor('the release promoted', async () => (await status(promoted)).state === 'promoted', 60_000, 200);

    const page = await signIn(TOKENS.operator.token);
    await page.getByRole('link', { name: 'Services' }).click();
    await page.getByTestId('services').getByRole('rowheader', { name: promoted.split('/')[1] }).waitFor();
    await page.getByTestId('services-chart').locator('canvas').waitFor();

    await page.getByRole('link', { name: 'Drills and DORA' }).click();
    await page.getByTestId('dora').getByRole('rowheader', { name: `${promoted.split('/')[1]}/production` }).waitFor({ timeout: 30_000 });
    await page.getByTestId('dora-chart').locator('canvas').waitFor();
    const schedule = page.getByTestId('drill-schedules').getByRole('row').filter({ hasText: drilled });
    page.once('dialog', (dialog) => void dialog.accept('release freeze'));
    await schedule.getByRole('button', { name: 'pause' }).click();
    await schedule.getByText(`paused by ${TOKENS.operator.name}: release freeze`).waitFor();
    await page.getByTestId('drill-chart').locator('canvas').waitFor({ timeout: 60_000 });
    await page.screenshot({ path: join(IMAGES, 'dashboard-dora.png'), fullPage: true });
    await call(api.url, 'DELETE', `/v1/drills/${drilled}/production`, { token: TOKENS.admin.token });

    // A narrow window: the page reflows rather than scrolling sideways.
    await page.setViewportSize({ width: 380, height: 800 });
    // Charts resize on their own observer after the viewport changes: poll for the reflow with a deadline.
    const overflowOf = () => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    await page.waitForFunction(() => document.documentElement.scrollWidth - document.documentElement.clientWidth <= 1, undefined, { timeout: 10_000 }).catch(() => undefined);
    const overflow = await overflowOf();
    assert.ok(overflow <= 1, `the page is ${overflow}px wider than a narrow window`);
    await page.context().close();
  });
});
