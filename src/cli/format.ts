// How the CLI shows releases to a person; --json shows the API's answer as it is.
import type { DoraFigures } from '../engine/dora';
import type { DrillResult } from '../engine/drill';
import type { ReleaseStatus } from '../engine/release-state';
import type { DrillScheduleSummary } from '../temporal/drills';
import type { RegionView, ReleaseSummary } from '../temporal/releases';
import type { RolloutStatus } from '../../workflows/definitions';

const short = (version: string | null | undefined) => (version ? (version.length > 16 ? `${version.slice(0, 12)}…` : version) : '-');
const time = (iso: string) => iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n');
}

export function formatList(releases: ReleaseSummary[]): string {
  if (releases.length === 0) return 'no releases';
  const rows = releases.map((r) => [
    r.releaseId,
    r.status.toLowerCase(),
    r.phase ?? '-',
    r.outcome ?? '-',
    time(r.startTime),
  ]);
  return table([['RELEASE', 'STATUS', 'PHASE', 'OUTCOME', 'STARTED'], ...rows]);
}

export function formatStatus(status: ReleaseStatus, historyLines = 10): string {
  const lines: string[] = [];
  lines.push(status.releaseId);
  const step = status.step ? `step ${status.step.index + 1}/${status.stepCount} ${status.step.name}` : `step -/${status.stepCount}`;
  lines.push(`  state     ${status.state}   phase ${status.phase ?? '-'}   ${step}`);
  const audience = status.routes.internalAudience ? ` (internal first: ${status.routes.internalAudience.header}=${status.routes.internalAudience.value})` : '';
  lines.push(`  traffic   canary ${status.routes.canaryWeight}%${audience}`);
  lines.push(`  versions  ${short(status.stableVersion)} -> ${short(status.version)}`);
  if (status.pause) lines.push(`  paused    by ${status.pause.actor} (${status.pause.cause}): ${status.pause.reason}`);
  if (status.outcome) lines.push(`  outcome   ${status.outcome.result}${status.outcome.actor ? ` by ${status.outcome.actor}` : ''}: ${status.outcome.reason}`);
  lines.push(`  requested by ${status.requestedBy} at ${time(status.startedAt)}${status.finishedAt ? `, finished ${time(status.finishedAt)}` : ''}`);
  const history = status.history.slice(-historyLines);
  if (history.length) {
    lines.push(`  history${status.history.length > history.length ? ` (last ${history.length} of ${status.history.length})` : ''}:`);
    for (const t of history) {
      const who = t.actor ? ` by ${t.actor}` : '';
      lines.push(`    ${time(t.at)}  ${t.event.padEnd(18)} ${t.state.padEnd(17)}${t.step ? ` [${t.step}]` : ''}${who}${t.reason ? `: ${t.reason}` : ''}`);
    }
  }
  return lines.join('\n');
}

/** One line per change, for watch mode without a terminal (logs, CI). */
export function formatStatusLine(status: ReleaseStatus): string {
  const step = status.step ? `${status.step.index + 1}/${status.stepCount} ${status.step.name}` : '-';
  const pause = status.pause ? ` paused by ${status.pause.actor}: ${status.pause.reason}` : '';
  const outcome = status.outcome ? ` ${status.outcome.result}: ${status.outcome.reason}` : '';
  return `${new Date().toISOString()} ${status.state} phase=${status.phase ?? '-'} step=${step} canary=${status.routes.canaryWeight}%${pause}${outcome}`;
}

/** A duration in seconds, in the largest two units that matter: 850ms, 12.3s, 4m 05s, 3h 20m, 2d 04h. */
export function formatSeconds(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '-';
  if (seconds < 1) return `${Math.round(seconds * 1_000)}ms`;
  if (seconds < 60) return `${Number(seconds.toFixed(1))}s`;
  const pad = (n: number) => String(n).padStart(2, '0');
  const whole = Math.round(seconds);
  if (whole < 3_600) return `${Math.floor(whole / 60)}m ${pad(whole % 60)}s`;
  if (whole < 86_400) return `${Math.floor(whole / 3_600)}h ${pad(Math.floor((whole % 3_600) / 60))}m`;
  return `${Math.floor(whole / 86_400)}d ${pad(Math.floor((whole % 86_400) / 3_600))}h`;
}

const ms = (value: number | null) => formatSeconds(value === null ? null : value / 1_000);
const cadence = (d: DrillScheduleSummary) => (d.every ? `every ${d.every}` : d.cron ? `cron ${d.cron}` : '-');

export function formatDrills(drills: DrillScheduleSummary[]): string {
  if (drills.length === 0) return 'no drill schedules';
  const rows = drills.map((d) => [
    d.scheduleId,
    d.paused ? 'paused' : 'active',
    cadence(d),
    d.nextRuns[0] ? time(d.nextRuns[0]) : '-',
    d.recentRuns.length ? time(d.recentRuns[d.recentRuns.length - 1]!.at) : '-',
  ]);
  return table([['SCHEDULE', 'STATE', 'WHEN', 'NEXT', 'LAST RUN'], ...rows]);
}

export function formatDrill(drill: DrillScheduleSummary): string {
  const lines = [drill.scheduleId];
  lines.push(`  state     ${drill.paused ? 'paused' : 'active'}   ${cadence(drill)}`);
  if (drill.note) lines.push(`  note      ${drill.note}`);
  lines.push(`  next      ${drill.nextRuns.length ? drill.nextRuns.map(time).join(', ') : '-'}`);
  if (drill.recentRuns.length) {
    lines.push('  recent runs:');
    for (const run of drill.recentRuns) lines.push(`    ${time(run.at)}  ${run.workflowId}`);
  }
  return lines.join('\n');
}

export function formatDrillResults(results: DrillResult[]): string {
  if (results.length === 0) return 'no drill results';
  const rows = results.map((r) => [
    time(r.finishedAt),
    `${r.service}/${r.environment}`,
    r.result,
    ms(r.timeToDetectMs),
    ms(r.timeToSafeMs),
    ms(r.sloMs),
    r.reason,
  ]);
  return table([['FINISHED', 'SERVICE', 'RESULT', 'DETECT', 'SAFE', 'SLO', 'WHY'], ...rows]);
}

export function formatDora(figures: DoraFigures[], days: number): string {
  if (figures.length === 0) return `no finished releases in the last ${days} days`;
  const rows = figures.map((f) => [
    `${f.service}/${f.environment}`,
    String(f.deployments),
    f.deploymentFrequencyPerDay.toFixed(2),
    formatSeconds(f.leadTimeForChanges?.medianSeconds),
    f.changeFailureRate === null ? '-' : `${(f.changeFailureRate * 100).toFixed(1)}% (${f.failedDeployments})`,
    formatSeconds(f.failedDeploymentRecoveryTime?.medianSeconds),
  ]);
  return `last ${days} days\n${table([['SERVICE', 'DEPLOYS', 'PER DAY', 'LEAD TIME', 'CHANGE FAILURES', 'RECOVERY'], ...rows])}`;
}

/** `rampart where`: one line per region. */
export function formatWhere(regions: RegionView[]): string {
  const rows = regions.map((r) => [
    r.region,
    short(r.stable),
    r.inFlight ? `${r.inFlight.rollback ? 'rollback to ' : ''}${short(r.inFlight.version)}` : '-',
    r.inFlight ? `${r.inFlight.state ?? '?'}${r.inFlight.step ? ` ${r.inFlight.step}` : ''}` : '-',
    r.lastChange ? time(r.lastChange) : '-',
  ]);
  return table([['REGION', 'STABLE', 'IN FLIGHT', 'STATE/STEP', 'LAST CHANGE'], ...rows]);
}

export function formatRollout(status: RolloutStatus): string {
  const lines = [status.rolloutId];
  lines.push(`  state     ${status.state}${status.paused ? ` (paused by ${status.paused.actor}: ${status.paused.reason})` : ''}   on failure ${status.onFailure}   soak ${formatSeconds(status.soakMs / 1_000)}`);
  if (status.soakUntil) lines.push(`  soaking until ${time(status.soakUntil)}`);
  if (status.reason) lines.push(`  outcome   ${status.reason}`);
  for (const wave of status.waves) lines.push(`  wave ${wave.index + 1}    ${wave.state.padEnd(9)} ${wave.regions.join(', ')}`);
  const rows = status.regions.map((r) => [r.region, String(r.wave + 1), r.state, r.releaseId ?? '-', short(r.previousStable), r.detail ?? '']);
  lines.push(
    table([['REGION', 'WAVE', 'STATE', 'RELEASE', 'PREVIOUS', 'DETAIL'], ...rows])
      .split('\n')
      .map((line) => `  ${line}`)
      .join('\n'),
  );
  return lines.join('\n');
}
