// Seeded randomness for the simulated traffic: a small fast generator and exact samplers for the
// counts the model draws (Poisson arrivals, binomial errors, multinomial latency buckets).
//
// Exactness matters here: the judgment benchmark measures false-alarm rates near 1%, which live in
// the tails, and a normal approximation distorts exactly those. So every sampler is exact:
// - small means use inversion (walk the probability mass function from 0), O(mean);
// - large means use Hörmann's transformed rejection with squeeze: PTRS for Poisson (mean >= 10;
//   W. Hörmann, "The transformed rejection method for generating Poisson random variables",
//   Insurance: Mathematics and Economics 12, 1993) and BTRS for the binomial (n·p >= 10; W. Hörmann,
//   "The generation of binomial random variates", J. Statist. Comput. Simul. 46, 1993), O(1). The
//   acceptance test compares with the exact log-probability (log-factorials), so the result follows
//   the exact distribution; the constants only shape the hat and so the speed.

/** sfc32 (Chris Doty-Humphrey's Small Fast Counting generator): 128 bits of state, passes PractRand. */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** Seeded by any list of 32-bit words (a seed, a hashed name, a counter): the same words give the same stream. */
  constructor(...words: number[]) {
    let h = 0x9e3779b9;
    const state = [0, 0, 0, 0];
    for (let i = 0; i < 4; i++) {
      for (const word of words) h = mix32(h ^ (word >>> 0));
      h = mix32(h + i + 0x6d2b79f5);
      state[i] = h;
    }
    [this.a, this.b, this.c, this.d] = state as [number, number, number, number];
    for (let i = 0; i < 12; i++) this.next32();
  }

  next32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in (0, 1), 53 bits: never exactly 0, so its logarithm is finite. */
  uniform(): number {
    const high = this.next32() >>> 5;
    const low = this.next32() >>> 6;
    return (high * 67108864 + low + 0.5) / 9007199254740992;
  }

  normal(): number {
    // Box-Muller; one of the pair is enough here.
    return Math.sqrt(-2 * Math.log(this.uniform())) * Math.cos(2 * Math.PI * this.uniform());
  }

  poisson(mean: number): number {
    if (!(mean > 0)) return 0;
    return mean < 10 ? poissonByInversion(this, mean) : poissonPtrs(this, mean);
  }

  binomial(n: number, p: number): number {
    if (n <= 0 || !(p > 0)) return 0;
    if (p >= 1) return n;
    // Draw the rarer outcome: the work and the hat both depend on n·min(p, 1-p).
    if (p > 0.5) return n - this.binomial(n, 1 - p);
    return n * p < 10 ? binomialByInversion(this, n, p) : binomialBtrs(this, n, p);
  }

  /**
   * Splits `n` over categories with probabilities `probabilities` (summing to 1) by conditional
   * binomials: exact, and as cheap as the number of categories once n is large.
   */
  multinomial(n: number, probabilities: readonly number[], into: number[] = new Array<number>(probabilities.length).fill(0)): number[] {
    let left = n;
    let mass = 1;
    const last = probabilities.length - 1;
    for (let i = 0; i < last && left > 0; i++) {
      const p = probabilities[i]!;
      if (p > 0) {
        const drawn = mass > p ? this.binomial(left, p / mass) : left;
        into[i] = into[i]! + drawn;
        left -= drawn;
      }
      mass -= p;
    }
    if (left > 0) into[last] = into[last]! + left;
    return into;
  }
}

/** murmur3's 32-bit finaliser: every input bit moves every output bit. */
export function mix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** FNV-1a of a string, for seeding by name (a service). */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const LOG_FACTORIAL_TABLE: number[] = (() => {
  const table = [0];
  for (let k = 1; k < 256; k++) table.push(table[k - 1]! + Math.log(k));
  return table;
})();
const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/** ln(k!): summed exactly below 256, Stirling's series above (error below 1e-15 there). */
export function logFactorial(k: number): number {
  if (k < 256) return LOG_FACTORIAL_TABLE[k]!;
  const x = k + 1;
  const x2 = x * x;
  return (x - 0.5) * Math.log(x) - x + HALF_LOG_2PI + (1 / 12 - (1 / 360 - 1 / (1260 * x2)) / x2) / x;
}

function poissonByInversion(random: Random, mean: number): number {
  let u = random.uniform();
  let k = 0;
  let p = Math.exp(-mean);
  while (u > p) {
    u -= p;
    k++;
    p *= mean / k;
    // Rounding can leave a sliver of u past the last representable mass: that far out, stop.
    if (p === 0 && k > mean) break;
  }
  return k;
}

function poissonPtrs(random: Random, mean: number): number {
  const logMean = Math.log(mean);
  const b = 0.931 + 2.53 * Math.sqrt(mean);
  const a = -0.059 + 0.02483 * b;
  const logInvAlpha = Math.log(1.1239 + 1.1328 / (b - 3.4));
  const vr = 0.9277 - 3.6224 / (b - 2);
  for (;;) {
    const u = random.uniform() - 0.5;
    const v = random.uniform();
    const us = 0.5 - Math.abs(u);
    const k = Math.floor(((2 * a) / us + b) * u + mean + 0.43);
    if (us >= 0.07 && v <= vr) return k;
    if (k < 0 || (us < 0.013 && v > us)) continue;
    if (Math.log(v) + logInvAlpha - Math.log(a / (us * us) + b) <= -mean + k * logMean - logFactorial(k)) return k;
  }
}

function binomialByInversion(random: Random, n: number, p: number): number {
  const q = 1 - p;
  const ratio = p / q;
  let u = random.uniform();
  let k = 0;
  let mass = Math.exp(n * Math.log1p(-p));
  while (u > mass) {
    u -= mass;
    k++;
    if (k > n) return n;
    mass *= (ratio * (n - k + 1)) / k;
    if (mass === 0 && k > n * p) break;
  }
  return k;
}

function binomialBtrs(random: Random, n: number, p: number): number {
  const q = 1 - p;
  const spq = Math.sqrt(n * p * q);
  const b = 1.15 + 2.53 * spq;
  const a = -0.0873 + 0.0248 * b + 0.01 * p;
  const c = n * p + 0.5;
  const alpha = (2.83 + 5.1 / b) * spq;
  const vr = 0.92 - 4.2 / b;
  const logRatio = Math.log(p / q);
  const mode = Math.floor((n + 1) * p);
  const logModeMass = -logFactorial(mode) - logFactorial(n - mode);
  for (;;) {
    const u = random.uniform() - 0.5;
    const v = random.uniform();
    const us = 0.5 - Math.abs(u);
    const k = Math.floor(((2 * a) / us + b) * u + c);
    if (us >= 0.07 && v <= vr) return k;
    if (k < 0 || k > n) continue;
    // Accept when the hat-scaled uniform lies under f(k)/f(mode), computed exactly in logs.
    const logHat = Math.log((v * alpha) / (a / (us * us) + b));
    if (logHat <= -logFactorial(k) - logFactorial(n - k) - logModeMass + (k - mode) * logRatio) return k;
  }
}
