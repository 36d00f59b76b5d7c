import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { rejectCommand, type CommandName, type ReleaseActivity, type ReleaseState, type ReleaseStatus } from '../../src/engine/release-state';

type Case = [
  state: ReleaseState,
  command: CommandName,
  expected: RegExp | null,
  extra?: { activity?: ReleaseActivity; pointOfNoReturn?: boolean; sentFor?: string; source?: 'alert' | 'operator'; pausedBy?: 'operator' | 'alert' | 'inconclusive' },
];

const cases: Case[] = [
  ['running', 'pause', null],
  ['running', 'resume', /not paused \(it is running\)/],
  ['running', 'promote', null, { activity: 'baking' }],
  ['running', 'abort', null],
  ['running', 'approve', /not waiting for approval/],
  ['paused', 'pause', /already paused/],
  ['paused', 'resume', null],
  ['paused', 'promote', null, { activity: 'baking' }],
  ['paused', 'abort', null],
  ['awaiting-approval', 'approve', null, { activity: 'awaiting-approval' }],
  ['awaiting-approval', 'promote', /approve it instead/, { activity: 'awaiting-approval' }],
  ['awaiting-approval', 'abort', null],
  ['rolling-back', 'resume', /rolling back/],
  ['rolling-back', 'promote', /rolling back/],
  ['rolling-back', 'abort', /rolling back/],
  ['promoted', 'abort', /has finished \(promoted\)/],
  ['aborted', 'resume', /has finished \(aborted\)/],
  ['superseded', 'promote', /has finished/],
  // A promote sent while traffic moves would otherwise skip the next step's whole bake.
  ['running', 'promote', /not baking \(it is moving-traffic\)/, { activity: 'moving-traffic' }],
  ['running', 'promote', /not baking \(it is running-hooks\)/, { activity: 'running-hooks' }],
  // Past the point of no return the release only finishes forward: an abort is refused, never lost.
  ['running', 'abort', /point of no return/, { activity: 'finalizing', pointOfNoReturn: true }],
  ['running', 'promote', /point of no return/, { activity: 'finalizing', pointOfNoReturn: true }],
  ['running', 'abort', null, { activity: 'finalizing', pointOfNoReturn: false }],
  // A command names the step its sender saw; once the release moved on, it is refused.
  ['running', 'promote', /meant for step canary-5, but the release has moved on to ramp-10/, { activity: 'baking', sentFor: 'canary-5' }],
  ['running', 'abort', /moved on/, { sentFor: 'canary-5' }],
  ['running', 'promote', null, { activity: 'baking', sentFor: 'ramp-10' }],
  // A resolved alert lifts only an alert's pause.
  ['paused', 'resume', null, { source: 'alert', pausedBy: 'alert' }],
  ['paused', 'resume', /paused by operator, not by an alert/, { source: 'alert', pausedBy: 'operator' }],
  ['paused', 'resume', /paused by inconclusive, not by an alert/, { source: 'alert', pausedBy: 'inconclusive' }],
  ['paused', 'resume', null, { source: 'operator', pausedBy: 'alert' }],
];

describe('operator commands against the release state', () => {
  for (const [state, command, expected, extra = {}] of cases) {
    const context = [extra.activity, extra.pointOfNoReturn ? 'past the point of no return' : '', extra.sentFor ? `sent for ${extra.sentFor}` : ''].filter(Boolean).join(', ');
    test(`${command} while ${state}${context ? ` (${context})` : ''}: ${expected ? 'refused' : 'accepted'}`, () => {
      const status: Parameters<typeof rejectCommand>[0] = {
        state,
        pause: state === 'paused' ? { cause: extra.pausedBy ?? 'operator', actor: 'a', reason: 'r', at: '' } : null,
        outcome: null,
        step: { index: 3, name: 'ramp-10' } satisfies ReleaseStatus['step'],
        ...(extra.activity ? { activity: extra.activity } : {}),
        ...(extra.pointOfNoReturn !== undefined ? { pointOfNoReturn: extra.pointOfNoReturn } : {}),
      };
      const reason = rejectCommand(status, command, extra.sentFor, extra.source);
      if (expected) assert.match(reason ?? '', expected);
      else assert.equal(reason, null);
    });
  }
});
