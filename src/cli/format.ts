// How the CLI shows releases to a person; --json shows the API's answer as it is.
import type { ReleaseStatus } from '../engine/release-state';
import type { ReleaseSummary } from '../temporal/releases';

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
