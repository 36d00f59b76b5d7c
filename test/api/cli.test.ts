// The CLI as an operator runs it: a separate process talking to the API over HTTP, driving a real
// release from start to abort, with the exit codes scripts rely on.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { EXIT } from '../../src/cli/client';
import type { ReleaseStatus } from '../../src/engine/release-state';
import { freePort } from '../../src/net';
import { sha, uniqueService, waitFor } from '../helpers/temporal';
import { assertProblem, call, releaseUrl, startApiRig, TOKENS, type ApiRig, runCli } from './helpers';


let api: ApiRig;
before(async () => {
  api = await startApiRig();
});
after(async () => {
  await api?.close();
});

const rampart = (args: string[], env: Record<string, string | undefined> = {}) => runCli(api.url, args, env);

test('the CLI drives a release from start to abort, and its exit codes say what happened', async () => {
  const service = uniqueService('cli');
  const version = sha(service);
  const dir = mkdtempSync(join(tmpdir(), 'rampart-cli-'));
  const specFile = join(dir, 'release.yaml');
  writeFileSync(
    specFile,
    [
      `service: ${service}`,
      `version: "${version}"`,
      'strategy:',
      '  steps:',
      '    - { name: canary, phase: canary, weight: 10, bake: 30s }',
      '    - { name: full, phase: full, weight: 100 }',
      'analysis: { interval: 200ms }',
      '',
    ].join('\n'),
  );
  const releaseId = `release/${service}/production/${version}`;
  const short = `${service}/production/${version}`;

  const started = await rampart(['start', specFile]);
  assert.equal(started.code, EXIT.ok, started.stderr);
  assert.match(started.stdout, new RegExp(`${releaseId} started`));
  await waitFor('the canary to take traffic', async () => (await api.rig.releases.status(releaseId)).routes.canaryWeight === 10);

  const status = await rampart(['status', short]);
  assert.equal(status.code, EXIT.ok, status.stderr);
  assert.match(status.stdout, /state\s+running\s+phase canary\s+step 1\/2 canary/);
  assert.match(status.stdout, /canary 10%/);

  const paused = await rampart(['pause', releaseId, '--reason', 'checking the dashboards']);
  assert.equal(paused.code, EXIT.ok, paused.stderr);
  assert.match(paused.stdout, new RegExp(`paused\\s+by ${TOKENS.operator.name} \\(operator\\): checking the dashboards`));

  const twice = await rampart(['pause', short, '-r', 'again']);
  assert.equal(twice.code, EXIT.rejected);
  assert.match(twice.stderr, /already paused/);

  const listed = await rampart(['list', '--service', service, '--json']);
  assert.equal(listed.code, EXIT.ok, listed.stderr);
  assert.deepEqual(
    (JSON.parse(listed.stdout) as { releases: { releaseId: string }[] }).releases.map((r) => r.releaseId),
    [releaseId],
  );

  const aborted = await rampart(['abort', short, '--reason', 'p99 doubled', '--json']);
  assert.equal(aborted.code, EXIT.ok, aborted.stderr);
  const final = JSON.parse(aborted.stdout) as ReleaseStatus;
  assert.equal(final.state, 'aborted');
  assert.equal(final.routes.canaryWeight, 0);
  assert.deepEqual([final.outcome?.actor, final.outcome?.reason], [TOKENS.operator.name, 'p99 doubled']);

  const watched = await rampart(['status', short, '--watch', '--interval', '200']);
  assert.equal(watched.code, EXIT.notPromoted, 'watching a release that ended without promotion exits 6');
  assert.match(watched.stdout, /aborted/);

  const late = await rampart(['resume', short, '-r', 'too late']);
  assert.equal(late.code, EXIT.rejected);
  assert.match(late.stderr, /finished/);
});

test('the CLI exits 2 on usage errors, 4 for an unknown release, 5 without a valid token', async () => {
  const missingReason = await rampart(['pause', 'svc/production/abcdef1']);
  assert.equal(missingReason.code, EXIT.usage);
  assert.match(missingReason.stderr, /--reason/);

  const badName = await rampart(['status', 'just-a-name']);
  assert.equal(badName.code, EXIT.usage);

  const dir = mkdtempSync(join(tmpdir(), 'rampart-cli-'));
  const invalid = join(dir, 'bad.yaml');
  writeFileSync(invalid, 'service: shop\nversion: latest\n');
  const rejectedSpec = await rampart(['start', invalid]);
  assert.equal(rejectedSpec.code, EXIT.usage);
  assert.match(rejectedSpec.stderr, /body\.version/);

  const unknown = await rampart(['status', `${uniqueService('ghost')}/production/${sha('ghost')}`]);
  assert.equal(unknown.code, EXIT.notFound);

  const noToken = await rampart(['list'], { RAMPART_TOKEN: '' });
  assert.equal(noToken.code, EXIT.auth);
  assert.match(noToken.stderr, /RAMPART_TOKEN/);

  const viewer = await rampart(['abort', `${uniqueService('ghost')}/production/${sha('ghost')}`, '-r', 'x'], { RAMPART_TOKEN: TOKENS.viewer.token });
  assert.equal(viewer.code, EXIT.auth);

  const unreachable = await rampart(['list', '--url', `http://127.0.0.1:${await freePort()}`]);
  assert.equal(unreachable.code, EXIT.error);
  assert.match(unreachable.stderr, /cannot reach the Rampart API.*ECONNREFUSED/);
});

test('a promote is bound to the step its sender saw: the API refuses one meant for a step the release left, the CLI binds it to the current step', async () => {
  const service = uniqueService('cli-step');
  const version = sha(service);
  const releaseId = `release/${service}/production/${version}`;
  const spec = {
    service,
    version,
    strategy: {
      steps: [
        { name: 'canary', phase: 'canary', weight: 10, bake: '1s', analysis: false },
        { name: 'ramp', phase: 'ramp', weight: 50, bake: '60s', analysis: false },
        { name: 'full', phase: 'full', weight: 100 },
      ],
    },
  };
  const started = await call(api.url, 'POST', '/v1/releases', { token: TOKENS.operator.token, body: spec });
  assert.equal(started.status, 201, JSON.stringify(started.body));
  await waitFor('ramp baking', async () => {
    const status = await api.rig.releases.status(releaseId);
    return status.step?.name === 'ramp' && status.activity === 'baking';
  });

  const stale = await call(api.url, 'POST', `${releaseUrl(releaseId)}/promote`, { token: TOKENS.operator.token, body: { reason: 'canary looked fine', step: 'canary' } });
  const problem = assertProblem(stale, 409);
  assert.match(problem.detail, /meant for step canary, but the release has moved on to ramp/);
  assert.equal((await api.rig.releases.status(releaseId)).step?.name, 'ramp', 'nothing was skipped');

  const promoted = await rampart(['promote', releaseId, '--reason', 'ramp looks fine']);
  assert.equal(promoted.code, EXIT.ok, promoted.stderr);
  const result = await api.rig.releases.result(releaseId);
  assert.equal(result.outcome?.result, 'promoted');
  const requested = result.history.find((t) => t.event === 'promote-requested');
  assert.equal(requested?.step, 'ramp', 'the CLI promote acted on the step it named');
});
