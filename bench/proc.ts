// CPU and memory of other processes, read from Linux's /proc: the benchmarks measure workers, the
// Temporal server and PostgreSQL as separate processes, so their figures are their own.
import { readdirSync, readFileSync } from 'node:fs';

/** Linux reports CPU times in clock ticks; USER_HZ is 100 on every architecture Node runs on here. */
const TICKS_PER_SECOND = 100;

interface ProcStat {
  pid: number;
  ppid: number;
  /** Own user + system time, in seconds. */
  cpuSeconds: number;
  /** User + system time of children it has waited for, in seconds. */
  reapedChildrenCpuSeconds: number;
}

function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null; // gone
  }
  // The command name (field 2) may hold spaces and parentheses: the fields after it start past the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
  const at = (field: number) => Number(fields[field - 3]);
  return { pid, ppid: at(4), cpuSeconds: (at(14) + at(15)) / TICKS_PER_SECOND, reapedChildrenCpuSeconds: (at(16) + at(17)) / TICKS_PER_SECOND };
}

function allStats(): ProcStat[] {
  const stats: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat) stats.push(stat);
  }
  return stats;
}

/** The pids of `roots` and all their descendants alive now. */
export function processTree(roots: readonly number[]): number[] {
  const stats = allStats();
  const children = new Map<number, number[]>();
  for (const s of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s.pid]);
  const alive = new Set(stats.map((s) => s.pid));
  const tree = new Set<number>();
  const queue = [...roots];
  while (queue.length > 0) {
    const pid = queue.pop()!;
    if (tree.has(pid) || !alive.has(pid)) continue;
    tree.add(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return [...tree];
}

/**
 * CPU seconds used so far by `roots` and their descendants, counting descendants that have already
 * exited (folded into their parent's reaped-children time), so the difference of two readings is the
 * tree's CPU over the interval even when backends come and go (PostgreSQL forks one per connection).
 */
export function treeCpuSeconds(roots: readonly number[]): number {
  let total = 0;
  for (const pid of processTree(roots)) {
    const stat = readStat(pid);
    if (stat) total += stat.cpuSeconds + stat.reapedChildrenCpuSeconds;
  }
  return total;
}

/** Resident memory of one process now, and its peak, in MiB (0 when it is gone). */
export function residentMiB(pid: number): { rss: number; peak: number } {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return { rss: 0, peak: 0 };
  }
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

/** A CPU reading now, to be turned into a share of one core over the time since by `cpuPercentSince`. */
export interface CpuReading {
  at: number;
  seconds: number;
}

export function readCpu(roots: readonly number[]): CpuReading {
  return { at: performance.now(), seconds: treeCpuSeconds(roots) };
}

/** CPU of `roots` since `start`, as a percentage of one core (200% is both cores of this machine). */
export function cpuPercentSince(start: CpuReading, roots: readonly number[]): number {
  const end = readCpu(roots);
  return ((end.seconds - start.seconds) / ((end.at - start.at) / 1_000)) * 100;
}
