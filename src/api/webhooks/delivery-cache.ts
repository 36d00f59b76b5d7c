/**
 * Remembers recent webhook deliveries by their delivery id, so a redelivery gets the first answer
 * without reaching Temporal, and concurrent copies of one delivery share one attempt. It lives in
 * one API process and forgets the oldest ids first: it is a shortcut, not the guarantee. The
 * guarantee is the service's lane, which answers a version it has seen with the existing release,
 * and Temporal itself, which never reuses a release's workflow id.
 */
export class DeliveryCache<T> {
  private readonly entries = new Map<string, Promise<T>>();

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * The answer for this delivery: the remembered one (replayed: true) or a fresh one from `attempt`.
   * A failed attempt is forgotten, so the sender's retry tries again.
   */
  async run(deliveryId: string | undefined, attempt: () => Promise<T>): Promise<{ value: T; replayed: boolean }> {
    if (!deliveryId || this.capacity === 0) return { value: await attempt(), replayed: false };
    const known = this.entries.get(deliveryId);
    if (known) {
      // Refresh its place: recently seen ids are the ones most likely to come again.
      this.entries.delete(deliveryId);
      this.entries.set(deliveryId, known);
      return { value: await known, replayed: true };
    }
    const pending = attempt();
    this.entries.set(deliveryId, pending);
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    try {
      return { value: await pending, replayed: false };
    } catch (error) {
      if (this.entries.get(deliveryId) === pending) this.entries.delete(deliveryId);
      throw error;
    }
  }
}
