import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { histogramQuantile, histogramTotal } from '../../src/engine/statistics';
import { SimulatedDeployer, SimulatedFleet, SimulatedLoadGenerator, SimulatedMetrics, SimulatedRouter, queryWindowSeconds } from '../../src/providers/simulated/fleet';
import { logFactorial, Random } from '../../src/providers/simulated/random';
import {
  crashed,
  emptyWindow,
  errorCounts,
  latencyHistogram,
  normalCdf,
  simulateWindow,
  trackRates,
  type TrafficSetting,
} from '../../src/providers/simulated/traffic';
import { loadTestSchema, simulatedTargetSchema } from '../../src/spec/release-spec';
import { waitFor } from '../helpers/temporal';

const healthy = (errorRate: number, latencyMs = 40) => ({ errorRate, latencyMs, crashesAt: null });

function setting(overrides: Partial<TrafficSetting> = {}): TrafficSetting {
  return {
    trafficPerSecond: 10,
    internalShare: 0.05,
    routes: { canaryWeight: 5, internalAudience: true },
    canary: healthy(0.02),
    stable: healthy(0.01),
    ...overrides,
  };
}

/** Sample mean and variance of `n` draws. */
function moments(n: number, draw: () => number): { mean: number; variance: number } {
  let sum = 0;
  let squares = 0;
  for (let i = 0; i < n; i++) {
    const x = draw();
    sum += x;
    squares += x * x;
  }
  const mean = sum / n;
  return { mean, variance: (squares - n * mean * mean) / (n - 1) };
}

/**
 * Checks sample moments against closed-form ones within 4.5 standard errors (CLT): the standard error
 * of the mean is sqrt(variance / n), of the sample variance sqrt((mu4 - variance^2) / n).
 */
function assertMoments(name: string, observed: { mean: number; variance: number }, expected: { mean: number; variance: number; mu4: number }, n: number): void {
  const seMean = Math.sqrt(expected.variance / n);
  const seVariance = Math.sqrt((expected.mu4 - expected.variance ** 2) / n);
  assert.ok(Math.abs(observed.mean - expected.mean) < 4.5 * seMean, `${name}: mean ${observed.mean}, expected ${expected.mean} ± ${4.5 * seMean}`);
  assert.ok(
    Math.abs(observed.variance - expected.variance) < 4.5 * seVariance,
    `${name}: variance ${observed.variance}, expected ${expected.variance} ± ${4.5 * seVariance}`,
  );
}

/** Central moments of Poisson(l): variance l, fourth central moment l(1 + 3l). */
const poissonMoments = (l: number) => ({ mean: l, variance: l, mu4: l * (1 + 3 * l) });
/** Binomial(n, p): variance npq, fourth central moment npq(1 + 3(n - 2)pq). */
const binomialMoments = (n: number, p: number) => {
  const pq = p * (1 - p);
  return { mean: n * p, variance: n * pq, mu4: n * pq * (1 + 3 * (n - 2) * pq) };
};

describe('samplers', () => {
  const N = 40_000;
  for (const mean of [0.4, 7, 10, 63.5, 4_000]) {
    test(`Poisson(${mean}) has the Poisson mean and variance`, () => {
      const random = new Random(1, mean * 100);
      assertMoments(`Poisson(${mean})`, moments(N, () => random.poisson(mean)), poissonMoments(mean), N);
    });
  }
  for (const [n, p] of [[40, 0.05], [200, 0.03], [1_000, 0.5], [5_000, 0.97], [250_000, 0.012]] as const) {
    test(`Binomial(${n}, ${p}) has the binomial mean and variance`, () => {
      const random = new Random(2, n, p * 1000);
      assertMoments(`Binomial(${n}, ${p})`, moments(N, () => random.binomial(n, p)), binomialMoments(n, p), N);
    });
  }

  test('the rejection samplers put the exact mass in the tails', () => {
    // P(X >= mean + 2.5 sd) from the exact probability mass function, against the share drawn.
    const cases = [
      { name: 'Poisson(30)', draw: (r: Random) => r.poisson(30), logMass: (k: number) => -30 + k * Math.log(30) - logFactorial(k), from: 44 },
      {
        name: 'Binomial(3000, 0.01)',
        draw: (r: Random) => r.binomial(3_000, 0.01),
        logMass: (k: number) => logFactorial(3_000) - logFactorial(k) - logFactorial(3_000 - k) + k * Math.log(0.01) + (3_000 - k) * Math.log(0.99),
        from: 44,
      },
    ];
    for (const { name, draw, logMass, from } of cases) {
      let tail = 0;
      for (let k = from; k < from + 400; k++) tail += Math.exp(logMass(k));
      const random = new Random(3, from);
      const n = 200_000;
      let hits = 0;
      for (let i = 0; i < n; i++) if (draw(random) >= from) hits++;
      const se = Math.sqrt((tail * (1 - tail)) / n);
      assert.ok(Math.abs(hits / n - tail) < 4.5 * se, `${name}: P(X >= ${from}) drawn ${hits / n}, exact ${tail}`);
    }
  });

  test('the normal CDF matches tabulated values', () => {
    for (const [z, phi] of [[0, 0.5], [1, 0.8413447461], [1.959963985, 0.975], [-3, 0.0013498980], [-6, 9.8658765e-10]] as const) {
      assert.ok(Math.abs(normalCdf(z) - phi) <= 2e-7 * Math.max(phi, 1e-3), `Phi(${z}) = ${normalCdf(z)}, expected ${phi}`);
    }
  });
});

describe('traffic model', () => {
  test('the same seed draws the same traffic; another seed other traffic', () => {
    const draw = (seed: number) => simulateWindow(new Random(seed), setting({ trafficPerSecond: 300 }), 0, 60);
    assert.deepEqual(draw(7), draw(7));
    assert.notDeepEqual(draw(7), draw(8));
  });

  test('the canary gets internal users when the audience is on, plus its weight of the rest', () => {
    assert.deepEqual(trackRates(setting({ trafficPerSecond: 100, routes: { canaryWeight: 10, internalAudience: true } })), { canary: 100 * (0.05 + 0.95 * 0.1), stable: 100 * 0.95 * 0.9 });
    assert.deepEqual(trackRates(setting({ trafficPerSecond: 100, routes: { canaryWeight: 10, internalAudience: false } })), { canary: 10, stable: 90 });
    assert.deepEqual(trackRates(setting({ trafficPerSecond: 100, routes: { canaryWeight: 0, internalAudience: false } })), { canary: 0, stable: 100 });
    assert.deepEqual(trackRates(setting({ trafficPerSecond: 100, canary: null })), { canary: 0, stable: 100 });
  });

  test('per-window counts follow the model: Poisson requests, and errors thinned from them', () => {
    // 10 req/s, 5% internal with the audience on, weight 5%: the canary gets 10 x (0.05 + 0.95 x 0.05) = 0.975 req/s.
    const n = 20_000;
    const random = new Random(11);
    const requests: number[] = [];
    const errors: number[] = [];
    for (let i = 0; i < n; i++) {
      const w = simulateWindow(random, setting(), i * 10, i * 10 + 10, emptyWindow(), { latencies: false });
      requests.push(w.canary.answered);
      errors.push(w.canary.errors);
    }
    const canaryPerWindow = 10 * (0.05 + 0.95 * 0.05) * 10;
    assertMoments('canary requests', moments(n, () => requests.pop()!), poissonMoments(canaryPerWindow), n);
    // A Poisson number of requests each failing with probability p: the errors are Poisson(rate x p).
    assertMoments('canary errors', moments(n, () => errors.pop()!), poissonMoments(canaryPerWindow * 0.02), n);
  });

  test('at a thousand requests a second the counts still follow the model (the rejection samplers)', () => {
    const n = 5_000;
    const random = new Random(12);
    const big = setting({ trafficPerSecond: 1_000, routes: { canaryWeight: 50, internalAudience: false } });
    const answered: number[] = [];
    const errors: number[] = [];
    for (let i = 0; i < n; i++) {
      const w = simulateWindow(random, big, i, i + 10, emptyWindow(), { latencies: false });
      answered.push(w.stable.answered);
      errors.push(w.stable.errors);
    }
    assertMoments('stable requests', moments(n, () => answered.pop()!), poissonMoments(5_000), n);
    assertMoments('stable errors', moments(n, () => errors.pop()!), poissonMoments(50), n);
  });

  test('a crashed canary answers nothing from its crash on: every request routed to it is refused', () => {
    const crash = setting({ trafficPerSecond: 200, routes: { canaryWeight: 50, internalAudience: false }, canary: { errorRate: 0, latencyMs: 40, crashesAt: 30 } });
    const before = simulateWindow(new Random(5), crash, 0, 30);
    const after = simulateWindow(new Random(5), crash, 30, 60);
    assert.equal(before.canary.refused, 0);
    assert.ok(before.canary.answered > 2_500, `the canary answered before its crash (${before.canary.answered})`);
    assert.equal(after.canary.answered, 0);
    assert.ok(after.canary.refused > 2_500, `requests to it were refused (${after.canary.refused})`);
    assert.deepEqual(errorCounts(after.canary), { events: after.canary.refused, total: after.canary.refused });
    assert.ok(after.stable.answered > 2_500 && after.stable.refused === 0, 'stable kept answering');
    const straddling = simulateWindow(new Random(6), crash, 20, 40);
    assert.ok(straddling.canary.answered > 0 && straddling.canary.refused > 0, 'a window across the crash has both');
    assert.equal(crashed(crash.canary, 29.9), false);
    assert.equal(crashed(crash.canary, 30), true);
  });

  test('latency histograms count every answered request, spread log-normally around the median', () => {
    const w = simulateWindow(new Random(9), setting({ trafficPerSecond: 2_000, routes: { canaryWeight: 50, internalAudience: false }, canary: healthy(0.01, 40), stable: healthy(0.01, 80) }), 0, 30);
    for (const track of [w.canary, w.stable]) {
      const histogram = latencyHistogram(track);
      assert.equal(track.latency.reduce((a, b) => a + b, 0), track.answered);
      assert.equal(histogramTotal(histogram), track.answered);
      assert.equal(histogram.buckets.at(-1)!.le, Number.POSITIVE_INFINITY);
    }
    // 40 ms is a bucket bound: about half the requests at or under it; p95 of a log-normal is median x e^(1.645 sigma), 1.64x.
    const canary = latencyHistogram(w.canary);
    const underMedian = canary.buckets.find((b) => b.le === 0.04)!.count / w.canary.answered;
    assert.ok(Math.abs(underMedian - 0.5) < 0.01, `share at or under the median ${underMedian}`);
    const p95 = histogramQuantile(canary, 0.95)!;
    assert.ok(Math.abs(p95 / 0.04 - Math.exp(1.645 * 0.3)) < 0.06, `p95 ${p95}`);
    assert.ok(histogramQuantile(latencyHistogram(w.stable), 0.5)! > 0.07, 'the slower version is slower');
  });
});

describe('simulated fleet', () => {
  const target = simulatedTargetSchema.parse({ type: 'simulated', trafficPerSecond: 400, health: { bbbbbbb: { errorRate: 0.5, crashAfter: '300ms' } } });

  async function rig(service: string) {
    const fleet = new SimulatedFleet();
    const deployer = new SimulatedDeployer(fleet, target);
    const router = new SimulatedRouter(fleet, target);
    const metrics = new SimulatedMetrics(fleet, target);
    await deployer.deploy(service, 'canary', 'bbbbbbb');
    return { fleet, router, metrics };
  }

  test('looks are consistent and cumulative: the same window is the same requests, and windows add up', async () => {
    const { fleet, router } = await rig('looks');
    await router.setRoutes('looks', { canaryWeight: 50, internalAudience: null });
    const routedAt = Date.now();
    // The model draws traffic for wall-clock time: wait (with a deadline) until 1.2 s under the new routes have passed.
    await waitFor('1.2 s under the new routes', async () => Date.now() >= routedAt + 1_200, 5_000, 50);
    // Across the route change: before it stable took everything, after it half went to the canary.
    const start = Math.floor(routedAt / 100) * 100 - 900;
    const end = Math.floor(Date.now() / 100) * 100;
    const whole = fleet.traffic('looks', target, start, end);
    assert.ok(whole.canary.answered > 0 && whole.stable.answered > whole.canary.answered, JSON.stringify(whole.canary));
    assert.deepEqual(fleet.traffic('looks', target, start, end), whole, 'asked twice, answered the same');
    const fresh = new SimulatedFleet();
    fresh.service('looks', target).timeline = fleet.service('looks', target).timeline;
    fresh.service('looks', target).firstUserTraffic = fleet.service('looks', target).firstUserTraffic;
    assert.deepEqual(fresh.traffic('looks', target, start, end), whole, 'another process with the same timeline draws the same ticks');
    const parts = fleet.traffic('looks', target, start, start + 700);
    const rest = fleet.traffic('looks', target, start + 700, end);
    assert.equal(parts.stable.answered + rest.stable.answered, whole.stable.answered);
    assert.equal(parts.canary.errors + rest.canary.errors, whole.canary.errors);
  });

  test('metrics read the window of the query, and count what the routes sent to each track', async () => {
    const { router, metrics } = await rig('metrics');
    await router.setRoutes('metrics', { canaryWeight: 0, internalAudience: null });
    const ask = { check: 'error-rate', service: 'metrics', environment: 'production', version: 'bbbbbbb', track: 'canary' as const, events: '', total: 'sum(increase(x[1s]))' };
    assert.deepEqual(await metrics.counts(ask), { events: 0, total: 0 }, 'weight 0: no canary traffic');
    await router.setRoutes('metrics', { canaryWeight: 100, internalAudience: null });
    const deadline = Date.now() + 5_000;
    let counts = await metrics.counts(ask);
    while ((counts?.total ?? 0) < 100 && Date.now() < deadline) {
      await sleep(50);
      counts = await metrics.counts(ask);
    }
    assert.ok(counts && counts.total >= 100 && counts.events > 0, `the canary took the traffic: ${JSON.stringify(counts)}`);
    const histogram = await metrics.histogram({ ...ask, buckets: 'sum by (le) (increase(h[1s]))' });
    assert.ok(histogram && histogramTotal(histogram) > 0);
    assert.equal(queryWindowSeconds('sum(increase(a[1m30s])) / sum(rate(b[90s:10s]))'), 90);
    assert.equal(queryWindowSeconds('up'), null);
  });

  test('a canary that crashes after its first user traffic is refused and reported down', async () => {
    const { fleet, router } = await rig('crash');
    assert.equal(await router.serverDown('crash', 'canary'), null, 'deployed but no users yet: no crash clock');
    await router.setRoutes('crash', { canaryWeight: 50, internalAudience: null });
    const routedAt = fleet.service('crash').firstUserTraffic!.bbbbbbb!;
    const deadline = Date.now() + 5_000;
    let down = await router.serverDown('crash', 'canary');
    while (down === null && Date.now() < deadline) {
      await sleep(25);
      down = await router.serverDown('crash', 'canary');
    }
    assert.match(down ?? '', /DOWN: connection refused/);
    assert.ok(Date.now() >= routedAt + 300);
    await waitFor('the window after the crash to lie in the past', async () => Date.now() >= routedAt + 1_400, 5_000, 50);
    const after = fleet.traffic('crash', target, Math.ceil((routedAt + 300) / 100) * 100, routedAt + 1_300);
    assert.equal(after.canary.answered, 0);
    assert.ok(after.canary.refused > 0);
    assert.equal(await router.serverDown('crash', 'stable'), null);
  });

  test('the load generator returns a histogram of every request and honours an abort', async () => {
    const load = loadTestSchema.parse({ rate: 100, duration: '20s' });
    const generator = new SimulatedLoadGenerator(target);
    const request = { service: 'load', version: 'bbbbbbb', track: 'canary' as const, load };
    const result = await generator.run(request);
    assert.equal(result.requests, 2_000);
    assert.equal(histogramTotal(result.histogram), 2_000);
    assert.ok(Math.abs(result.errorRate - 0.5) < 0.05);
    assert.deepEqual(await generator.run(request), result, 'seeded: the same run answers the same');
    await assert.rejects(generator.run(request, undefined, AbortSignal.abort()), /abort/i);
  });
});
