import { Random } from './src/providers/simulated/random';
const r = new Random(1); let s = 0; const n = 100000; for (let i = 0; i < n; i++) s += r.poisson(63.5); console.log(s / n);
