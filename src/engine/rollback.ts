// Which version a rollback may return to, from a lane's memory of the versions that were stable in
// it. Pure, so the rule is tested with tables and the lane only applies it.

export interface StableVersion {
  version: string;
  /** A rollback left this version for a known-good one: the default skips it, a named rollback may still choose it. */
  rolledBackFrom?: boolean;
}

export type RollbackChoice<T extends StableVersion> = { target: T; allowed: string[] } | { refusal: string; allowed: string[] };

/**
 * `stable` is oldest first; its last entry is the version stable now. Allowed: every other version
 * that was stable, newest first. Without `to`, the newest of them that no rollback left (a second
 * rollback in a row must not return to the version the first one fled).
 */
export function rollbackTarget<T extends StableVersion>(stable: readonly T[], to?: string): RollbackChoice<T> {
  const current = stable.at(-1)?.version ?? null;
  const newestFirst = [...stable].reverse().filter((entry) => entry.version !== current);
  const allowed = [...new Set(newestFirst.map((entry) => entry.version))];
  if (to !== undefined) {
    if (to === current) return { refusal: `${to} is the stable version already`, allowed };
    const target = newestFirst.find((entry) => entry.version === to);
    if (!target) return { refusal: `${to} was never stable here${allowed.length ? '' : ', and no earlier version was either'}`, allowed };
    return { target, allowed };
  }
  const target = newestFirst.find((entry) => !entry.rolledBackFrom);
  if (!target) {
    return { refusal: current ? `no known-good version was stable before ${current}${allowed.length ? ' that no rollback left: name one in to' : ''}` : 'no version was ever stable here', allowed };
  }
  return { target, allowed };
}

/**
 * How long the previous stable instance stays warm after a promotion when the spec does not say.
 * Argo Rollouts keeps its old ReplicaSet 30 s (scaleDownDelaySeconds): long enough for automated
 * analysis, not for a person to notice a bad promotion (an alert's `for`, Alertmanager's group wait,
 * someone reading it). Ten minutes covers that, at the cost of one extra instance of the previous
 * version for ten minutes after every promotion.
 */
export const DEFAULT_WARM_WINDOW_MS = 600_000;

/**
 * The warm window of a spec: what it sets, else the default where an instance is a process to start
 * again (the local target), else none (the simulated fleet's deploys cost nothing). A spec recorded
 * before the rollback policy existed has none.
 */
export function warmWindowMs(spec: { rollback?: { warmWindow?: number | undefined }; target: { type: string } }): number {
  if (!spec.rollback) return 0;
  return spec.rollback.warmWindow ?? (spec.target.type === 'local' ? DEFAULT_WARM_WINDOW_MS : 0);
}
