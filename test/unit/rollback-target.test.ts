import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_WARM_WINDOW_MS, rollbackTarget, warmWindowMs, type StableVersion } from '../../src/engine/rollback';

const stable = (...versions: Array<string | [string, 'left']>): StableVersion[] =>
  versions.map((v) => (Array.isArray(v) ? { version: v[0], rolledBackFrom: true } : { version: v }));

const cases: Array<{ name: string; stable: StableVersion[]; to?: string; target?: string; refusal?: RegExp; allowed: string[] }> = [
  { name: 'default: the version stable before the current one', stable: stable('v1', 'v2', 'v3'), target: 'v2', allowed: ['v2', 'v1'] },
  { name: 'a named version that was stable, further back', stable: stable('v1', 'v2', 'v3'), to: 'v1', target: 'v1', allowed: ['v2', 'v1'] },
  { name: 'a version never stable here is refused', stable: stable('v1', 'v2'), to: 'v9', refusal: /v9 was never stable here/, allowed: ['v1'] },
  { name: 'the stable version itself is refused', stable: stable('v1', 'v2'), to: 'v2', refusal: /v2 is the stable version already/, allowed: ['v1'] },
  { name: 'nothing before the only stable version', stable: stable('v1'), refusal: /no known-good version was stable before v1/, allowed: [] },
  { name: 'an empty lane', stable: [], refusal: /no version was ever stable here/, allowed: [] },
  // After v1, v2, rollback to v1: a second rollback must not flee back to v2.
  { name: 'the default skips a version a rollback left', stable: stable('v0', 'v1', ['v2', 'left'], 'v1'), target: 'v0', allowed: ['v2', 'v0'] },
  { name: 'but it may be named', stable: stable('v1', ['v2', 'left'], 'v1'), to: 'v2', target: 'v2', allowed: ['v2'] },
  { name: 'every earlier version left by a rollback: refused, name one', stable: stable('v1', ['v2', 'left'], 'v1'), refusal: /name one in to/, allowed: ['v2'] },
  { name: 'a version stable twice is listed once', stable: stable('v1', 'v2', 'v1', 'v3'), target: 'v1', allowed: ['v1', 'v2'] },
];

for (const c of cases) {
  test(`rollback target: ${c.name}`, () => {
    const choice = rollbackTarget(c.stable, c.to);
    assert.deepEqual(choice.allowed, c.allowed);
    if (c.target) {
      assert.ok('target' in choice, 'refusal' in choice ? choice.refusal : '');
      assert.equal(choice.target.version, c.target);
    } else {
      assert.ok('refusal' in choice);
      assert.match(choice.refusal, c.refusal!);
    }
  });
}

test('the warm window: what the spec sets, else 10 minutes on the local target and none on the simulated one, and none for a spec from before the policy', () => {
  assert.equal(warmWindowMs({ rollback: { warmWindow: 30_000 }, target: { type: 'simulated' } }), 30_000);
  assert.equal(warmWindowMs({ rollback: { warmWindow: 0 }, target: { type: 'local' } }), 0);
  assert.equal(warmWindowMs({ rollback: {}, target: { type: 'local' } }), DEFAULT_WARM_WINDOW_MS);
  assert.equal(DEFAULT_WARM_WINDOW_MS, 600_000);
  assert.equal(warmWindowMs({ rollback: {}, target: { type: 'simulated' } }), 0);
  assert.equal(warmWindowMs({ target: { type: 'local' } }), 0);
});
