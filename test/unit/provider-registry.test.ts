import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProviderRegistry } from '../../src/providers';
import { SimulatedFleet } from '../../src/providers/simulated/fleet';
import { targetSchema } from '../../src/spec/release-spec';

test('the provider cache stays bounded however many targets come by, and keeps the ones in use', () => {
  const registry = new ProviderRegistry({ fleet: new SimulatedFleet() }, 3);
  const target = (seed: number) => targetSchema.parse({ type: 'simulated', seed });
  const busy = registry.forTarget(target(0));
  for (let seed = 1; seed <= 50; seed++) {
    registry.forTarget(target(seed));
    // A release in flight keeps using its target: it stays the most recently used.
    assert.equal(registry.forTarget(target(0)), busy);
  }
  assert.equal(registry.size, 3);
  assert.notEqual(registry.forTarget(target(1)), undefined);
  assert.equal(registry.size, 3);
});

test("a region's providers are its own, even for a target equal to another region's", () => {
  const registry = new ProviderRegistry({ fleet: new SimulatedFleet() });
  const local = targetSchema.parse({ type: 'local', command: ['true'], stablePort: 20001, canaryPort: 20002, haproxySocket: '/tmp/none.sock', prometheusUrl: 'http://127.0.0.1:1' });
  const inR1 = registry.forTarget(local, 'r1');
  assert.equal(registry.forTarget(local, 'r1'), inR1);
  assert.notEqual(registry.forTarget(local, 'r2'), inR1);
  assert.notEqual(registry.forTarget(local), inR1);
  assert.equal(registry.size, 3);
});
