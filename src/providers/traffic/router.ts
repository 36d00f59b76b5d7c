/** Traffic routing: how much of a service's traffic reaches the canary slot, and who reaches it first. */

export interface HeaderMatch {
  header: string;
  value: string;
}

/** The routes of one service: canary share in percent (stable gets the rest) and the internal-audience rule. */
export interface Routes {
  canaryWeight: number;
  internalAudience: HeaderMatch | null;
}

export const STABLE_ONLY: Routes = { canaryWeight: 0, internalAudience: null };

export interface TrafficRouter {
  readonly type: string;
  /** Applies the routes live, reads them back, and returns what was verified; throws if they do not match. */
  setRoutes(service: string, routes: Routes): Promise<Routes>;
  /** The routes the router is applying right now. */
  getRoutes(service: string): Promise<Routes>;
  /**
   * Waits until the router itself sees the slot's instance as healthy. A deployer's health check
   * passing does not mean the router has noticed yet, and a weight on a server it thinks is down is
   * traffic that silently stays on the other one. Routers without health checks leave it out.
   */
  awaitHealthy?(service: string, slot: 'stable' | 'canary'): Promise<void>;
  /**
   * Whether the router sees the slot's server as down right now, with its own words for why (a failed
   * health check, refused connections); null when it is up. A canary that crashed is hidden from
   * the counters when the router retries its requests elsewhere, so the judge asks the router too.
   */
  serverDown?(service: string, slot: 'stable' | 'canary'): Promise<string | null>;
  close?(): Promise<void>;
}

export function sameRoutes(a: Routes, b: Routes): boolean {
  return (
    a.canaryWeight === b.canaryWeight &&
    (a.internalAudience?.header ?? null) === (b.internalAudience?.header ?? null) &&
    (a.internalAudience?.value ?? null) === (b.internalAudience?.value ?? null)
  );
}
