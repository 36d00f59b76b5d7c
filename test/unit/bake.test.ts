// The bake planner, driven as the release workflow drives it: ask for the next action, look or
// wait, repeat; the analysis outcome of each look comes from a script of the test.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AnalysisRun, VerdictOutcome } from '../../src/engine/analysis';
import { afterLook, afterResume, afterRoutesReapplied, afterWait, nextBakeAction, planBake, startBake, type BakeAction, type BakePlan, type BakeState } from '../../src/engine/bake';

const analysis = { interval: 10_000, maxBakeFactor: 3, consecutiveErrorLimit: 4, checks: ['error-rate'] };

function run(outcome: VerdictOutcome, message = `${outcome} because`): AnalysisRun {
  return { at: '', step: 'canary-5', outcome, windowSeconds: 0, verdicts: [{ check: 'error-rate', outcome, message }] };
}

interface Driven {
  action: BakeAction;
  state: BakeState;
  /** Elapsed bake time of each look. */
  looks: number[];
}

/** Runs the planner until it advances, rolls back or pauses; `outcomeAt` answers each look. */
function drive(plan: BakePlan, outcomeAt: (elapsedMs: number, look: number) => VerdictOutcome, from: BakeState = startBake(plan)): Driven {
  let state = from;
  const looks: number[] = [];
  for (let i = 0; i < 1_000; i++) {
    const action = nextBakeAction(plan, state);
    if (action.kind === 'look') {
      looks.push(state.elapsedMs);
      state = afterLook(plan, state, run(outcomeAt(state.elapsedMs, looks.length)));
    } else if (action.kind === 'wait') {
      assert.ok(action.ms > 0, 'a wait moves time on');
      state = afterWait(state, state.elapsedMs + action.ms);
    } else {
      return { action, state, looks };
    }
  }
  throw new Error('the planner never decided');
}

const sixtySeconds = planBake({ bake: 60_000, analysis: true }, analysis);

describe('a judged step', () => {
  test('a pass advances only after the bake, on a look at its end', () => {
    const { action, looks } = drive(sixtySeconds, () => 'pass');
    assert.deepEqual(looks, [10_000, 20_000, 30_000, 40_000, 50_000, 60_000]);
    assert.equal(action.kind, 'advance');
    assert.match((action as { reason: string }).reason, /^analysis passed after 60 s: error-rate: pass because$/);
  });

  test('a pass before the bake ends does not count if the look at its end is not a pass', () => {
    const { action, looks } = drive(sixtySeconds, (elapsed) => (elapsed < 60_000 ? 'pass' : 'inconclusive'));
    assert.equal(action.kind, 'pause');
    assert.equal(looks.at(-1), 180_000);
  });

  test('a bake that is not a multiple of the interval is looked at on its end, not an interval later', () => {
    const plan = planBake({ bake: 25_000, analysis: true }, analysis);
    const { action, looks, state } = drive(plan, () => 'pass');
    assert.deepEqual(looks, [10_000, 20_000, 25_000]);
    assert.equal(action.kind, 'advance');
    assert.equal(state.elapsedMs, 25_000);
  });

  test('a failure rolls back at once, with the reason', () => {
    const { action, state, looks } = drive(sixtySeconds, (elapsed) => (elapsed >= 20_000 ? 'fail' : 'inconclusive'));
    assert.equal(action.kind, 'rollback');
    assert.equal(state.elapsedMs, 20_000);
    assert.deepEqual(looks, [10_000, 20_000]);
    assert.match((action as { reason: string }).reason, /^analysis failed in canary-5: error-rate: fail because$/);
  });

  test('not enough evidence extends the bake to maxBakeFactor x bake, then pauses with the reason', () => {
    const { action, state, looks } = drive(sixtySeconds, () => 'inconclusive');
    assert.equal(action.kind, 'pause');
    assert.equal(state.elapsedMs, 180_000);
    assert.equal(looks.length, 18);
    assert.match((action as { reason: string }).reason, /^not enough evidence after 180 s \(bake 60 s, extended up to 180 s\): error-rate: inconclusive because$/);
  });

  test('a pass during the extension advances at once', () => {
    const { action, state } = drive(sixtySeconds, (elapsed) => (elapsed >= 90_000 ? 'pass' : 'inconclusive'));
    assert.equal(action.kind, 'advance');
    assert.equal(state.elapsedMs, 90_000);
  });

  test('query errors beyond the limit pause, naming the count and the limit', () => {
    const { action, looks } = drive(sixtySeconds, () => 'error');
    assert.equal(action.kind, 'pause');
    assert.equal(looks.length, 5);
    assert.match((action as { reason: string }).reason, /^analysis queries failed 5 times in a row \(limit 4\): error-rate: error because$/);
  });

  test('query errors up to the limit, then passes, advance', () => {
    const { action } = drive(sixtySeconds, (_elapsed, look) => (look <= 4 ? 'error' : 'pass'));
    assert.equal(action.kind, 'advance');
  });

  test('a resume gives a fresh allowance of time and query errors, and looks at once', () => {
    const paused = drive(sixtySeconds, () => 'inconclusive');
    const resumed = afterResume(sixtySeconds, paused.state);
    assert.equal(resumed.deadlineMs, 180_000 + 120_000);
    assert.equal(nextBakeAction(sixtySeconds, resumed).kind, 'look');
    const again = drive(sixtySeconds, () => 'inconclusive', resumed);
    assert.equal(again.action.kind, 'pause');
    assert.equal(again.state.elapsedMs, 300_000);

    const erroring = drive(sixtySeconds, () => 'error');
    const afterErrors = afterResume(sixtySeconds, erroring.state);
    assert.equal(afterErrors.consecutiveErrors, 0);
    assert.equal(nextBakeAction(sixtySeconds, afterErrors).kind, 'look');
  });

  test('a failure still rolls back after a resume', () => {
    const failed = afterLook(sixtySeconds, afterWait(startBake(sixtySeconds), 10_000), run('fail'));
    assert.equal(nextBakeAction(sixtySeconds, afterResume(sixtySeconds, failed)).kind, 'rollback');
  });

  test('routes put back by the router drop a pass: the step does not advance on it', () => {
    const passed = drive(sixtySeconds, () => 'pass').state;
    assert.equal(nextBakeAction(sixtySeconds, passed).kind, 'advance');
    const reapplied = afterRoutesReapplied(passed);
    assert.equal(reapplied.latest, null);
    assert.notEqual(nextBakeAction(sixtySeconds, reapplied).kind, 'advance');
    // The next look judges the traffic as it now is.
    const { action, looks } = drive(sixtySeconds, () => 'pass', reapplied);
    assert.equal(action.kind, 'advance');
    assert.deepEqual(looks, [70_000]);
  });

  test('routes put back keep a failure', () => {
    const failed = afterLook(sixtySeconds, afterWait(startBake(sixtySeconds), 10_000), run('fail'));
    assert.equal(nextBakeAction(sixtySeconds, afterRoutesReapplied(failed)).kind, 'rollback');
  });
});

describe('an unjudged step advances after its bake', () => {
  const cases: Array<[string, { bake: number; analysis: boolean }, readonly unknown[]]> = [
    ['analysis off', { bake: 30_000, analysis: false }, ['error-rate']],
    ['no checks', { bake: 30_000, analysis: true }, []],
    ['no bake', { bake: 0, analysis: true }, ['error-rate']],
  ];
  for (const [name, step, checks] of cases) {
    test(name, () => {
      const plan = planBake(step, { ...analysis, checks });
      assert.equal(plan.judged, false);
      const { action, state, looks } = drive(plan, () => 'fail');
      assert.deepEqual(action, { kind: 'advance', reason: 'baked (not judged)' });
      assert.equal(state.elapsedMs, step.bake);
      assert.deepEqual(looks, []);
    });
  }
});

test('maxBakeFactor 1 pauses at the end of the bake when it is not decided', () => {
  const plan = planBake({ bake: 60_000, analysis: true }, { ...analysis, maxBakeFactor: 1 });
  const { action, state } = drive(plan, () => 'inconclusive');
  assert.equal(action.kind, 'pause');
  assert.equal(state.elapsedMs, 60_000);
});
