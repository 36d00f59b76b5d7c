// The four DORA keys, computed from the releases' own records (Temporal visibility and memo), not
// from a second store. Pure, so the definitions below are tested with tables.

import type { Outcome } from './release-state';

export interface ReleaseRecord {
  service: string;
  environment: string;
  version: string;
  /** null while the release is in flight. */
  outcome: Outcome | null;
  startTime: string;
  closeTime: string | null;
  commitTime: string | null;
  timeToSafeMs: number | null;
  drill: boolean;
  /** A rollback of a promoted release; one that failed or was superseded changed nothing, and counts as nothing. */
  rollback?: boolean;
  /** A release or rollback in one region of a rollout: the rollout is the deployment, this is its detail. */
  region?: string;
}

/** Per region of a service's rollouts: its releases that promoted, and those that failed (rolled back, aborted) or were rolled back. */
export interface RegionDetail {
  deployments: number;
  failures: number;
}

export interface Summary {
  count: number;
  medianSeconds: number;
  meanSeconds: number;
}

export interface DoraFigures {
  service: string;
  environment: string;
  window: { from: string; to: string; days: number };
  /** Releases that reached 100% in the window. */
  deployments: number;
  /** Deployments per day over the window. */
  deploymentFrequencyPerDay: number;
  /** Commit time to 100%, over deployments that carried a commit time. */
  leadTimeForChanges: Summary | null;
  /**
   * Failed changes over changes: releases rolled back by the engine or aborted, plus promoted releases
   * later rolled back to a known-good version, over deployed plus failed releases (a rolled-back
   * promotion is already among the deployed); at most 1; null with no change.
   */
  changeFailureRate: number | null;
  failedDeployments: number;
  /**
   * Failed release: from the decision to roll back to all traffic verified back on stable. Rollback of a
   * promoted release: from the rollback command to all traffic on the known-good version.
   */
  failedDeploymentRecoveryTime: Summary | null;
  /** Set for a service released in rollouts across regions: each rollout is one deployment above, and here is each region's share. */
  regions?: Record<string, RegionDetail>;
}

const FAILED: readonly Outcome[] = ['rolled-back', 'aborted'];

function summarize(seconds: number[]): Summary | null {
  if (seconds.length === 0) return null;
  const sorted = [...seconds].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { count: sorted.length, medianSeconds: median, meanSeconds: sorted.reduce((a, b) => a + b, 0) / sorted.length };
}

/**
 * Figures per service and environment for releases that closed within [from, to). Drills, superseded
 * and cancelled releases are no deployments and no failures: they say nothing about a change's quality.
 */
export function computeDora(records: readonly ReleaseRecord[], window: { from: Date; to: Date }): DoraFigures[] {
  const days = (window.to.getTime() - window.from.getTime()) / 86_400_000;
  const groups = new Map<string, ReleaseRecord[]>();
  for (const record of records) {
    if (record.drill || record.closeTime === null) continue;
    if (record.rollback && record.outcome !== 'rolled-back-to') continue;
    const closed = Date.parse(record.closeTime);
    if (closed < window.from.getTime() || closed >= window.to.getTime()) continue;
    const key = `${record.service}\u0000${record.environment}`;
    groups.set(key, [...(groups.get(key) ?? []), record]);
  }
  return [...groups.values()]
    .map((all) => {
      // One rollout is one deployment of the service (its own record); its regions' releases are detail.
      const group = all.filter((r) => r.region === undefined);
      const regional = all.filter((r) => r.region !== undefined);
      const regions: Record<string, RegionDetail> = {};
      for (const r of regional) {
        const detail = (regions[r.region!] ??= { deployments: 0, failures: 0 });
        if (r.outcome === 'promoted') detail.deployments += 1;
        else if (r.outcome === 'rolled-back-to' || (r.outcome !== null && FAILED.includes(r.outcome))) detail.failures += 1;
      }
      const deployed = group.filter((r) => r.outcome === 'promoted');
      const failed = group.filter((r) => r.outcome !== null && FAILED.includes(r.outcome));
      // Each is the recovery from a promoted change that failed in production.
      const rollbacks = group.filter((r) => r.outcome === 'rolled-back-to');
      const changes = deployed.length + failed.length;
      const failures = failed.length + rollbacks.length;
      const leadTimes = deployed.filter((r) => r.commitTime).map((r) => (Date.parse(r.closeTime!) - Date.parse(r.commitTime!)) / 1_000);
      const recoveries = [...failed, ...rollbacks].filter((r) => r.timeToSafeMs !== null).map((r) => r.timeToSafeMs! / 1_000);
      return {
        service: all[0]!.service,
        environment: all[0]!.environment,
        window: { from: window.from.toISOString(), to: window.to.toISOString(), days },
        deployments: deployed.length,
        deploymentFrequencyPerDay: days > 0 ? deployed.length / days : 0,
        leadTimeForChanges: summarize(leadTimes),
        // A window may hold the rollback but not the promotion it undid: the rate still cannot pass 1.
        changeFailureRate: changes > 0 ? Math.min(1, failures / changes) : failures > 0 ? 1 : null,
        failedDeployments: failures,
        failedDeploymentRecoveryTime: summarize(recoveries),
        ...(regional.length ? { regions } : {}),
      };
    })
    .sort((a, b) => a.service.localeCompare(b.service) || a.environment.localeCompare(b.environment));
}
