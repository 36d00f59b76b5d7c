// Which Alertmanager alerts fire, as the lane of a service remembers them. Pure and deterministic:
// the lane workflow keeps one of these, so every API replica, and an API restarted, sees the same
// memory, and it survives the lane's continue-as-new.

export interface Sighting {
  status: 'firing' | 'resolved';
  /** Epoch milliseconds. */
  startsAt: number;
  /** Epoch milliseconds; Infinity while an alert fires with no end announced. */
  endsAt: number;
  service: string;
  environment: string | undefined;
}

/** A sighting as it crosses a payload boundary (JSON has no Infinity): endsAt null for "no end". */
export interface SightingRecord extends Omit<Sighting, 'endsAt' | 'environment'> {
  fingerprint: string;
  endsAt: number | null;
  environment?: string;
}

/**
 * The alerts seen, by fingerprint: to tell a late notification from a new one, and whether another
 * alert still fires. Bounded: the oldest sightings are forgotten first; forgetting a firing alert
 * can only let a release resume sooner after its own alert resolves, never start one.
 */
export class AlertTracker {
  private readonly seen = new Map<string, Sighting>();
  constructor(
    private readonly capacity = 10_000,
    records: readonly SightingRecord[] = [],
  ) {
    for (const { fingerprint, endsAt, environment, ...rest } of records) {
      this.seen.set(fingerprint, { ...rest, endsAt: endsAt ?? Number.POSITIVE_INFINITY, environment });
    }
  }

  /** Records the notification; false when it is older than what was already seen for that alert. */
  observe(fingerprint: string, sighting: Sighting): boolean {
    const known = this.seen.get(fingerprint);
    if (known) {
      // A firing notice for an episode that already resolved, or a resolution of an older episode than the one firing now.
      if (sighting.status === 'firing' && known.status === 'resolved' && known.endsAt >= sighting.startsAt) return false;
      if (sighting.status === 'resolved' && known.status === 'firing' && known.startsAt > sighting.startsAt) return false;
    }
    this.seen.delete(fingerprint);
    this.seen.set(fingerprint, sighting);
    while (this.seen.size > this.capacity) this.seen.delete(this.seen.keys().next().value as string);
    return true;
  }

  /** Other alerts still firing for this service (and environment, when both name one). */
  firingFor(service: string, environment: string, except: string): string[] {
    const firing: string[] = [];
    for (const [fingerprint, s] of this.seen) {
      if (fingerprint === except || s.status !== 'firing' || s.service !== service) continue;
      if (s.environment !== undefined && s.environment !== environment) continue;
      firing.push(fingerprint);
    }
    return firing;
  }

  /** What a successor must be given to know the same (continue-as-new). */
  records(): SightingRecord[] {
    return [...this.seen].map(([fingerprint, { endsAt, environment, ...rest }]) => ({
      fingerprint,
      ...rest,
      endsAt: Number.isFinite(endsAt) ? endsAt : null,
      ...(environment !== undefined ? { environment } : {}),
    }));
  }
}
