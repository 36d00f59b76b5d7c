import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { INITIAL_LIFECYCLE, observableState, reduce, type Lifecycle, type LifecycleInput } from '../../src/engine/lifecycle';

const at = '2026-12-01T00:00:00.000Z';
const command = (name: 'pause' | 'resume' | 'promote' | 'approve' | 'abort', source: 'operator' | 'alert' = 'operator', stepIndex = 2): LifecycleInput => ({
  kind: 'command',
  name,
  command: { actor: 'alice', reason: 'why', source },
  stepIndex,
  at,
});

function run(inputs: LifecycleInput[], from: Lifecycle = INITIAL_LIFECYCLE): { life: Lifecycle; events: string[] } {
  let life = from;
  const events: string[] = [];
  for (const input of inputs) {
    const next = reduce(life, input);
    life = next.life;
    if (next.transition) events.push(next.transition.event);
  }
  return { life, events };
}

describe('the release lifecycle reducer', () => {
  const cases: Array<[string, LifecycleInput[], string, string[]]> = [
    ['an operator pause pauses', [command('pause')], 'paused', ['paused']],
    ['resume lifts it', [command('pause'), command('resume')], 'running', ['paused', 'resumed']],
    ['promote lifts a pause too', [command('pause'), command('promote')], 'running', ['paused', 'promote-requested']],
    ['a gate waits for approval', [{ kind: 'gate' }], 'awaiting-approval', ['awaiting-approval']],
    ['approve passes the gate', [{ kind: 'gate' }, command('approve')], 'running', ['awaiting-approval', 'approved']],
    ['abort rolls back at once', [command('abort')], 'rolling-back', ['abort-requested']],
    ['abort wins over a pause', [command('pause'), command('abort')], 'rolling-back', ['paused', 'abort-requested']],
    ['supersede rolls back', [{ kind: 'supersede', byVersion: 'v2', byRelease: 'r2' }], 'rolling-back', ['superseded']],
    ['a supersede after an abort changes nothing', [command('abort'), { kind: 'supersede', byVersion: 'v2', byRelease: 'r2' }], 'rolling-back', ['abort-requested']],
    ['the engine pauses itself', [{ kind: 'engine-pause', reason: 'not enough evidence', at }], 'paused', ['paused']],
    ['finished is final', [command('pause'), { kind: 'finished', outcome: 'aborted' }], 'aborted', ['paused']],
  ];
  for (const [name, inputs, state, events] of cases) {
    test(name, () => {
      const result = run(inputs);
      assert.equal(observableState(result.life), state);
      assert.deepEqual(result.events, events);
    });
  }

  test('a pause records who and why, and an alert pause says so', () => {
    assert.deepEqual(run([command('pause', 'alert')]).life.pause, { cause: 'alert', actor: 'alice', reason: 'why', at });
    assert.equal(run([{ kind: 'engine-pause', reason: 'r', at }]).life.pause?.cause, 'inconclusive');
  });

  test('a promote is bound to the step it was sent in', () => {
    assert.equal(run([command('promote', 'operator', 4)]).life.promoteStep, 4);
  });

  test('an abort remembers who stopped the release and from where', () => {
    assert.deepEqual(run([command('abort', 'alert')]).life.stop, { outcome: 'aborted', actor: 'alice', reason: 'why', source: 'alert' });
    assert.equal(run([{ kind: 'supersede', byVersion: 'v2', byRelease: 'r2' }]).life.stop?.reason, 'superseded by v2 (r2)');
  });
});
