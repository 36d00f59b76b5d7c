import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeDora, type ReleaseRecord } from '../../src/engine/dora';

const window = { from: new Date('2026-11-01T00:00:00Z'), to: new Date('2026-11-11T00:00:00Z') };
const record = (over: Partial<ReleaseRecord>): ReleaseRecord => ({
  service: 'checkout',
  environment: 'production',
  version: 'abc1234',
  outcome: 'promoted',
  startTime: '2026-11-05T00:00:00Z',
  closeTime: '2026-11-05T01:00:00Z',
  commitTime: '2026-11-05T00:00:00Z',
  timeToSafeMs: null,
  drill: false,
  ...over,
});

test('deployments, frequency, lead time, failure rate and recovery from a table of releases', () => {
  const [figures] = computeDora(
    [
      record({}),
      record({ closeTime: '2026-11-06T02:00:00Z', commitTime: '2026-11-06T00:00:00Z' }),
      record({ closeTime: '2026-11-07T03:00:00Z', commitTime: '2026-11-07T00:00:00Z' }),
      record({ outcome: 'rolled-back', timeToSafeMs: 4_000 }),
      record({ outcome: 'aborted', timeToSafeMs: 2_000 }),
      record({ outcome: 'superseded' }),
      record({ outcome: 'cancelled' }),
      record({ outcome: 'rolled-back', drill: true, timeToSafeMs: 1_000 }),
      record({ outcome: null, closeTime: null }),
      record({ closeTime: '2026-10-30T00:00:00Z' }),
    ],
    window,
  );
  assert.equal(figures!.deployments, 3);
  assert.equal(figures!.deploymentFrequencyPerDay, 0.3);
  assert.deepEqual(figures!.leadTimeForChanges, { count: 3, medianSeconds: 7_200, meanSeconds: 7_200 });
  assert.equal(figures!.failedDeployments, 2);
  assert.equal(figures!.changeFailureRate, 2 / 5);
  assert.deepEqual(figures!.failedDeploymentRecoveryTime, { count: 2, medianSeconds: 3, meanSeconds: 3 });
});

test('services and environments are figured apart; no releases means no rate', () => {
  const figures = computeDora([record({ service: 'b' }), record({ service: 'a', environment: 'staging', outcome: 'superseded' })], window);
  assert.deepEqual(figures.map((f) => [f.service, f.environment, f.deployments, f.changeFailureRate]), [
    ['a', 'staging', 0, null],
    ['b', 'production', 1, 0],
  ]);
});

test('a rollback of a promoted release is a failed change and a recovery, but not a deployment nor a lead time', () => {
  const [figures] = computeDora(
    [
      record({}),
      record({ version: 'bad', closeTime: '2026-11-06T00:00:00Z' }),
      record({ version: 'abc1234', outcome: 'rolled-back-to', closeTime: '2026-11-06T01:00:00Z', commitTime: null, timeToSafeMs: 6_000 }),
      record({ outcome: 'rolled-back', timeToSafeMs: 2_000 }),
    ],
    window,
  );
  assert.equal(figures!.deployments, 2);
  assert.equal(figures!.leadTimeForChanges?.count, 2);
  assert.equal(figures!.failedDeployments, 2);
  // The promotion the rollback undid is among the deployments already: 2 failures over 3 changes.
  assert.equal(figures!.changeFailureRate, 2 / 3);
  assert.deepEqual(figures!.failedDeploymentRecoveryTime, { count: 2, medianSeconds: 4, meanSeconds: 4 });
});

test('a rollback that failed (and undid itself) or was superseded changed nothing: no failure, no recovery', () => {
  const [figures] = computeDora([record({}), record({ outcome: 'rolled-back', rollback: true, timeToSafeMs: 1_000 }), record({ outcome: 'superseded', rollback: true })], window);
  assert.equal(figures!.failedDeployments, 0);
  assert.equal(figures!.changeFailureRate, 0);
  assert.equal(figures!.failedDeploymentRecoveryTime, null);
});

test('a window holding a rollback but not the promotion it undid still rates at most 1', () => {
  const [figures] = computeDora([record({ outcome: 'rolled-back-to', timeToSafeMs: 1_000 })], window);
  assert.equal(figures!.deployments, 0);
  assert.equal(figures!.changeFailureRate, 1);
});
