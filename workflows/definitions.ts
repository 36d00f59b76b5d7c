// Signals, queries, updates and search attributes, defined once and shared by the workflows and
// every client (API, CLI, tests).

import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { SightingRecord } from '../src/engine/alerts';
import type { BakeState } from '../src/engine/bake';
import type { SagaState } from '../src/engine/saga';
import type { Outcome, ReleaseCommand, ReleaseStatus } from '../src/engine/release-state';
import type { AlertPolicy, ReleaseSpec, RolloutPlan, TargetSpec } from '../src/spec/release-spec';

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
  /** Set when a long release continues as new: where it was, so the next run picks up in the same bake. */
  carried?: ReleaseCarryOver;
}

/** Everything a release needs to go on in a new run: the status, the saga, and the bake in progress. */
export interface ReleaseCarryOver {
  status: ReleaseStatus;
  saga: SagaState;
  stepIndex: number;
  phaseStartedAt: number | null;
  /** The bake of `stepIndex`, in progress. */
  bake: { state: BakeState; trafficMovedAt: number; bakedMs: number };
  /** How many runs came before this one. */
  generation: number;
}

export interface LaneInput {
  service: string;
  environment: string;
  /** The region of a rollout this lane serves; unset: the service's one lane in the environment. */
  region?: string;
  /** Carried over continue-as-new. */
  recent?: LaneRecord[];
  /** The versions that were stable in this lane, oldest first: what a rollback may return to. */
  stable?: StableRecord[];
  /** The release in flight when the previous run continued as new: it runs on, and this run keeps watching it. */
  current?: CarriedRelease | null;
  /** The release (or rollback) queued behind it, answered "queued" by the previous run. */
  pending?: PendingRelease | null;
  /** Submissions by signal that the previous run took in but had not handled yet. */
  unhandled?: ReleaseSpec[];
  /** The newest commit the lane has started or queued: versions never go back before it. */
  newest?: LaneRecord | null;
  /** Which alerts fire, as Alertmanager told any API replica. */
  alerts?: SightingRecord[];
  /** How many runs came before this one. */
  generation?: number;
}

/** A release in flight, as one lane run hands it to the next. */
export interface CarriedRelease extends LaneRecord {
  /** The release reported its end, or was found ended, before the hand-over. */
  done: boolean;
  supersedeSent: boolean;
  /** Its spec's alert policy: how the lane steers it when an alert fires or resolves. */
  alertPolicy: AlertPolicy;
  /** How it ended, once the lane knows: a promotion (or a rollback's arrival) makes its version stable. */
  outcome?: Outcome;
  /** How it deploys: a promotion records it with the version, for a later rollback to that version. */
  target?: TargetSpec;
}

/** Queued behind the release in flight: a release, or a rollback to a known-good version. */
export type PendingRelease = LaneRecord & ({ spec: ReleaseSpec; rollbackInput?: undefined } | { rollbackInput: RollbackWorkflowInput; spec?: undefined });

/** A version that was stable in the lane, and how it ran then: a rollback to it deploys it the same way. */
export interface StableRecord extends LaneRecord {
  target: TargetSpec;
  /** Set once a rollback left this version for a known-good one: the default target of a rollback skips it. */
  rolledBackFrom?: boolean;
}

/** An operator's rollback, as the API hands it to the lane. */
export interface RollbackRequest {
  /** A version that was stable in the lane; default: the one stable before the current one. */
  to?: string;
  actor: string;
  reason: string;
  /** The registered spec's target (reviewed configuration); default: the target the version last ran with. */
  target?: TargetSpec;
}

/** The lane's answer to a rollback: started, queued behind the release it supersedes, a duplicate of one in flight, or refused. */
export interface RollbackAnswer {
  releaseId: string | null;
  disposition: 'started' | 'queued' | 'duplicate' | 'refused';
  to: string | null;
  /** The version that was stable when the lane decided; the rollback leaves it. */
  from: string | null;
  supersedes?: string;
  /** Why it was refused. */
  reason?: string;
  /** The versions a rollback may return to (refusals list them). */
  allowed: string[];
}

export interface RollbackWorkflowInput {
  releaseId: string;
  service: string;
  environment: string;
  /** The region whose lane asked for it; unset outside a rollout. */
  region?: string;
  target: TargetSpec;
  /** The stable version when the lane took the request; the workflow reads the deployer's own view when it starts. */
  from: string | null;
  to: string;
  actor: string;
  reason: string;
  /** When the lane took the request (ISO 8601): time to safe counts from here, queueing included. */
  requestedAt: string;
  /** Set when a revert commit asked for it (it rebuilt a version that was stable). */
  commit?: { sha: string; time: string };
}

/**
 * busy: a drill refused because a release is in flight; a drill never supersedes a real release.
 * accepted: handed to the lane without waiting for its answer (asynchronous webhooks); the lane
 * decides as for any submission, and the release id is the same either way.
 * stale: refused because its commit is older than one the lane has already started or queued;
 * versions never go back (submissions without a commit time are taken in arrival order).
 */
export type Disposition = 'started' | 'queued' | 'duplicate' | 'busy' | 'accepted' | 'stale';

export interface SubmitResult {
  releaseId: string;
  /** Set when the spec has regions: the rollout started (or found) for this version. */
  rolloutId?: string;
  disposition: Disposition;
  /** The release this one supersedes, when a release was in flight. */
  supersedes?: string;
  /** Why the lane refused it (stale). */
  reason?: string;
}

export interface LaneRecord {
  releaseId: string;
  version: string;
  /** The commit time (ISO 8601) the submission carried, if any. */
  commitTime?: string;
  /** A rollback to this version (a known-good one), not a release of it: no alert steers it. */
  rollback?: boolean;
}

export interface LaneStatus {
  service: string;
  environment: string;
  /** Set for a region's lane. */
  region?: string;
  current: LaneRecord | null;
  pending: LaneRecord | null;
  recent: LaneRecord[];
  /** Versions that were stable, oldest first: what a rollback may return to. */
  stable: LaneRecord[];
  /** The newest commit started or queued; an older one is refused as stale. */
  newest: LaneRecord | null;
  /** Fingerprints of the alerts firing for this service and environment. */
  firingAlerts: string[];
  /** How many times the lane has continued as new. */
  generation: number;
}

export const submitReleaseUpdate = defineUpdate<SubmitResult, [ReleaseSpec]>('submitRelease');
/** The same submission as a signal: one server round trip, no wait for the lane's decision. */
export const enqueueReleaseSignal = defineSignal<[ReleaseSpec]>('enqueueRelease');
export const laneStatusQuery = defineQuery<LaneStatus>('laneStatus');
/** Roll the lane back to a version that was stable in it: it supersedes a release in flight, then runs the rollback's fast path. */
export const requestRollbackUpdate = defineUpdate<RollbackAnswer, [RollbackRequest]>('requestRollback');

/**
 * Sent by a release to its lane (laneWorkflowId of its service and environment) as the very last
 * thing it does: the lane may have continued as new since it started the release, and then only
 * this tells it that the next one may start.
 */
export const releaseFinishedSignal = defineSignal<[{ releaseId: string; outcome: Outcome }]>('releaseFinished');

/** An Alertmanager alert as the API hands it to the lane of the service and environment it names. */
export interface AlertNotice {
  fingerprint: string;
  status: 'firing' | 'resolved';
  /** Epoch milliseconds. */
  startsAt: number;
  /** Epoch milliseconds; null while it fires with no end announced. */
  endsAt: number | null;
  /** The environment label, when the alert has one. */
  environment?: string;
  /** What its rampart_action label asks for; null: the release's alert policy decides. */
  requested: 'pause' | 'abort' | null;
  /** The command's reason: alert name, status and summary. */
  reason: string;
}

export interface AlertAnswer {
  fingerprint: string;
  releaseId: string | null;
  action: 'paused' | 'aborting' | 'resumed' | 'none';
  detail: string;
}

/** A release as its lane checks on it (an activity): whether its workflow still runs, and the status it reports. */
export interface ReleaseInspection {
  running: boolean;
  status: ReleaseStatus | null;
}

export const ALERTS_PER_NOTIFICATION = 100;

/** Alerts for one lane, applied in order; answered with what was done for each. */
export const applyAlertsUpdate = defineUpdate<AlertAnswer[], [{ actor: string; alerts: AlertNotice[] }]>('applyAlerts');

export const serviceKey = defineSearchAttributeKey('RampartService', SearchAttributeType.KEYWORD);
export const environmentKey = defineSearchAttributeKey('RampartEnvironment', SearchAttributeType.KEYWORD);
export const versionKey = defineSearchAttributeKey('RampartVersion', SearchAttributeType.KEYWORD);
export const phaseKey = defineSearchAttributeKey('RampartPhase', SearchAttributeType.KEYWORD);
export const outcomeKey = defineSearchAttributeKey('RampartOutcome', SearchAttributeType.KEYWORD);

/** The region of a rollout's release, rollback or lane; unset outside rollouts. */
export const regionKey = defineSearchAttributeKey('RampartRegion', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTES = [serviceKey, environmentKey, versionKey, phaseKey, outcomeKey, regionKey];

export function drillScheduleId(service: string, environment: string): string {
  return `drill/${service}/${environment}`;
}

/**
 * Where a lane's workflows live: the environment, or `<environment>@<region>` for one region of a
 * rollout (one release in flight per service, environment and region). No region keeps the ids of
 * releases and lanes recorded before regions.
 */
export function placeOf(environment: string, region?: string): string {
  return region ? `${environment}@${region}` : environment;
}

export function releaseWorkflowId(service: string, environment: string, version: string, region?: string): string {
  return `release/${service}/${placeOf(environment, region)}/${version}`;
}

/** A rollback has its own id: its version was released before under releaseWorkflowId, and may be returned to more than once. */
export function rollbackWorkflowId(service: string, environment: string, to: string, nonce: string, region?: string): string {
  return `rollback/${service}/${placeOf(environment, region)}/${to}/${nonce}`;
}

export function laneWorkflowId(service: string, environment: string, region?: string): string {
  return `lane/${service}/${placeOf(environment, region)}`;
}

/** One rollout per version of a service with regions: it runs the version's release in each region, wave by wave. */
export function rolloutWorkflowId(service: string, environment: string, version: string): string {
  return `rollout/${service}/${environment}/${version}`;
}

export interface RolloutInput {
  rolloutId: string;
  service: string;
  environment: string;
  version: string;
  /** The waves and each region's release spec (rolloutPlan of the submitted spec). */
  plan: RolloutPlan;
  requestedBy: string;
}

/**
 * waiting: its wave has not started; running: its release is handed to its lane and in
 * flight; promoted; failed (its release ended otherwise); rolling-back, rolled-back, rollback-failed
 * (rollback-all or an abort); cancelled: the rollout stopped before its wave.
 */
export type RegionState = 'waiting' | 'running' | 'promoted' | 'failed' | 'rolling-back' | 'rolled-back' | 'rollback-failed' | 'cancelled';
export type WaveState = 'waiting' | 'soaking' | 'paused' | 'running' | 'promoted' | 'failed' | 'cancelled';
/**
 * promoted everywhere; halted (a region failed, policy halt); rolled-back (policy rollback-all);
 * aborted by an operator; superseded (a newer version's release superseded one of its regions).
 */
export type RolloutState = 'running' | 'promoted' | 'halted' | 'rolled-back' | 'aborted' | 'superseded';

export interface RolloutRegion {
  region: string;
  wave: number;
  state: RegionState;
  /** The region's release (release/<service>/<environment>@<region>/<version>), once submitted. */
  releaseId: string | null;
  /** The version stable in the region before this rollout: what a rollback returns to. */
  previousStable: string | null;
  outcome: Outcome | null;
  rollbackId: string | null;
  detail: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface RolloutStatus {
  rolloutId: string;
  service: string;
  environment: string;
  version: string;
  state: RolloutState;
  onFailure: 'halt' | 'rollback-all';
  soakMs: number;
  /** Index of the wave running (or last run). */
  currentWave: number;
  /** When the soak before the next wave ends, while it lasts. */
  soakUntil: string | null;
  /** Set while an operator's pause holds the rollout. */
  paused: { actor: string; reason: string; at: string } | null;
  waves: { index: number; regions: string[]; state: WaveState; startedAt: string | null; finishedAt: string | null }[];
  regions: RolloutRegion[];
  startedAt: string;
  finishedAt: string | null;
  reason: string | null;
  history: { at: string; event: string; detail: string; actor?: string }[];
}

export const rolloutStatusQuery = defineQuery<RolloutStatus>('rolloutStatus');
/** Commands on the whole rollout: pause (its releases in flight and the next wave), resume, abort (every region back to its previous version). */
export const pauseRolloutUpdate = defineUpdate<RolloutStatus, [ReleaseCommand]>('pauseRollout');
export const resumeRolloutUpdate = defineUpdate<RolloutStatus, [ReleaseCommand]>('resumeRollout');
export const abortRolloutUpdate = defineUpdate<RolloutStatus, [ReleaseCommand]>('abortRollout');
