// Alertmanager's webhook (payload version 4): a firing alert for a service with a release in flight
// pauses or aborts it; a resolved one may resume a release that an alert paused. Which alerts fire
// is remembered by the service's lane in Temporal, not here: every API replica, and one restarted,
// sees the same memory, and the lane applies the alerts of one service in one order. Alertmanager
// repeats, regroups and reorders notifications, so every step is safe to see twice or late.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { nameSchema } from '../../spec/release-spec';
import { ALERTS_PER_NOTIFICATION, placeOf, type AlertAnswer, type AlertNotice } from '../../../workflows/definitions';
import type { Principal } from '../auth';
import type { ApiContext } from '../context';

const timestamp = z
  .string()
  .max(64)
  .refine((value) => !Number.isNaN(Date.parse(value)), 'not an RFC 3339 time');
const labelSet = z.record(z.string().max(1_000), z.string().max(10_000));

export const alertSchema = z.looseObject({
  status: z.enum(['firing', 'resolved']),
  labels: labelSet.describe(
    "Matched to releases by service and, when present, environment and region (a region label steers that region's release of a rollout; an alert without one steers every region's); rampart_action (pause or abort) overrides the policy.",
  ),
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
    alerts: z
      .array(alertSchema)
      .max(ALERTS_PER_NOTIFICATION, `at most ${ALERTS_PER_NOTIFICATION} alerts per notification: set max_alerts: ${ALERTS_PER_NOTIFICATION} in Alertmanager's webhook_config`)
      .describe(`At most ${ALERTS_PER_NOTIFICATION}: each is applied by the lane of its service, so Alertmanager's receiver must set max_alerts.`),
  })
  .describe('Alertmanager webhook payload, version 4.');

export type AlertmanagerPayload = z.infer<typeof alertmanagerPayloadSchema>;
type Alert = z.infer<typeof alertSchema>;

export const alertActionSchema = z.object({
  fingerprint: z.string(),
  alertname: z.string().nullable(),
  status: z.enum(['firing', 'resolved']),
  releaseId: z.string().nullable(),
  action: z.enum(['paused', 'aborting', 'resumed', 'none']).describe('aborting: the abort was sent and the rollback runs in the release.'),
  detail: z.string(),
});
export type AlertAction = z.infer<typeof alertActionSchema>;

function fingerprintOf(alert: Alert): string {
  if (alert.fingerprint) return alert.fingerprint;
  const labels = Object.entries(alert.labels).sort(([a], [b]) => a.localeCompare(b));
  return createHash('sha256').update(JSON.stringify(labels)).digest('hex').slice(0, 16);
}

function reasonFor(alert: Alert): string {
  const name = alert.labels.alertname ?? 'an alert';
  const summary = alert.annotations.summary ?? alert.annotations.description;
  return `${name} ${alert.status}${summary ? `: ${summary}` : ''}`.slice(0, 1_000);
}

/** Alertmanager's "no end" (0001-01-01) and anything before the start mean the alert still fires. */
function endOf(alert: Alert, startsAt: number): number | null {
  const endsAt = alert.endsAt ? Date.parse(alert.endsAt) : Number.NaN;
  return Number.isFinite(endsAt) && endsAt >= startsAt ? endsAt : null;
}

/**
 * The environments an alert without an environment label may mean: those the service is registered
 * for, and those it has a release running in.
 */
/**
 * The lanes of a service an alert concerns, as [environment, region] pairs: one environment's when the alert
 * names it, else every environment the service is registered in or has a release running in. An alert without
 * a region label concerns the service everywhere: the lane without a region and every region's lane that has
 * a release running (a rule written before the service had regions must still stop a bad rollout).
 */
async function lanesOf(ctx: ApiContext, service: string, environment: string | undefined, region: string | undefined): Promise<Array<[string, string | undefined]>> {
  if (environment && region) return [[environment, region]];
  const running = await ctx.releases.list({ service, status: 'running', ...(environment ? { environment } : {}) });
  const environments = new Set(environment ? [environment] : ctx.specs.list().filter((e) => e.service === service).map((e) => e.environment));
  for (const release of running) if (release.environment) environments.add(release.environment);
  const lanes = new Map<string, [string, string | undefined]>();
  for (const env of [...environments].sort()) lanes.set(placeOf(env, region), [env, region]);
  if (region === undefined) {
    for (const release of running) {
      if (release.region && release.environment && environments.has(release.environment)) lanes.set(placeOf(release.environment, release.region), [release.environment, release.region]);
    }
  }
  return [...lanes.values()];
}

interface LaneBatch {
  service: string;
  environment: string;
  /** The region of a rollout's lane: the alert's region label, or, for an alert without one, each region with a release running. */
  region?: string;
  notices: AlertNotice[];
}

/** Hands every alert of a notification to the lanes it concerns and answers what each lane did with it. */
export async function applyAlerts(ctx: ApiContext, payload: AlertmanagerPayload, principal: Principal): Promise<AlertAction[]> {
  const actions: AlertAction[] = [];
  const batches = new Map<string, LaneBatch>();
  /** Per alert, in payload order: what it was (or was not) handed to. */
  const routed: Array<{ alert: Alert; fingerprint: string; lanes: string[]; refused?: string; note: string }> = [];
  const seenInPayload = new Set<string>();
  /** Per service, environment and region label (or their absence): the lanes, looked up once per notification. */
  const lanesByScope = new Map<string, Array<[string, string | undefined]>>();

  for (const alert of payload.alerts) {
    const fingerprint = fingerprintOf(alert);
    if (seenInPayload.has(fingerprint)) continue;
    seenInPayload.add(fingerprint);
    const service = alert.labels.service;
    const environment = alert.labels.environment;
    const region = alert.labels.region || undefined;
    const label = alert.labels.rampart_action;
    const note = alert.status === 'firing' && label !== undefined && label !== 'pause' && label !== 'abort' ? ` (rampart_action "${label}" is not pause or abort; the policy applies)` : '';
    if (!service || !nameSchema.safeParse(service).success) {
      routed.push({ alert, fingerprint, lanes: [], note, refused: service ? `service label "${service}" is not a service name` : 'the alert has no service label' });
      continue;
    }
    if (environment !== undefined && !nameSchema.safeParse(environment).success) {
      routed.push({ alert, fingerprint, lanes: [], note, refused: `environment label "${environment}" is not an environment name` });
      continue;
    }
    if (region !== undefined && !nameSchema.safeParse(region).success) {
      routed.push({ alert, fingerprint, lanes: [], note, refused: `region label "${region}" is not a region name` });
      continue;
    }
    const scope = `${service}/${environment ?? '*'}/${region ?? '*'}`;
    if (!lanesByScope.has(scope)) lanesByScope.set(scope, await lanesOf(ctx, service, environment, region));
    const startsAt = Date.parse(alert.startsAt);
    const notice: AlertNotice = {
      fingerprint,
      status: alert.status,
      startsAt,
      endsAt: alert.status === 'resolved' ? (endOf(alert, startsAt) ?? startsAt) : endOf(alert, startsAt),
      ...(environment ? { environment } : {}),
      requested: label === 'pause' || label === 'abort' ? label : null,
      reason: reasonFor(alert),
    };
    const lanes: string[] = [];
    for (const [env, laneRegion] of lanesByScope.get(scope)!) {
      const key = `${service}/${placeOf(env, laneRegion)}`;
      if (!batches.has(key)) batches.set(key, { service, environment: env, ...(laneRegion ? { region: laneRegion } : {}), notices: [] });
      batches.get(key)!.notices.push(notice);
      lanes.push(key);
    }
    routed.push({ alert, fingerprint, lanes, note, refused: `no release of ${service}${environment ? ` in ${environment}` : ''}${region ? ` in region ${region}` : ''} is in flight` });
  }

  // One update per lane; lanes are independent, so they are asked together.
  const answers = new Map<string, Map<string, AlertAnswer> | null>();
  await Promise.all(
    [...batches].map(async ([key, batch]) => {
      const answered = await ctx.releases.applyAlerts(batch.service, batch.environment, { actor: principal.name, alerts: batch.notices }, batch.region);
      answers.set(key, answered ? new Map(answered.map((a) => [a.fingerprint, a])) : null);
    }),
  );

  for (const { alert, fingerprint, lanes, refused, note } of routed) {
    const base = { fingerprint, alertname: alert.labels.alertname ?? null, status: alert.status };
    const record = (action: AlertAction) => {
      actions.push(action);
      ctx.metrics.alerts.inc({ status: alert.status, action: action.action });
    };
    const found = lanes.map((key) => answers.get(key)?.get(fingerprint)).filter((a): a is AlertAnswer => a !== undefined);
    const steered = found.filter((a) => a.releaseId !== null);
    if (steered.length === 0) {
      // No lane had a release in flight: one answer, the most telling (a late notification says so).
      const detail = found.find((a) => a.detail.includes('late'))?.detail ?? refused ?? 'nothing to do';
      record({ ...base, releaseId: null, action: 'none', detail });
      continue;
    }
    for (const answer of steered) {
      if (answer.action !== 'none') ctx.metrics.commands.inc({ command: COMMAND_OF[answer.action], source: 'alert', outcome: 'applied' });
      record({ ...base, releaseId: answer.releaseId, action: answer.action, detail: answer.detail + (answer.action !== 'resumed' ? note : '') });
    }
  }
  return actions;
}

const COMMAND_OF = { paused: 'pause', aborting: 'abort', resumed: 'resume' } as const;
