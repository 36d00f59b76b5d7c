// The release's compensation as data: every side effect registers its undo when it succeeds (or,
// for traffic, just before: a half-applied weight must still be undone), and a rollback runs them
// newest first. Data rather than closures, so a release that continues as new carries its saga.
// Pure: the workflow runs the undos; the order and the point of no return are decided here.

export type Undo =
  /** Empties the canary slot. */
  | { kind: 'stop-canary' }
  /** All traffic back on the stable slot, internal audience cleared. */
  | { kind: 'reset-routes' }
  /** The previous version back in the stable slot (after the new one replaced it there). */
  | { kind: 'restore-stable'; version: string };

export interface SagaState {
  undos: Undo[];
  /**
   * Set once traffic switches to the new version in the stable slot: from then on nothing can serve
   * the old version, so undoing would be an outage. The release finishes forward instead.
   */
  pastPointOfNoReturn: boolean;
}

export const EMPTY_SAGA: SagaState = { undos: [], pastPointOfNoReturn: false };

/** Registers an undo once: a second registration of the same kind (traffic moves at every step) is kept as the first. */
export function register(saga: SagaState, undo: Undo): SagaState {
  if (saga.pastPointOfNoReturn) throw new Error(`cannot register ${undo.kind} past the point of no return`);
  if (saga.undos.some((u) => u.kind === undo.kind)) return saga;
  return { ...saga, undos: [...saga.undos, undo] };
}

export function has(saga: SagaState, kind: Undo['kind']): boolean {
  return saga.undos.some((u) => u.kind === kind);
}

/**
 * Crosses the point of no return: the undos are dropped, because the only safe direction is forward.
 * Called right before traffic moves to the new stable instance.
 */
export function pointOfNoReturn(_saga: SagaState): SagaState {
  return { undos: [], pastPointOfNoReturn: true };
}

/** The undos in the order a rollback runs them: newest first. */
export function compensationOrder(saga: SagaState): Undo[] {
  return [...saga.undos].reverse();
}

export function describeUndo(undo: Undo): string {
  return undo.kind === 'restore-stable' ? `restore-stable (${undo.version})` : undo.kind;
}
