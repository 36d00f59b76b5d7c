import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import lockfile from 'proper-lockfile';

export interface FileLockOptions {
  /** How long to wait while another holder has the lock; default 60 s. */
  timeoutMs?: number;
  /**
   * A lock its holder has not refreshed for this long belongs to a holder that died, and is taken over; default 10 s.
   * The holder refreshes it every half of this, so an event loop blocked longer loses it (the operation then fails).
   */
  staleMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_STALE_MS = 10_000;
const RETRY_MS = 50;

/**
 * Runs the operation holding a cross-process lock on `file` (the file need not exist; the lock is the directory
 * `<file>.lock` beside it, made atomically by proper-lockfile). If the lock is lost while the operation runs, which
 * happens only when the holder stalls past staleMs, the operation's outcome is reported as a failure: another holder
 * may have acted at the same time, and the caller's retry must look again.
 */
export async function withFileLock<T>(file: string, operation: () => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  const held: { lost: Error | null } = { lost: null };
  const release = await acquire(file, options, (error) => {
    held.lost = error;
  });
  let result: T;
  try {
    result = await operation();
  } finally {
    // A lost lock is no longer ours to remove: it may be another holder's by now.
    if (!held.lost) {
      await release().catch((error: unknown) => {
        if (!held.lost) throw error;
      });
    }
  }
  if (held.lost) throw new Error(`the lock on ${file} was lost while the operation ran (${held.lost.message}); another process may have acted at the same time`, { cause: held.lost });
  return result;
}

async function acquire(file: string, options: FileLockOptions, onLost: (error: Error) => void): Promise<() => Promise<void>> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  await mkdir(path.dirname(file), { recursive: true });
  for (;;) {
    try {
      // The library's default for a lost lock throws from a timer, which would end the whole process.
      return await lockfile.lock(file, { realpath: false, stale: options.staleMs ?? DEFAULT_STALE_MS, onCompromised: onLost });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw new Error(`locking ${file} failed: ${(error as Error).message}`, { cause: error });
      if (Date.now() >= deadline) throw new Error(`${file} stayed locked by another operation for more than ${timeoutMs} ms`, { cause: error });
    }
    await sleep(RETRY_MS);
  }
}

/**
 * One operation per lock at a time: in this process in arrival order, by a queue per lock, and across processes by the
 * lock file. The queue keeps this process's callers fair and off the lock file's polling.
 */
export class LockQueue {
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(private readonly options: FileLockOptions = {}) {}

  run<T>(file: string, operation: () => Promise<T>): Promise<T> {
    const key = path.resolve(file);
    const previous = this.queues.get(key) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => withFileLock(key, operation, this.options));
    this.queues.set(key, next);
    void next
      .finally(() => {
        if (this.queues.get(key) === next) this.queues.delete(key);
      })
      .catch(() => undefined);
    return next;
  }
}
