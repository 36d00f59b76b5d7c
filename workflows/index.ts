// The worker's workflow bundle entry: every workflow type Rampart registers.
export { releaseWorkflow } from './release';
export { releaseLaneWorkflow } from './lane';
export { rollbackDrillWorkflow } from './drill';
export { rollbackWorkflow } from './rollback';
export { rolloutWorkflow } from './rollout';
