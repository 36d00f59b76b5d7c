import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { configSchema } from '../../src/config';
import { PROJECT_ROOT } from '../../src/paths';
import { SEARCH_ATTRIBUTES } from '../../workflows/definitions';

/*
 * The compose file is checked by compose-go, the library Docker Compose v2 parses with: interpolation,
 * the compose-spec schema and the consistency checks, offline and without a Docker engine. The binary
 * is built by test/topology/install-compose-validator.sh (CI runs it); only a machine without it skips,
 * and CI never does.
 */

const COMPOSE_FILE = join(PROJECT_ROOT, 'docker-compose.yml');
const ENV_EXAMPLE = join(PROJECT_ROOT, '.env.example');
const DOCKERFILE = join(PROJECT_ROOT, 'Dockerfile');
const VALIDATOR = process.env.RAMPART_COMPOSE_VALIDATOR ?? join(PROJECT_ROOT, '.tools', 'compose-validator', 'compose-validator');
const INSTALL_HINT = 'bash test/topology/install-compose-validator.sh';

/** Values the required secrets get in these tests, so the resolved model shows where each secret went. */
const SECRETS: Record<string, string> = {
  POSTGRES_PASSWORD: 'sentinel-postgres-password',
  RAMPART_API_TOKENS: 'ci:operator:sentinel-api-token',
  RAMPART_WEBHOOK_SECRET: 'sentinel-webhook-secret',
  RAMPART_ALERTMANAGER_TOKEN: 'sentinel-alertmanager-token',
};

interface Healthcheck {
  test?: string[];
  disable?: boolean;
}
interface Service {
  image?: string;
  build?: unknown;
  command?: string[] | null;
  restart?: string;
  container_name?: string;
  environment?: Record<string, string | null>;
  healthcheck?: Healthcheck;
  depends_on?: Record<string, { condition: string }>;
  deploy?: { replicas?: number };
  ports?: unknown[];
  volumes?: { type: string; source?: string; target: string }[];
  secrets?: { source: string; target?: string }[];
}
interface Project {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  secrets?: Record<string, { environment?: string; file?: string }>;
}

function validatorMissing(): string | false {
  if (existsSync(VALIDATOR)) return false;
  const message = `compose validator not built (${VALIDATOR}): run ${INSTALL_HINT}`;
  // CI installs it, so there a missing validator is a failure, never a skip.
  if (process.env.CI) throw new Error(message);
  return message;
}

/** Runs compose-go on a file, with only PATH and the given variables in the environment (never the developer's). */
function validate(file: string, env: Record<string, string>, envFiles: string[] = [ENV_EXAMPLE]) {
  const args = ['-f', file, '-project-directory', PROJECT_ROOT, ...envFiles.flatMap((f) => ['-env-file', f])];
  const run = spawnSync(VALIDATOR, args, { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 30_000 });
  if (run.error) throw run.error;
  return { ok: run.status === 0, stdout: run.stdout, stderr: run.stderr };
}

function toolMissing(name: string, path: string): string | false {
  if (existsSync(path)) return false;
  const message = `${name} not installed (${path}); .ci/run installs it`;
  if (process.env.CI) throw new Error(message);
  return message;
}

function run(command: string, args: string[]): { ok: boolean; output: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 30_000 });
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` };
}

const composeText = readFileSync(COMPOSE_FILE, 'utf8');
const missing = validatorMissing();
let project: Project;
let scratch: string;

before(() => {
  scratch = mkdtempSync(join(tmpdir(), 'rampart-compose-'));
  if (missing) return;
  const result = validate(COMPOSE_FILE, SECRETS);
  assert.ok(result.ok, `compose-go rejected docker-compose.yml:\n${result.stderr}`);
  project = JSON.parse(result.stdout) as Project;
});

after(() => rmSync(scratch, { recursive: true, force: true }));

/** Services that run once and exit: some other service waits for them to complete successfully. */
/** A long token mixing letters and digits that is neither a path nor words joined by - or _. */
function randomLooking(word: string): boolean {
  if (word.includes('/') && !/^[A-Za-z0-9+]{20,}/.test(word)) return false;
  if (/^[A-Za-z]+(?:[_-][A-Za-z0-9]+)*$/.test(word)) return false;
  return /[0-9]/.test(word) && /[A-Za-z]/.test(word);
}

function oneShots(p: Project): Set<string> {
  const names = new Set<string>();
  for (const service of Object.values(p.services)) {
    for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
      if (condition === 'service_completed_successfully') names.add(dependency);
    }
  }
  return names;
}

describe('docker-compose.yml, parsed by compose-go', { skip: missing }, () => {
  test('validates offline against the compose specification, with .env.example and the required secrets set', () => {
    assert.ok(Object.keys(project.services).length >= 12, `services: ${Object.keys(project.services).join(', ')}`);
    for (const name of ['postgres', 'temporal-schema', 'temporal', 'temporal-namespace', 'temporal-ui', 'api', 'api-lb', 'worker', 'router', 'demo-stable', 'demo-canary', 'prometheus', 'alertmanager']) {
      assert.ok(project.services[name], `service ${name} is missing`);
    }
  });

  test('is a real parser: an unknown key, a bad condition and an undefined dependency are each refused', () => {
    const broken = [
      { edit: (t: string) => t.replace('    restart: "no"', '    restrat: "no"'), expect: /restrat/ },
      { edit: (t: string) => t.replace('condition: service_completed_successfully', 'condition: service_finished'), expect: /condition/ },
      { edit: (t: string) => t.replace(/^( +)temporal-schema:$/m, '$1temporal-schemaa:'), expect: /undefined service "temporal-schemaa"/ },
      { edit: (t: string) => t.replace('- rampart-data:/var/lib/rampart', '- rampart-dat:/var/lib/rampart'), expect: /undefined volume rampart-dat/ },
    ];
    broken.forEach(({ edit, expect }, i) => {
      const text = edit(composeText);
      assert.notEqual(text, composeText, `edit ${i} changed nothing`);
      const file = join(scratch, `broken-${i}.yml`);
      writeFileSync(file, text);
      const result = validate(file, SECRETS);
      assert.equal(result.ok, false, `edit ${i} was accepted`);
      assert.match(result.stderr, expect);
    });
  });

  test('refuses to start without each required secret, naming the variable', () => {
    const result = validate(COMPOSE_FILE, {});
    assert.equal(result.ok, false, 'the file validated with every secret empty');
    for (const name of Object.keys(SECRETS)) assert.match(result.stderr, new RegExp(`required variable ${name} is missing a value`));
  });

  test('pins every image to an exact version tag (no latest, no bare name), and the Dockerfile base too', () => {
    const exact = /^[a-z0-9][a-z0-9._/-]*:(v?\d+\.\d+[A-Za-z0-9._-]*)(@sha256:[a-f0-9]{64})?$/;
    for (const [name, service] of Object.entries(project.services)) {
      assert.ok(service.image, `${name} has no image`);
      assert.match(service.image, exact, `${name}: image ${service.image} is not pinned to an exact version`);
      assert.doesNotMatch(service.image, /:latest\b/, `${name}: ${service.image}`);
    }
    const version = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    for (const name of ['api', 'worker', 'demo-stable', 'demo-canary']) {
      assert.equal(project.services[name]!.image, `rampart:${version}`, `${name} runs the image built from this checkout`);
    }

    const dockerfile = readFileSync(DOCKERFILE, 'utf8');
    const args = Object.fromEntries([...dockerfile.matchAll(/^ARG (\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
    const bases = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]!.replace(/^\$\{(\w+)\}$/, (_, arg: string) => args[arg] ?? arg));
    assert.ok(bases.length >= 2, 'the Dockerfile is multi-stage');
    for (const base of bases) assert.match(base, exact, `Dockerfile FROM ${base} is not pinned`);
  });

  test('gives every long-running service a health check, and one-shot jobs restart "no"', () => {
    const jobs = oneShots(project);
    assert.deepEqual([...jobs].sort(), ['temporal-namespace', 'temporal-schema']);
    for (const [name, service] of Object.entries(project.services)) {
      if (jobs.has(name)) {
        assert.equal(service.restart, 'no', `${name} runs once`);
        continue;
      }
      const check = service.healthcheck;
      assert.ok(check && !check.disable && check.test && check.test.length > 0 && check.test[0] !== 'NONE', `${name} has no health check`);
      assert.equal(service.restart, 'unless-stopped', `${name} restarts`);
    }
  });

  test('orders start-up with conditions: schema before Temporal, namespace before Rampart', () => {
    for (const [name, service] of Object.entries(project.services)) {
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        assert.notEqual(condition, 'service_started', `${name} -> ${dependency} waits for nothing`);
      }
    }
    const on = (name: string) => Object.fromEntries(Object.entries(project.services[name]!.depends_on ?? {}).map(([k, v]) => [k, v.condition]));
    assert.deepEqual(on('temporal-schema'), { postgres: 'service_healthy' });
    assert.deepEqual(on('temporal'), { 'temporal-schema': 'service_completed_successfully' });
    assert.deepEqual(on('temporal-namespace'), { temporal: 'service_healthy' });
    assert.deepEqual(on('api'), { 'temporal-namespace': 'service_completed_successfully' });
    assert.deepEqual(on('worker'), { 'temporal-namespace': 'service_completed_successfully' });
    assert.deepEqual(on('api-lb'), { api: 'service_healthy' });
  });

  test('runs two API replicas behind HAProxy and lets workers scale with --scale', () => {
    const { api, worker } = project.services as Record<string, Service>;
    assert.equal(api!.deploy?.replicas, 2);
    assert.ok((worker!.deploy?.replicas ?? 0) >= 1);
    for (const [name, service] of [['api', api!], ['worker', worker!]] as const) {
      assert.equal(service.container_name, undefined, `${name} has a fixed container name, so it cannot scale`);
      assert.deepEqual(service.ports ?? [], [], `${name} publishes a host port, so a second replica would collide`);
    }
    const lb = readFileSync(join(PROJECT_ROOT, 'deploy/compose/haproxy/api-lb.cfg'), 'utf8');
    const slots = /^\s*server-template api (\d+) api:8080/m.exec(lb);
    assert.ok(slots && Number(slots[1]) >= 2, 'api-lb has a slot per replica');
    assert.equal(project.services['api-lb']!.volumes?.find((v) => v.target === '/usr/local/etc/haproxy/haproxy.cfg')?.source, join(PROJECT_ROOT, 'deploy/compose/haproxy/api-lb.cfg'));
  });

  test('holds no secret: every secret-named variable comes from the environment, and no literal looks like one', () => {
    const sentinels = new Set(Object.values(SECRETS));
    for (const [name, service] of Object.entries(project.services)) {
      for (const [key, value] of Object.entries(service.environment ?? {})) {
        if (/PASSWORD|PWD|SECRET|TOKEN|API_KEY/.test(key) && !key.endsWith('_FILE')) {
          assert.ok(value !== null && sentinels.has(value), `${name}.${key} is not taken from the environment`);
        }
      }
    }
    assert.equal(project.secrets?.alertmanager_token?.environment, 'RAMPART_ALERTMANAGER_TOKEN');

    const files = [COMPOSE_FILE, ENV_EXAMPLE, DOCKERFILE, ...['alertmanager/alertmanager.yml', 'prometheus/prometheus.yml', 'haproxy/api-lb.cfg', 'haproxy/router.cfg', 'temporal/setup-schema.sh', 'temporal/create-namespace.sh', 'temporal/dynamicconfig.yaml', 'temporal/server.yaml'].map((f) => join(PROJECT_ROOT, 'deploy/compose', f))];
    const patterns = [
      /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
      /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/,
      /\bgh[pousr]_[A-Za-z0-9]{30,}\b/,
      /\bxox[abpr]-[A-Za-z0-9-]{10,}/,
      /\b(?:password|passwd|pwd|secret|token)\w*["']?\s*[:=]\s*["']?(?!\$\{|["']?\s*$|\/run\/secrets\/|<)[^\s"'#]{4,}/i,
    ];
    for (const file of files) {
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (/^\s*#/.test(line)) return;
          for (const pattern of patterns) assert.doesNotMatch(line, pattern, `${file}:${i + 1} looks like a secret: ${line.trim()}`);
          for (const word of line.match(/(?<!sha256:)[A-Za-z0-9+/_-]{32,}={0,2}/g) ?? []) {
            assert.ok(!randomLooking(word), `${file}:${i + 1} has a random-looking literal: ${word}`);
          }
        });
    }
    const example = Object.fromEntries([...readFileSync(ENV_EXAMPLE, 'utf8').matchAll(/^([A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
    for (const name of Object.keys(SECRETS)) assert.equal(example[name], '', `.env.example must leave ${name} empty`);
  });

  test('documents in .env.example every variable the compose file reads, and no other', () => {
    const code = composeText
      .split('\n')
      .filter((line) => !/^\s*#/.test(line))
      .join('\n');
    const used = new Set([...code.matchAll(/\$\{([A-Z0-9_]+)[:?-]/g)].map((m) => m[1]!));
    const example = new Set([...readFileSync(ENV_EXAMPLE, 'utf8').matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]!));
    assert.deepEqual([...used].filter((v) => !example.has(v)), [], 'used in docker-compose.yml, missing from .env.example');
    assert.deepEqual([...example].filter((v) => !used.has(v)), [], 'in .env.example, unused by docker-compose.yml');
  });

  test("gives Rampart's processes only configuration names that src/config.ts knows", () => {
    const known = new Set([...Object.keys(configSchema.shape), 'RAMPART_ROLE']);
    for (const name of ['api', 'worker']) {
      for (const key of Object.keys(project.services[name]!.environment ?? {})) {
        assert.ok(known.has(key), `${name}: ${key} is not a Rampart setting (src/config.ts)`);
      }
    }
    for (const name of ['demo-stable', 'demo-canary']) {
      const env = project.services[name]!.environment ?? {};
      for (const key of ['PORT', 'RAMPART_VERSION', 'DEMO_ERROR_RATE', 'DEMO_LATENCY_MS']) assert.ok(env[key] !== undefined, `${name} sets ${key}`);
    }
  });

  test('runs entry points that the build produces', () => {
    for (const [name, service] of Object.entries(project.services)) {
      if (!service.build) continue;
      const script = service.command?.find((arg) => arg.startsWith('dist/'));
      assert.ok(script, `${name} runs no dist/ entry point`);
      const source = script.replace(/^dist\//, '').replace(/\.js$/, '.ts');
      assert.ok(existsSync(join(PROJECT_ROOT, source)), `${name} runs ${script}, but ${source} does not exist`);
      assert.match(readFileSync(join(PROJECT_ROOT, source), 'utf8'), /^main\(\)|require\.main === module/m, `${source} is a module, not an entry point`);
    }
  });

  test('mounts only files that exist', () => {
    for (const [name, service] of Object.entries(project.services)) {
      for (const volume of service.volumes ?? []) {
        if (volume.type === 'bind') assert.ok(volume.source && existsSync(volume.source), `${name} mounts ${volume.source}, which does not exist`);
        else assert.ok(volume.source && project.volumes?.[volume.source] !== undefined, `${name}: volume ${volume.source} is not declared`);
      }
    }
  });
});

describe('the configuration files compose mounts', () => {
  test('both HAProxy configurations pass haproxy -c', { skip: toolMissing('haproxy', '/usr/sbin/haproxy') }, () => {
    const maps = join(PROJECT_ROOT, 'deploy/compose/haproxy/maps');
    for (const name of ['api-lb.cfg', 'router.cfg']) {
      // The router reads its map from where compose mounts it; point it at the checkout for the check.
      const file = join(scratch, name);
      writeFileSync(file, readFileSync(join(PROJECT_ROOT, 'deploy/compose/haproxy', name), 'utf8').replaceAll('/usr/local/etc/haproxy/maps', maps));
      const result = run('/usr/sbin/haproxy', ['-c', '-f', file]);
      assert.ok(result.ok, `${name}:\n${result.output}`);
    }
    assert.ok(existsSync(join(maps, 'demo.audience.map')), 'the router has the demo service audience map');
  });

  test('the Prometheus configuration and its rules pass promtool', { skip: toolMissing('promtool', '/usr/bin/promtool') }, () => {
    const file = join(scratch, 'prometheus.yml');
    const rules = join(PROJECT_ROOT, 'deploy/prometheus/rules/rampart.rules.yml');
    writeFileSync(file, readFileSync(join(PROJECT_ROOT, 'deploy/compose/prometheus/prometheus.yml'), 'utf8').replace('/etc/prometheus/rules/rampart.rules.yml', rules));
    const result = run('/usr/bin/promtool', ['check', 'config', file]);
    assert.ok(result.ok, result.output);
  });

  test('the Alertmanager configuration passes amtool and posts to the API through its load balancer', { skip: toolMissing('amtool', '/usr/bin/amtool') }, () => {
    const file = join(PROJECT_ROOT, 'deploy/compose/alertmanager/alertmanager.yml');
    const result = run('/usr/bin/amtool', ['check-config', file]);
    assert.ok(result.ok, result.output);
    const text = readFileSync(file, 'utf8');
    assert.match(text, /url: http:\/\/api-lb:8080\/v1\/alerts\/alertmanager/);
    assert.match(text, /credentials_file: \/run\/secrets\/rampart_alertmanager_token/);
  });

  test('the namespace job registers exactly the search attributes the workflows use', () => {
    const script = readFileSync(join(PROJECT_ROOT, 'deploy/compose/temporal/create-namespace.sh'), 'utf8');
    const registered = [...script.matchAll(/--name (\w+) --type Keyword/g)].map((m) => m[1]).sort();
    assert.deepEqual(registered, SEARCH_ATTRIBUTES.map((key) => key.name).sort());
  });

  test('the shell jobs are valid POSIX sh', () => {
    for (const name of ['setup-schema.sh', 'create-namespace.sh']) {
      const result = run('sh', ['-n', join(PROJECT_ROOT, 'deploy/compose/temporal', name)]);
      assert.ok(result.ok, `${name}: ${result.output}`);
    }
  });
});
