import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Worker } from '@temporalio/worker';
import { quietSdkLogs } from '../helpers/temporal';

/**
 * Histories recorded under earlier workflow code (`*.v1.json` predates the `upsert-phase-on-change`
 * patch) must replay under today's code: that is what lets releases in flight survive a deploy of
 * Rampart itself. A change that is not guarded with patched() fails here.
 */
const dir = join(__dirname, 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
const load = (file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8')) as { events: Array<{ eventType: string }> };
const markers = (file: string) => load(file).events.filter((e) => e.eventType === 'EVENT_TYPE_MARKER_RECORDED').length;

describe('replay of recorded histories', () => {
  test('histories exist for both workflows, from before and after the patch', () => {
    assert.ok(files.includes('release-promoted.v1.json') && files.includes('release-promoted.v2.json'));
    assert.ok(files.includes('lane.v1.json') && files.includes('lane.v2.json'));
    assert.equal(markers('release-promoted.v1.json'), 0, 'v1 was recorded before the patch existed');
    assert.equal(markers('release-promoted.v2.json'), 1, 'v2 carries the patch marker');
  });

  for (const file of files) {
    test(`${file} replays against the current workflow code without non-determinism`, async () => {
      quietSdkLogs();
      await Worker.runReplayHistory({ workflowsPath: require.resolve('../../workflows') }, load(file), file);
    });
  }
});
