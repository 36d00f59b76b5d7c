// Signals, queries, updates and search attributes, defined once and shared by the workflows and
// every client (API, CLI, tests).

import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ReleaseCommand, ReleaseStatus } from '../src/engine/release-state';
import type { ReleaseSpec } from '../src/spec/release-spec';

export const TASK_QUEUE = 'rampart-releases';

export const pauseSignal = defineSignal<[ReleaseCommand]>('pause');
export const resumeSignal = defineSignal<[ReleaseCommand]>('resume');
export const promoteSignal = defineSignal<[ReleaseCommand]>('promote');
export const abortSignal = defineSignal<[ReleaseCommand]>('abort');
export const approveSignal = defineSignal<[ReleaseCommand]>('approve');
/** Sent by the service's lane when a newer version arrives: roll back cleanly and end as superseded. */
export const supersedeSignal = defineSignal<[{ byVersion: string; byRelease: string }]>('supersede');

/** The same commands as updates: validated first (a command that makes no sense is rejected with the reason), answered with the status after. */
export const pauseUpdate = defineUpdate<ReleaseStatus, [ReleaseCommand]>('pauseRelease');
export const resumeUpdate = defineUpdate<ReleaseStatus, [ReleaseCommand]>('resumeRelease');
export const promoteUpdate = defineUpdate<ReleaseStatus, [ReleaseCommand]>('promoteRelease');
export const abortUpdate = defineUpdate<ReleaseStatus, [ReleaseCommand]>('abortRelease');
export const approveUpdate = defineUpdate<ReleaseStatus, [ReleaseCommand]>('approveRelease');

export const statusQuery = defineQuery<ReleaseStatus>('status');

export interface ReleaseWorkflowInput {
  releaseId: string;
  spec: ReleaseSpec;
}

export interface LaneInput {
  service: string;
  environment: string;
  /** Carried over continue-as-new. */
  recent?: LaneRecord[];
}

/**
 * busy: a drill refused because a release is in flight; a drill never supersedes a real release.
 * accepted: handed to the lane without waiting for its answer (asynchronous webhooks); the lane
 * decides as for any submission, and the release id is the same either way.
 */
export type Disposition = 'started' | 'queued' | 'duplicate' | 'busy' | 'accepted';

export interface SubmitResult {
  releaseId: string;
  disposition: Disposition;
  /** The release this one supersedes, when a release was in flight. */
  supersedes?: string;
}

export interface LaneRecord {
  releaseId: string;
  version: string;
}

export interface LaneStatus {
  service: string;
  environment: string;
  current: LaneRecord | null;
  pending: LaneRecord | null;
  recent: LaneRecord[];
}

export const submitReleaseUpdate = defineUpdate<SubmitResult, [ReleaseSpec]>('submitRelease');
/** The same submission as a signal: one server round trip, no wait for the lane's decision. */
export const enqueueReleaseSignal = defineSignal<[ReleaseSpec]>('enqueueRelease');
export const laneStatusQuery = defineQuery<LaneStatus>('laneStatus');

export const serviceKey = defineSearchAttributeKey('RampartService', SearchAttributeType.KEYWORD);
export const environmentKey = defineSearchAttributeKey('RampartEnvironment', SearchAttributeType.KEYWORD);
export const versionKey = defineSearchAttributeKey('RampartVersion', SearchAttributeType.KEYWORD);
export const phaseKey = defineSearchAttributeKey('RampartPhase', SearchAttributeType.KEYWORD);
export const outcomeKey = defineSearchAttributeKey('RampartOutcome', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTES = [serviceKey, environmentKey, versionKey, phaseKey, outcomeKey];

export function drillScheduleId(service: string, environment: string): string {
  return `drill/${service}/${environment}`;
}

export function releaseWorkflowId(service: string, environment: string, version: string): string {
  return `release/${service}/${environment}/${version}`;
}

export function laneWorkflowId(service: string, environment: string): string {
  return `lane/${service}/${environment}`;
}
