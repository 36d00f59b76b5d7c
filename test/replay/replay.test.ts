import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Worker } from '@temporalio/worker';
import { quietSdkLogs } from '../helpers/temporal';

/**
 * Histories recorded under earlier workflow code must replay under today's code: that is what lets
 * releases in flight survive a deploy of Rampart itself. A change that is not guarded with patched()
 * fails here. The lane's go back to v1; the release workflow's to v3, when the evidence-based judge,
 * the saga as data and continue-as-new changed it wholesale (the README's upgrade note).
 */
const dir = join(__dirname, 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
const load = (file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8')) as { events: Array<{ eventType: string }> };
const markers = (file: string) => load(file).events.filter((e) => e.eventType === 'EVENT_TYPE_MARKER_RECORDED').length;

describe('replay of recorded histories', () => {
  test('histories exist for both workflows: releases with real bakes, operator commands, a supersede, and a lane from before its patches', () => {
    for (const name of ['release-promoted', 'release-rolled-back', 'release-approved-paused-aborted', 'release-superseded']) assert.ok(files.includes(`${name}.v3.json`), name);
    assert.ok(files.includes('lane.v1.json') && files.includes('lane.v2.json'));
    const timers = load('release-promoted.v3.json').events.filter((e) => e.eventType === 'EVENT_TYPE_TIMER_STARTED').length;
    assert.ok(timers >= 5, `the promoted release baked on timers (${timers})`);
  });

  test('a release is recorded across continue-as-new: its first run hands the bake to the next', () => {
    const first = load('release-continued-first-run.v3.json').events;
    const last = load('release-continued-last-run.v3.json').events;
    assert.equal(first.at(-1)?.eventType, 'EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW');
    assert.equal(last.at(-1)?.eventType, 'EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED');
    const input = (last[0] as { workflowExecutionStartedEventAttributes?: { input?: { payloads?: { data?: string }[] } } }).workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
    const carried = (JSON.parse(Buffer.from(input ?? '', 'base64').toString('utf8')) as { carried?: { saga?: { undos?: unknown[] }; generation?: number } }).carried;
    assert.ok((carried?.generation ?? 0) >= 2, 'the last run is a later generation');
    assert.ok((carried?.saga?.undos?.length ?? 0) >= 2, 'and carries the saga');
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

  test('a release is recorded keeping the previous version warm, superseded by a rollback to it, and that rollback', () => {
    assert.equal(markers('release-warm-switched.v4.json'), 1, 'warm-previous');
    assert.ok(files.includes('rollback-warm.v4.json'));
  });

  test('releases are recorded after looks became local activities: a look is markers in the history, not activity tasks', () => {
    const named = (name: string) =>
      (load('release-promoted.v5.json').events as Array<{ eventType: string; markerRecordedEventAttributes?: { markerName?: string } }>).filter(
        (e) => e.markerRecordedEventAttributes?.markerName === name,
      ).length;
    assert.ok(named('core_local_activity') >= 2, `local looks: ${named('core_local_activity')}`);
    assert.ok(named('core_patch') >= 1, 'local-looks');
    for (const name of ['release-rolled-back', 'release-approved-paused-aborted', 'release-superseded']) assert.ok(files.includes(`${name}.v5.json`), name);
  });

  for (const file of files) {
    test(`${file} replays against the current workflow code without non-determinism`, async () => {
      quietSdkLogs();
      await Worker.runReplayHistory({ workflowsPath: require.resolve('../../workflows') }, load(file), file);
    });
  }
});
