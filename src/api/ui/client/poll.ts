import { useEffect, useState } from 'preact/hooks';

/** Every this many ms the views ask again: the API has no change feed or ETags, and a status query is cheap. */
export const POLL_MS = 2_000;

export interface Polled<T> {
  data: T | null;
  error: string | null;
  refresh(): void;
}

/** Loads now, then again every POLL_MS while the view is shown; the key restarts it (another filter, another release). */
export function usePoll<T>(load: () => Promise<T>, key: string, every = POLL_MS): Polled<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const run = async () => {
      try {
        const value = await load();
        if (!stopped) {
          setData(value);
          setError(null);
        }
      } catch (e) {
        if (!stopped) setError((e as Error).message);
      }
      if (!stopped) timer = window.setTimeout(() => void run(), every);
    };
    void run();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [key, tick]);

  return { data, error, refresh: () => setTick((t) => t + 1) };
}
