import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { renderApiLoadBalancer, renderCommittedFiles, renderComposeApiLoadBalancer, renderServerConfig, SERVER_CONFIG_ENV, TEMPORAL_SERVICES } from '../../src/cluster/config';
import { PROJECT_ROOT } from '../../src/paths';

// What compose mounts is what scripts/cluster.ts runs: both come from src/cluster/config.ts.

test('the committed configs under deploy/compose equal what the generator renders (npx tsx scripts/cluster.ts render)', () => {
  for (const [file, text] of Object.entries(renderCommittedFiles())) {
    assert.equal(readFileSync(join(PROJECT_ROOT, file), 'utf8'), text, `${file} differs from the generator's output: run npx tsx scripts/cluster.ts render`);
  }
  const compose = readFileSync(join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8');
  for (const file of Object.keys(renderCommittedFiles())) assert.ok(compose.includes(`./${file}:`), `docker-compose.yml does not mount ${file}`);
});

test('the server config template fills every setting from the environment, with no password default', () => {
  const template = renderServerConfig();
  assert.match(template, /^# enable-template$/m, 'the server fills in templates only when the file says so');
  const names = [...template.matchAll(/\{\{ env "([A-Z0-9_]+)"/g)].map((m) => m[1]!);
  for (const name of names) {
    if (name === 'POSTGRES_PASSWORD') continue;
    assert.ok(SERVER_CONFIG_ENV[name] !== undefined, `${name} has no default`);
  }
  assert.match(template, /password: \{\{ env "POSTGRES_PASSWORD" \| quote \}\}/);
  for (const service of TEMPORAL_SERVICES) assert.ok(names.includes(`TEMPORAL_${service.toUpperCase()}_GRPC_PORT`), `${service} has no port setting`);
  // With the template markers replaced by their defaults it is plain YAML with the four services.
  const filled = template.replace(/\{\{ env "([A-Z0-9_]+)"(?: \| default "([^"]*)")?(?: \| quote)? \}\}/g, (_, name: string, fallback?: string) => fallback ?? `"${name}"`);
  const config = parse(filled) as { services: Record<string, unknown>; persistence: { numHistoryShards: number } };
  assert.deepEqual(Object.keys(config.services).sort(), [...TEMPORAL_SERVICES].sort());
  assert.equal(config.persistence.numHistoryShards, 4);
});

test('the API load balancer for this machine and for compose share their rules and pass haproxy -c', { skip: existsSync('/usr/sbin/haproxy') ? false : 'haproxy not installed' }, () => {
  const local = renderApiLoadBalancer({
    apiBind: '127.0.0.1:18080',
    monitoringBind: '127.0.0.1:18404',
    backend: { kind: 'static', servers: [{ name: 'api-1', address: '127.0.0.1:18181' }, { name: 'api-2', address: '127.0.0.1:18182' }] },
  });
  const compose = renderComposeApiLoadBalancer();
  const section = (text: string, name: string) => text.slice(text.indexOf(name), text.indexOf('\n\n', text.indexOf(name)));
  assert.equal(section(local, 'defaults').trim(), section(compose, 'defaults').trim());
  assert.equal(section(local, 'frontend api').replace(/bind .*/, ''), section(compose, 'frontend api').replace(/bind .*/, ''));
  assert.match(local, /^ {2}server api-2 127\.0\.0\.1:18182$/m);
  const scratch = mkdtempSync(join(tmpdir(), 'rampart-api-lb-'));
  try {
    writeFileSync(join(scratch, 'api-lb.cfg'), local);
    const check = spawnSync('/usr/sbin/haproxy', ['-c', '-q', '-f', join(scratch, 'api-lb.cfg')], { encoding: 'utf8' });
    assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});
