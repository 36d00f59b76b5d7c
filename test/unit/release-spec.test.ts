import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/paths';
import { describe, test } from 'node:test';
import { InvalidSpecError, parseReleaseSpec, validateReleaseSpec } from '../../src/spec/parse';

const digest = `sha256:${'a'.repeat(64)}`;

function problems(input: unknown): Array<{ field: string; message: string }> {
  try {
    validateReleaseSpec(input);
  } catch (error) {
    assert.ok(error instanceof InvalidSpecError);
    return error.problems;
  }
  assert.fail('expected the spec to be rejected');
}

describe('release spec', () => {
  test('a minimal spec gets the brief four phases and every default', () => {
    const spec = validateReleaseSpec({ service: 'checkout', version: digest });
    assert.equal(spec.environment, 'production');
    assert.deepEqual(spec.strategy.steps.map((s) => [s.name, s.phase, s.weight]), [
      ['synthetic', 'synthetic', 0],
      ['canary-internal', 'canary', 0],
      ['canary-5', 'canary', 5],
      ['ramp-10', 'ramp', 10],
      ['ramp-50', 'ramp', 50],
      ['full', 'full', 100],
    ]);
    assert.equal(spec.strategy.steps[0]!.load?.rate, 100);
    assert.deepEqual(spec.strategy.steps[1]!.internalAudience, { header: 'x-rampart-audience', value: 'internal' });
    assert.equal(spec.strategy.steps[3]!.bake, 300_000);
    const [errors, latency] = spec.analysis.checks;
    assert.ok(errors?.kind === 'ratio' && errors.maxIncreaseOverStable === 0.02 && errors.max === 0.05);
    assert.ok(latency?.kind === 'latency' && latency.maxRatioOverStable === 1.25 && latency.quantile === 0.95);
    assert.equal(spec.target.type, 'simulated');
  });

  for (const version of ['latest', 'v1.2.3', 'main', 'registry/app:1.0']) {
    test(`the mutable tag "${version}" is refused with the reason`, () => {
      const [problem] = problems({ service: 'checkout', version });
      assert.equal(problem!.field, 'version');
      assert.match(problem!.message, /not an immutable version.*mutable/);
    });
  }

  for (const version of [digest, `ghcr.io/acme/app@${digest}`, 'abc1234', 'a'.repeat(40)]) {
    test(`the immutable reference ${version.slice(0, 24)}… is accepted`, () => {
      assert.equal(validateReleaseSpec({ service: 'checkout', version }).version, version);
    });
  }

  test('a bad field is named with its path', () => {
    const found = problems({ service: 'checkout', version: digest, strategy: { steps: [{ name: 'a', phase: 'canary', weight: 150 }] } });
    assert.ok(found.some((p) => p.field === 'strategy.steps.0.weight'), JSON.stringify(found));
  });

  test('unknown fields are refused, not ignored', () => {
    const found = problems({ service: 'checkout', version: digest, colour: 'blue' });
    assert.ok(found.some((p) => /colour/.test(p.message)), JSON.stringify(found));
  });

  test('the strategy must end at 100% and never lower the weight', () => {
    const found = problems({
      service: 'checkout',
      version: digest,
      strategy: { steps: [{ name: 'a', phase: 'ramp', weight: 50 }, { name: 'b', phase: 'ramp', weight: 10 }] },
    });
    assert.ok(found.some((p) => p.field === 'strategy.steps.1.weight' && /100%/.test(p.message)));
    assert.ok(found.some((p) => p.field === 'strategy.steps.1.weight' && /go down/.test(p.message)));
  });

  test('a synthetic step takes no traffic and a load test belongs to it', () => {
    const found = problems({
      service: 'checkout',
      version: digest,
      strategy: { steps: [{ name: 's', phase: 'synthetic', weight: 5 }, { name: 'f', phase: 'full', weight: 100, load: {} }] },
    });
    assert.ok(found.some((p) => p.field === 'strategy.steps.0.weight'));
    assert.ok(found.some((p) => p.field === 'strategy.steps.1.load'));
  });

  test('a malformed duration names the field and the form', () => {
    const found = problems({ service: 'checkout', version: digest, analysis: { interval: 'soon' } });
    assert.equal(found[0]!.field, 'analysis.interval');
    assert.match(found[0]!.message, /like 250ms, 30s, 5m or 1h/);
  });

  test('YAML and JSON documents parse to the same spec', () => {
    const yaml = `service: checkout\nversion: "${digest}"\nstrategy:\n  steps:\n    - {name: canary, phase: canary, weight: 5, bake: 30s}\n    - {name: full, phase: full, weight: 100}\n`;
    const json = JSON.stringify({ service: 'checkout', version: digest, strategy: { steps: [{ name: 'canary', phase: 'canary', weight: 5, bake: '30s' }, { name: 'full', phase: 'full', weight: 100 }] } });
    assert.deepEqual(parseReleaseSpec(yaml), parseReleaseSpec(json));
    assert.equal(parseReleaseSpec(yaml).strategy.steps[0]!.bake, 30_000);
  });

  test('a document that is not YAML is refused as a whole', () => {
    assert.throws(() => parseReleaseSpec('service: [unclosed'), (error: InvalidSpecError) => error.problems[0]!.field === '(document)');
    assert.throws(() => parseReleaseSpec('- a list'), /a release spec is a mapping/);
  });
});

describe('the example specs', () => {
  const dir = join(PROJECT_ROOT, 'examples', 'specs');
  for (const file of readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f))) {
    test(`${file} is a valid release spec`, () => {
      assert.doesNotThrow(() => parseReleaseSpec(readFileSync(join(dir, file), 'utf8')));
    });
  }
});
