import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rejectCommand, type CommandName, type ReleaseState } from '../../src/engine/release-state';

const cases: Array<[ReleaseState, CommandName, RegExp | null]> = [
  ['running', 'pause', null],
  ['running', 'resume', /not paused \(it is running\)/],
  ['running', 'promote', null],
  ['running', 'abort', null],
  ['running', 'approve', /not waiting for approval/],
  ['paused', 'pause', /already paused/],
  ['paused', 'resume', null],
  ['paused', 'promote', null],
  ['paused', 'abort', null],
  ['awaiting-approval', 'approve', null],
  ['awaiting-approval', 'promote', /approve it instead/],
  ['awaiting-approval', 'abort', null],
  ['rolling-back', 'resume', /rolling back/],
  ['rolling-back', 'promote', /rolling back/],
  ['rolling-back', 'abort', /rolling back/],
  ['promoted', 'abort', /has finished \(promoted\)/],
  ['aborted', 'resume', /has finished \(aborted\)/],
  ['superseded', 'promote', /has finished/],
];

for (const [state, command, expected] of cases) {
  test(`${command} while ${state}: ${expected ? 'refused' : 'accepted'}`, () => {
    const reason = rejectCommand({ state, pause: state === 'paused' ? { cause: 'operator', actor: 'a', reason: 'r', at: '' } : null, outcome: null }, command);
    if (expected) assert.match(reason ?? '', expected);
    else assert.equal(reason, null);
  });
}
