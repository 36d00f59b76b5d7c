import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Worker } from '@temporalio/worker';
import { quietSdkLogs } from '../helpers/temporal';

const dir = join(__dirname, 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

test('recorded histories exist for the release and lane workflows', () => {
  assert.ok(files.some((f) => f.startsWith('release-')));
  assert.ok(files.includes('lane.json'));
});

test('every recorded history replays against the current workflow code without non-determinism', async () => {
  quietSdkLogs();
  const histories = files.map((file) => ({ workflowId: file, history: JSON.parse(readFileSync(join(dir, file), 'utf8')) }));
  const results = [];
  for await (const result of Worker.runReplayHistories({ workflowsPath: require.resolve('../../workflows') }, histories)) {
    results.push(result);
  }
  assert.equal(results.length, files.length);
  for (const result of results) assert.equal(result.error, undefined, `${result.workflowId}: ${result.error?.message}`);
});
