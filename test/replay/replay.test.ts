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

  test('a busy lane is recorded across a continue-as-new, with its patch markers and a release handed over', () => {
    const first = load('lane-busy-first-run.v3.json').events;
    const second = load('lane-busy-second-run.v3.json').events;
    for (const events of [first, second]) assert.equal(events.at(-1)?.eventType, 'EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW');
    assert.equal(markers('lane-busy-first-run.v3.json'), 2, 'lane-refuses-stale-commits and lane-continue-in-flight');
    const input = (second[0] as { workflowExecutionStartedEventAttributes?: { input?: { payloads?: { data?: string }[] } } }).workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
    const carried = JSON.parse(Buffer.from(input ?? '', 'base64').toString('utf8')) as { current?: unknown; generation?: number };
    assert.ok(carried.current, 'the second run inherited a release in flight');
    assert.ok(second.some((e) => e.eventType === 'EVENT_TYPE_ACTIVITY_TASK_SCHEDULED'), 'and looked at it');
  });

  for (const file of files) {
    test(`${file} replays against the current workflow code without non-determinism`, async () => {
      quietSdkLogs();
      await Worker.runReplayHistory({ workflowsPath: require.resolve('../../workflows') }, load(file), file);
    });
  }
});
