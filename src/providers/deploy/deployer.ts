/**
 * Deployers run versions in two fixed slots per service, as Flagger does with primary and canary:
 * the canary slot takes the new version; at full rollout the stable slot is moved to it and the canary
 * slot emptied. Every call is idempotent: a retried activity finds what it started.
 */

export type Slot = 'stable' | 'canary';

export interface SlotState {
  stable: string | null;
  canary: string | null;
}

export interface Deployer {
  readonly type: string;
  /** Runs `version` in `slot`, replacing whatever ran there, and returns once it is healthy. */
  deploy(service: string, slot: Slot, version: string): Promise<void>;
  /** Stops whatever runs in `slot`; nothing running is not an error. */
  stop(service: string, slot: Slot): Promise<void>;
  /** Which version runs in each slot. */
  slots(service: string): Promise<SlotState>;
  close?(): Promise<void>;
}
