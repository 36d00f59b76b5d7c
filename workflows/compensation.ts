// Unwinding a saga, shared by the release and the rollback workflows: every undo runs, newest first,
// and one that fails is recorded and passed over so the others still run (each undo is idempotent and
// retried by its activity options before it gets here).
import type { ReleaseActivities, ReleaseRef } from '../activities';
import type { RoutesView } from '../src/engine/release-state';
import { compensationOrder, describeUndo, type SagaState, type Undo } from '../src/engine/saga';

/** The activity proxies undos run through: short attempts for routes and slots, a deploy's time to restore stable. */
export interface UndoActivities {
  undo: Pick<ReleaseActivities, 'stopCanary' | 'resetRoutes'>;
  undoDeployment: Pick<ReleaseActivities, 'restoreStable'>;
}

/** Runs one undo; `onRoutes` hears the routes a reset left, for the status and the routes event. */
export async function runUndoActivity(next: Undo, ref: ReleaseRef, activities: UndoActivities, onRoutes: (routes: RoutesView) => void): Promise<void> {
  switch (next.kind) {
    case 'stop-canary':
      await activities.undo.stopCanary(ref);
      return;
    case 'reset-routes':
      onRoutes(await activities.undo.resetRoutes(ref));
      return;
    case 'restore-stable':
      await activities.undoDeployment.restoreStable(ref, next.version);
      return;
  }
}

export async function unwind(
  saga: SagaState,
  runUndo: (undo: Undo) => Promise<void>,
  record: (event: 'undo' | 'undo-failed', reason: string) => void,
): Promise<string[]> {
  const failures: string[] = [];
  for (const next of compensationOrder(saga)) {
    try {
      await runUndo(next);
      record('undo', describeUndo(next));
    } catch (error) {
      const failure = `${describeUndo(next)}: ${(error as Error).message}`;
      failures.push(failure);
      record('undo-failed', failure);
    }
  }
  return failures;
}
