import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compensationOrder, EMPTY_SAGA, has, pointOfNoReturn, register } from '../../src/engine/saga';

describe('the release saga', () => {
  test('undoes newest first, each kind once however often it is registered', () => {
    let saga = register(EMPTY_SAGA, { kind: 'stop-canary' });
    saga = register(saga, { kind: 'reset-routes' });
    saga = register(saga, { kind: 'reset-routes' });
    saga = register(saga, { kind: 'restore-stable', version: 'abc1234' });
    assert.deepEqual(compensationOrder(saga), [{ kind: 'restore-stable', version: 'abc1234' }, { kind: 'reset-routes' }, { kind: 'stop-canary' }]);
  });

  test('before the final switch, the old stable instance comes back while the canary still serves, then traffic returns to it', () => {
    let saga = register(EMPTY_SAGA, { kind: 'stop-canary' });
    saga = register(saga, { kind: 'reset-routes' });
    saga = register(saga, { kind: 'restore-stable', version: 'abc1234' });
    const order = compensationOrder(saga).map((u) => u.kind);
    assert.ok(order.indexOf('restore-stable') < order.indexOf('reset-routes'), 'stable is restored before traffic returns to it');
    assert.ok(order.indexOf('reset-routes') < order.indexOf('stop-canary'), 'traffic leaves the canary before it stops');
  });

  test('past the point of no return nothing is undone and nothing new may be registered', () => {
    let saga = register(EMPTY_SAGA, { kind: 'stop-canary' });
    saga = register(saga, { kind: 'restore-stable', version: 'abc1234' });
    saga = pointOfNoReturn(saga);
    assert.deepEqual(compensationOrder(saga), []);
    assert.equal(has(saga, 'restore-stable'), false);
    assert.throws(() => register(saga, { kind: 'reset-routes' }), /point of no return/);
  });

  test('survives a round trip through JSON, as it does across continue-as-new', () => {
    let saga = register(EMPTY_SAGA, { kind: 'stop-canary' });
    saga = register(saga, { kind: 'restore-stable', version: 'abc1234' });
    assert.deepEqual(JSON.parse(JSON.stringify(saga)), saga);
  });
});
