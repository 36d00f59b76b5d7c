// Unwinding a saga, shared by the release and the rollback workflows: every undo runs, newest first,
// and one that fails is recorded and passed over so the others still run (each undo is idempotent and
// retried by its activity options before it gets here).
import { compensationOrder, describeUndo, type SagaState, type Undo } from '../src/engine/saga';

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
