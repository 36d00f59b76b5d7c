// The benchmark worker's workflow bundle: Rampart's workflows plus the bare baseline they are measured against.
import { proxyActivities } from '@temporalio/workflow';
import type { BenchActivities } from './activities';

export { releaseWorkflow, releaseLaneWorkflow } from '../workflows';

const { noop } = proxyActivities<BenchActivities>({ startToCloseTimeout: '1 minute' });

/** The floor: a workflow that runs `activities` no-op activities one after another, nothing else. */
export async function bareWorkflow(activities: number): Promise<number> {
  for (let i = 0; i < activities; i++) await noop();
  return activities;
}
