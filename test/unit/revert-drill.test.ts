import assert from 'node:assert/strict';
import { test } from 'node:test';
import { judgeRevertDrill, revertDrillSpec, type DrillInput } from '../../src/engine/drill';
import type { ReleaseStatus } from '../../src/engine/release-state';
import { fastSpec } from '../helpers/specs';

const COMMAND_AT = Date.parse('2026-12-01T10:00:00.000Z');
const at = (ms: number) => new Date(COMMAND_AT + ms).toISOString();
const event = (name: string, ms: number) => ({ at: at(ms), event: name, state: 'running' as const });

type Rollback = Pick<ReleaseStatus, 'history' | 'outcome' | 'version'>;
function rollback(outcome: string | null, history: ReleaseStatus['history']): Rollback {
  return { version: 'aaaaaaa', history, outcome: outcome ? ({ result: outcome, reason: 'why', at: at(0) } as ReleaseStatus['outcome']) : null };
}

test('a revert drill is timed from the command to the switch back to the warm instance when the release made one', () => {
  const verdict = judgeRevertDrill(COMMAND_AT, rollback('rolled-back-to', [event('traffic-moved', 900)]), { history: [event('switched-to-warm', 250)] }, 120_000);
  assert.equal(verdict.result, 'passed');
  assert.equal(verdict.timeToSafeMs, 250);
  assert.equal(verdict.timeToDetectMs, null);
  assert.match(verdict.reason, /route switch to the warm instance/);
});

test('without a warm switch, to the rollback moving all traffic (a cold deploy)', () => {
  const verdict = judgeRevertDrill(COMMAND_AT, rollback('rolled-back-to', [event('traffic-moved', 3_100)]), { history: [event('finished', 100)] }, 120_000);
  assert.deepEqual([verdict.result, verdict.timeToSafeMs], ['passed', 3_100]);
  assert.match(verdict.reason, /a cold deploy/);
});

test('over the SLO fails; a rollback that did not arrive fails; a superseded one is skipped', () => {
  const slow = judgeRevertDrill(COMMAND_AT, rollback('rolled-back-to', [event('traffic-moved', 130_000)]), null, 120_000);
  assert.equal(slow.result, 'failed');
  assert.match(slow.reason, /over the SLO of 120000 ms/);
  assert.equal(judgeRevertDrill(COMMAND_AT, rollback('rolled-back', []), null, 120_000).result, 'failed');
  assert.equal(judgeRevertDrill(COMMAND_AT, rollback('superseded', []), null, 120_000).result, 'skipped');
  const untimed = judgeRevertDrill(COMMAND_AT, rollback('rolled-back-to', []), null, 120_000);
  assert.deepEqual([untimed.result, untimed.timeToSafeMs], ['failed', null]);
});

test("a revert drill's build is the service's own spec, marked a revert drill, with no fault", () => {
  const spec = fastSpec('shop', 'bbbbbbb');
  const input: DrillInput = { kind: 'revert', service: 'shop', environment: 'production', spec, fault: { errorRate: 0.5 }, sloMs: 120_000, whenBusy: 'skip', maxWaitMs: 0 };
  const built = revertDrillSpec(input, 'ccccccc');
  assert.deepEqual([built.version, built.drill, built.drillKind, built.requestedBy], ['ccccccc', true, 'revert', 'rampart-drill']);
  assert.deepEqual(built.target, spec.target, 'no fault injected');
  assert.deepEqual(built.strategy, spec.strategy, 'the normal strategy');
});
