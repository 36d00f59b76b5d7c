import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../../src/paths';
import { configReference } from '../../scripts/config-reference';

test("the README's configuration reference is the one the config schema generates", () => {
  const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
  const table = /<!-- config-reference:start -->\n([\s\S]*?)\n<!-- config-reference:end -->/.exec(readme)?.[1];
  assert.equal(table, configReference(), 'regenerate it with: npx tsx scripts/config-reference.ts');
});
