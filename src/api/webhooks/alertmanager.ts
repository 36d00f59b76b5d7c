// Alertmanager's webhook (payload version 4): a firing alert for a service with a release in flight
// pauses or aborts it; a resolved one may resume a release that an alert paused. Alertmanager
// repeats, regroups and reorders notifications, so every step here is safe to see twice or late.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { rejectCommand, type CommandName, type ReleaseStatus } from '../../engine/release-state';
import { alertPolicySchema, nameSchema, type AlertPolicy } from '../../spec/release-spec';
import { CommandRejectedError, ReleaseNotFoundError } from '../../temporal/releases';
import type { Principal } from '../auth';
import type { ApiContext } from '../context';

const timestamp = z
  .string()
  .max(64)
  .refine((value) => !Number.isNaN(Date.parse(value)), 'not an RFC 3339 time');
const labelSet = z.record(z.string().max(1_000), z.string().max(10_000));

export const alertSchema = z.looseObject({
  status: z.enum(['firing', 'resolved']),
  labels: labelSet.describe('Matched to releases by service and, when present, environment; rampart_action (pause or abort) overrides the policy.'),
  annotations: labelSet.default({}),
  startsAt: timestamp,
  endsAt: timestamp.optional(),
  generatorURL: z.string().max(10_000).optional(),
  fingerprint: z.string().max(200).optional(),
});

/** Alertmanager's webhook payload; fields Rampart does not read are let through, so a newer Alertmanager is not refused. */
export const alertmanagerPayloadSchema = z
  .looseObject({
    version: z.literal('4', { error: 'only version 4 of the Alertmanager webhook payload is understood' }),
    groupKey: z.string().max(10_000),
    truncatedAlerts: z.number().int().min(0).default(0),
    status: z.enum(['firing', 'resolved']),
    receiver: z.string().max(1_000),
    groupLabels: labelSet.default({}),
    commonLabels: labelSet.default({}),
    commonAnnotations: labelSet.default({}),
    externalURL: z.string().max(10_000).default(''),
    alerts: z.array(alertSchema).max(1_000),
  })
  .describe('Alertmanager webhook payload, version 4.');

export type AlertmanagerPayload = z.infer<typeof alertmanagerPayloadSchema>;
type Alert = z.infer<typeof alertSchema>;

export const alertActionSchema = z.object({
  fingerprint: z.string(),
  alertname: z.string().nullable(),
  status: z.enum(['firing', 'resolved']),
  releaseId: z.string().nullable(),
  action: z.enum(['paused', 'aborted', 'aborting', 'resumed', 'none']),
  detail: z.string(),
});
export type AlertAction = z.infer<typeof alertActionSchema>;

const DEFAULT_POLICY: AlertPolicy = { onFiring: 'pause', resumeOnResolved: false };
/** An alert's abort answers within this, rolled back or not; the rollback goes on in the workflow. */
const ALERT_ABORT_WAIT_MS = 2_000;

interface Sighting {
  status: 'firing' | 'resolved';
  startsAt: number;
  endsAt: number;
  service: string;
  environment: string | undefined;
}

/**
 * The alerts this API process has seen, by fingerprint: to tell a late notification from a new one,
 * and whether another alert for a service still fires. In memory and bounded: after a restart the
 * process only knows what it is told next, which errs towards staying paused.
 */
export class AlertTracker {
  private readonly seen = new Map<string, Sighting>();
  constructor(private readonly capacity = 10_000) {}

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
}

function fingerprintOf(alert: Alert): string {
  if (alert.fingerprint) return alert.fingerprint;
  const labels = Object.entries(alert.labels).sort(([a], [b]) => a.localeCompare(b));
  return createHash('sha256').update(JSON.stringify(labels)).digest('hex').slice(0, 16);
}

/** The spec's alert policy: from the status when the workflow reports it, else the registered spec, else pause. */
function policyFor(status: ReleaseStatus, ctx: ApiContext): AlertPolicy {
  const reported = alertPolicySchema.safeParse((status as ReleaseStatus & { alerts?: unknown }).alerts);
  if ((status as { alerts?: unknown }).alerts !== undefined && reported.success) return reported.data;
  const registered = ctx.specs.find(status.service, status.environment);
  if (registered && !('ambiguous' in registered)) return registered.alerts;
  return DEFAULT_POLICY;
}

function reasonFor(alert: Alert): string {
  const name = alert.labels.alertname ?? 'an alert';
  const summary = alert.annotations.summary ?? alert.annotations.description;
  return `${name} ${alert.status}${summary ? `: ${summary}` : ''}`.slice(0, 1_000);
}

/** Applies every alert of a notification to the releases in flight it matches; never fails on a command that no longer applies. */
export async function applyAlerts(ctx: ApiContext, tracker: AlertTracker, payload: AlertmanagerPayload, principal: Principal): Promise<AlertAction[]> {
  const actions: AlertAction[] = [];
  const seenInPayload = new Set<string>();
  for (const alert of payload.alerts) {
    const fingerprint = fingerprintOf(alert);
    if (seenInPayload.has(fingerprint)) continue;
    seenInPayload.add(fingerprint);
    const base = { fingerprint, alertname: alert.labels.alertname ?? null, status: alert.status };
    const record = (action: AlertAction) => {
      actions.push(action);
      ctx.metrics.alerts.inc({ status: alert.status, action: action.action });
    };

    const service = alert.labels.service;
    const environment = alert.labels.environment;
    if (!service || !nameSchema.safeParse(service).success) {
      record({ ...base, releaseId: null, action: 'none', detail: service ? `service label "${service}" is not a service name` : 'the alert has no service label' });
      continue;
    }
    if (environment !== undefined && !nameSchema.safeParse(environment).success) {
      record({ ...base, releaseId: null, action: 'none', detail: `environment label "${environment}" is not an environment name` });
      continue;
    }
    const fresh = tracker.observe(fingerprint, {
      status: alert.status,
      startsAt: Date.parse(alert.startsAt),
      endsAt: alert.endsAt ? Date.parse(alert.endsAt) : Number.POSITIVE_INFINITY,
      service,
      environment,
    });
    if (!fresh) {
      record({ ...base, releaseId: null, action: 'none', detail: 'a late notification: a newer one for this alert was already handled' });
      continue;
    }

    const inFlight = await ctx.releases.list({ service, ...(environment ? { environment } : {}), status: 'running' });
    if (inFlight.length === 0) {
      record({ ...base, releaseId: null, action: 'none', detail: `no release of ${service}${environment ? ` in ${environment}` : ''} is in flight` });
      continue;
    }
    for (const release of inFlight) {
      record({ ...base, releaseId: release.releaseId, ...(await applyToRelease(ctx, tracker, alert, fingerprint, release.releaseId, principal)) });
    }
  }
  return actions;
}

async function applyToRelease(
  ctx: ApiContext,
  tracker: AlertTracker,
  alert: Alert,
  fingerprint: string,
  releaseId: string,
  principal: Principal,
): Promise<Pick<AlertAction, 'action' | 'detail'>> {
  let status: ReleaseStatus;
  try {
    status = await ctx.releases.status(releaseId);
  } catch (error) {
    if (error instanceof ReleaseNotFoundError) return { action: 'none', detail: 'the release is gone' };
    throw error;
  }
  const policy = policyFor(status, ctx);
  const command = { actor: principal.name, reason: reasonFor(alert), source: 'alert' as const };

  const send = async (name: CommandName, done: AlertAction['action']): Promise<Pick<AlertAction, 'action' | 'detail'>> => {
    const rejection = rejectCommand(status, name);
    if (rejection) return { action: 'none', detail: rejection };
    const count = (outcome: string) => ctx.metrics.commands.inc({ command: name, source: 'alert', outcome });
    const pending = ctx.releases.command(releaseId, name, command);
    try {
      if (name === 'abort') {
        const timer = new Promise<'waiting'>((resolve) => setTimeout(() => resolve('waiting'), ALERT_ABORT_WAIT_MS).unref());
        const outcome = await Promise.race([pending, timer]);
        if (outcome === 'waiting') {
          pending.catch(() => undefined);
          count('pending');
          return { action: 'aborting', detail: 'abort accepted; the rollback is running' };
        }
      } else {
        await pending;
      }
      count('applied');
      return { action: done, detail: `${name} applied: ${command.reason}` };
    } catch (error) {
      // Another delivery (or an operator) got there first: the state it wanted is there already.
      if (error instanceof CommandRejectedError) {
        count('rejected');
        return { action: 'none', detail: error.message };
      }
      if (error instanceof ReleaseNotFoundError) return { action: 'none', detail: 'the release is gone' };
      throw error;
    }
  };

  if (alert.status === 'firing') {
    const label = alert.labels.rampart_action;
    const wanted = label === 'pause' || label === 'abort' ? label : policy.onFiring;
    const note = label !== undefined && label !== wanted ? ` (rampart_action "${label}" is not pause or abort; the policy applies)` : '';
    const result = wanted === 'abort' ? await send('abort', 'aborted') : await send('pause', 'paused');
    return { ...result, detail: result.detail + note };
  }

  if (status.state !== 'paused' || status.pause?.cause !== 'alert') {
    return { action: 'none', detail: `nothing to resume: the release is ${status.state}${status.pause ? ` (paused by ${status.pause.cause})` : ''}` };
  }
  if (!policy.resumeOnResolved) return { action: 'none', detail: 'the release stays paused: its alert policy does not resume on resolve' };
  const stillFiring = tracker.firingFor(status.service, status.environment, fingerprint);
  if (stillFiring.length > 0) return { action: 'none', detail: `the release stays paused: ${stillFiring.length} other alert(s) still firing` };
  return send('resume', 'resumed');
}
