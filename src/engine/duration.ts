// Pure and dependency-free: imported by workflows as well as by the spec schema.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/** Parses "250ms", "30s", "5m", "1h" (or a number of milliseconds) into milliseconds; null when malformed. */
export function parseDuration(input: string | number): number | null {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? Math.round(input) : null;
  const match = DURATION.exec(input.trim());
  if (!match) return null;
  const [, amount, unit] = match;
  return Math.round(Number(amount) * UNIT_MS[unit as string]!);
}

/** Formats milliseconds the way PromQL range selectors want them ("30s", "2m"). */
export function formatPromDuration(ms: number): string {
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}
