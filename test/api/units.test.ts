// The API's pure parts, without a server: tokens, signatures, delivery memory, alert ordering,
// registered specs, settings from the environment, and the CLI's release names.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { buildApp } from '../../src/api/app';
import { bearerToken, parseTokens, roleAtLeast, signBody, TokenConfigError, TokenStore, verifySignature } from '../../src/api/auth';
import type { ReleaseOperations } from '../../src/api/context';
import { apiSettingsFromConfig } from '../../src/api/settings';
import { SpecRegistry } from '../../src/api/spec-registry';
import { AlertTracker } from '../../src/engine/alerts';
import { DeliveryCache } from '../../src/api/webhooks/delivery-cache';
import { releaseIdFrom } from '../../src/cli/main';
import { ConfigError, loadConfig } from '../../src/config';

describe('tokens', () => {
  test('entries are name:role:token, separated by commas or lines, with comments', () => {
    const tokens = parseTokens('ada:admin:aaaaaaaaaaaaaaaaaaaa, olga:operator:oooooooooooooooo:with:colons\n# a comment\nvic:viewer:vvvvvvvvvvvvvvvv # trailing', 'env');
    assert.deepEqual(
      tokens.map((t) => [t.name, t.role, t.token]),
      [
        ['ada', 'admin', 'aaaaaaaaaaaaaaaaaaaa'],
        ['olga', 'operator', 'oooooooooooooooo:with:colons'],
        ['vic', 'viewer', 'vvvvvvvvvvvvvvvv'],
      ],
    );
  });

  const bad: [string, RegExp][] = [
    ['ada:admin', /name:role:token/],
    ['ada:root:aaaaaaaaaaaaaaaa', /role of "ada" is "root"/],
    ['ada:admin:short', /shorter than 16/],
    ['ada:admin:aaaaaaaaaaaaaaaa,ada:viewer:bbbbbbbbbbbbbbbb', /used twice/],
    ['ada:admin:aaaaaaaaaaaaaaaa,bob:viewer:aaaaaaaaaaaaaaaa', /also another name's token/],
    ['bad name:admin:aaaaaaaaaaaaaaaa', /token name/],
  ];
  for (const [text, message] of bad) {
    test(`"${text.slice(0, 30)}…" is refused without echoing the secret`, () => {
      assert.throws(
        () => parseTokens(text, 'RAMPART_API_TOKENS'),
        (error: Error) => error instanceof TokenConfigError && message.test(error.message) && !/bbbbbbbbbbbbbbbb/.test(error.message),
      );
    });
  }

  test('lookups find the token by value and roles are ordered viewer < operator < admin', () => {
    const store = new TokenStore(parseTokens('ada:admin:aaaaaaaaaaaaaaaa,vic:viewer:vvvvvvvvvvvvvvvv', 'env'));
    assert.deepEqual(store.find('vvvvvvvvvvvvvvvv'), { name: 'vic', role: 'viewer' });
    assert.equal(store.find('vvvvvvvvvvvvvvv'), null);
    assert.equal(store.find(''), null);
    assert.ok(roleAtLeast('admin', 'operator') && roleAtLeast('operator', 'operator') && !roleAtLeast('viewer', 'operator'));
    assert.equal(bearerToken('Bearer abc'), 'abc');
    assert.equal(bearerToken('bearer   abc  '), 'abc');
    assert.equal(bearerToken('Basic abc'), null);
    assert.equal(bearerToken('Bearer a b'), null);
  });
});

describe('signatures', () => {
  const KNOWN_HMAC = '705b93bb7405367c0f37c50246a253041af16a717dc115f306c37c512d47b86a';
  const body = Buffer.from('{"service":"shop"}');
  test('GitHub form: sha256=<hex HMAC of the raw body>', () => {
    // printf '{"service":"shop"}' | openssl dgst -sha256 -hmac secret
    assert.equal(signBody('secret', body), `sha256=${KNOWN_HMAC}`);
    assert.deepEqual(verifySignature('secret', body, signBody('secret', body)), { ok: true });
    assert.deepEqual(verifySignature('secret', body, signBody('secret', body).toUpperCase().replace('SHA256=', 'sha256=')), { ok: true });
  });
  const refused: [string | undefined, RegExp][] = [
    [undefined, /missing/],
    ['', /missing/],
    ['sha1=abc', /sha256=/],
    ['sha256=zz', /sha256=/],
    [signBody('other', body), /does not match/],
    [signBody('secret', Buffer.from('{"service":"shop"} ')), /does not match/],
  ];
  for (const [header, reason] of refused) {
    test(`refuses ${header === undefined ? 'no header' : `"${header.slice(0, 20)}"`}`, () => {
      const verdict = verifySignature('secret', body, header);
      assert.equal(verdict.ok, false);
      assert.match((verdict as { reason: string }).reason, reason);
    });
  }
});

describe('delivery cache', () => {
  test('a repeated id gets the first answer; concurrent copies share one attempt; failures are forgotten', async () => {
    const cache = new DeliveryCache<number>(2);
    let attempts = 0;
    const attempt = async () => ++attempts;
    const [a, b] = await Promise.all([cache.run('x', attempt), cache.run('x', attempt)]);
    assert.deepEqual([a, b], [{ value: 1, replayed: false }, { value: 1, replayed: true }]);
    await assert.rejects(cache.run('y', () => Promise.reject(new Error('temporal down'))));
    assert.deepEqual(await cache.run('y', attempt), { value: 2, replayed: false }, 'a failed delivery is tried again');
    await cache.run('z', attempt);
    assert.equal(cache.size, 2);
    assert.deepEqual(await cache.run('x', attempt), { value: 4, replayed: false }, 'the oldest id was forgotten');
    assert.deepEqual(await cache.run(undefined, attempt), { value: 5, replayed: false }, 'no id, no memory');
  });
});

describe('alert tracker', () => {
  const at = (iso: string) => Date.parse(iso);
  const firing = (startsAt: string) => ({ status: 'firing' as const, startsAt: at(startsAt), endsAt: Infinity, service: 'shop', environment: undefined });
  const resolved = (startsAt: string, endsAt: string) => ({ status: 'resolved' as const, startsAt: at(startsAt), endsAt: at(endsAt), service: 'shop', environment: undefined });

  test('a firing notice older than the resolution already seen is late; a new episode is not', () => {
    const tracker = new AlertTracker();
    assert.equal(tracker.observe('a', resolved('2026-01-01T10:00:00Z', '2026-01-01T10:05:00Z')), true);
    assert.equal(tracker.observe('a', firing('2026-01-01T10:00:00Z')), false);
    assert.equal(tracker.observe('a', firing('2026-01-01T11:00:00Z')), true, 'fired again after it resolved');
    assert.equal(tracker.observe('a', resolved('2026-01-01T10:00:00Z', '2026-01-01T10:05:00Z')), false, 'the resolution of the older episode');
  });

  test('knows which other alerts of a service still fire', () => {
    const tracker = new AlertTracker();
    tracker.observe('a', firing('2026-01-01T10:00:00Z'));
    tracker.observe('b', { ...firing('2026-01-01T10:00:00Z'), environment: 'staging' });
    tracker.observe('c', { ...firing('2026-01-01T10:00:00Z'), service: 'other' });
    assert.deepEqual(tracker.firingFor('shop', 'production', 'x'), ['a']);
    assert.deepEqual(tracker.firingFor('shop', 'staging', 'a'), ['b']);
  });
});

describe('registered specs', () => {
  function folder(files: Record<string, string>): string {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-specs-'));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    return dir;
  }

  test('the service defaults to the file name; GitHub bindings are found by repository', () => {
    const registry = SpecRegistry.load(
      folder({
        'shop.yaml': 'github: { repository: Acme/Shop, workflows: [build], branches: [main] }\nspec: { environment: staging }\n',
        'cart.json': '{"spec": {"service": "cart", "alerts": {"onFiring": "abort"}}}',
        'notes.txt': 'ignored',
      }),
    );
    assert.deepEqual(registry.list().map((e) => [e.service, e.environment, e.file]), [
      ['cart', 'production', 'cart.json'],
      ['shop', 'staging', 'shop.yaml'],
    ]);
    assert.equal(registry.forGitHub('acme/shop').length, 1);
    assert.equal(registry.forGitHub('acme/cart').length, 0);
    assert.equal((registry.find('cart') as { alerts: { onFiring: string } }).alerts.onFiring, 'abort');
    const spec = SpecRegistry.specFor(registry.find('shop', 'staging') as never, { version: 'abcdef1', requestedBy: 'ci' });
    assert.deepEqual([spec.service, spec.environment, spec.version, spec.strategy.steps.length], ['shop', 'staging', 'abcdef1', 6]);
  });

  test('a bad file stops the start, naming the file and the field', () => {
    const dir = folder({
      'a.yaml': 'spec: { version: abcdef1 }\n',
      'b.yaml': 'spec: { strategy: { steps: [] } }\n',
      'c.yaml': 'github: { repository: nope }\nspec: {}\n',
      'd.yaml': 'spec: {}\nextra: 1\n',
      'e.yaml': 'spec: { service: a }\n',
    });
    assert.throws(
      () => SpecRegistry.load(dir),
      (error: Error) =>
        error instanceof ConfigError &&
        /a\.yaml: spec\.version/.test(error.message) &&
        /b\.yaml: spec\.strategy\.steps/.test(error.message) &&
        /c\.yaml: github\.repository/.test(error.message) &&
        /d\.yaml: extra/.test(error.message) &&
        !error.message.includes('e.yaml'),
    );
    assert.throws(() => SpecRegistry.load(join(dir, 'missing')), /RAMPART_SPECS_DIR/);
  });
});

describe('settings', () => {
  test('secrets come from the environment or from files, never both', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-secrets-'));
    writeFileSync(join(dir, 'tokens'), '# ops\nada:admin:aaaaaaaaaaaaaaaa\n');
    writeFileSync(join(dir, 'hook'), 'from-a-file\n');
    const settings = apiSettingsFromConfig(
      loadConfig({
        RAMPART_API_TOKENS: 'vic:viewer:vvvvvvvvvvvvvvvv',
        RAMPART_API_TOKENS_FILE: join(dir, 'tokens'),
        RAMPART_WEBHOOK_SECRET_FILE: join(dir, 'hook'),
        RAMPART_ALERTMANAGER_TOKEN: 'am',
        RAMPART_API_RATE_WINDOW: '30s',
        RAMPART_API_COMMAND_WAIT: '2m',
      }),
    );
    assert.deepEqual(settings.tokens.map((t) => t.name), ['vic', 'ada']);
    assert.equal(settings.webhookSecret, 'from-a-file');
    assert.equal(settings.alertmanagerToken, 'am');
    assert.deepEqual([settings.rateLimit.windowMs, settings.commandWaitMs], [30_000, 120_000]);
    assert.throws(() => apiSettingsFromConfig(loadConfig({ RAMPART_WEBHOOK_SECRET: 'a', RAMPART_WEBHOOK_SECRET_FILE: join(dir, 'hook') })), /not both/);
    assert.throws(() => apiSettingsFromConfig(loadConfig({ RAMPART_API_TOKENS_FILE: join(dir, 'nope') })), /ENOENT/);
    assert.throws(() => apiSettingsFromConfig(loadConfig({ RAMPART_API_TOKENS: 'ada:admin:x' })), (error: Error) => error instanceof ConfigError && !/ada:admin:x/.test(error.message));
  });
});

describe('CLI release names', () => {
  test('either release/<service>/<environment>/<version> or <service>/<environment>/<version>; versions may hold slashes', () => {
    assert.equal(releaseIdFrom('shop/production/abcdef1'), 'release/shop/production/abcdef1');
    assert.equal(releaseIdFrom('release/shop/production/abcdef1'), 'release/shop/production/abcdef1');
    assert.equal(releaseIdFrom('shop/production/reg.io/app@sha256:ab'), 'release/shop/production/reg.io/app@sha256:ab');
    for (const bad of ['shop', 'shop/production', 'shop/production/', '/production/abc', 'release/shop']) assert.throws(() => releaseIdFrom(bad), /not a release/);
  });
});

describe('app without Temporal (stand-in release client)', () => {
  const token = { name: 'olga', role: 'operator' as const, token: 'operator-test-token-0123456789' };
  async function appWith(releases: Partial<ReleaseOperations>) {
    return buildApp({ releases: releases as ReleaseOperations, ping: async () => {}, settings: { tokens: [token], rateLimit: { max: 0, windowMs: 1 } } });
  }
  const headers = { authorization: `Bearer ${token.token}` };

  test('a status that no longer matches the response schema (an older workflow) is still shown', async () => {
    const app = await appWith({ status: async (releaseId: string) => ({ releaseId, state: 'running' }) as never });
    const answer = await app.inject({ url: '/v1/releases/shop/production/abcdef1', headers });
    assert.equal(answer.statusCode, 200);
    assert.deepEqual(answer.json(), { releaseId: 'release/shop/production/abcdef1', state: 'running' });
    await app.close();
  });

  test('Temporal unreachable is 503 with Retry-After; any other failure is a 500 that says nothing of its cause', async () => {
    const unavailable = Object.assign(new Error('14 UNAVAILABLE: connection refused'), { name: 'ServiceError', code: 14, details: 'refused' });
    const app = await appWith({
      list: async () => Promise.reject(unavailable),
      status: async () => Promise.reject(new Error('secret internals')),
    });
    const down = await app.inject({ url: '/v1/releases', headers });
    assert.equal(down.statusCode, 503);
    assert.equal(down.headers['retry-after'], '5');
    const broken = await app.inject({ url: '/v1/releases/shop/production/abcdef1', headers });
    assert.equal(broken.statusCode, 500);
    assert.match(String(broken.headers['content-type']), /problem\+json/);
    assert.doesNotMatch(broken.body, /secret internals/);
    await app.close();
  });
});
