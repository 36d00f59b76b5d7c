// The safety benchmark worker's workflow bundle: Rampart's workflows plus the floor the abort is measured against.
import { condition, defineQuery, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';
import type { FloorActivities } from './safety';

export { releaseWorkflow, releaseLaneWorkflow } from '../workflows';

export const floorGoSignal = defineSignal('floorGo');
export const floorReadyQuery = defineQuery<boolean>('floorReady');

const { zeroCanaryWeight } = proxyActivities<FloorActivities>({ startToCloseTimeout: '10 seconds' });

/** The least an abort can cost: one signal, one activity, one runtime-API call that puts the canary at weight 0. */
export async function abortFloorWorkflow(input: { socket: string; service: string }): Promise<void> {
  let go = false;
  setHandler(floorReadyQuery, () => true);
  setHandler(floorGoSignal, () => {
    go = true;
  });
  await condition(() => go);
  await zeroCanaryWeight(input.socket, input.service);
}
