// Drills and DORA: the drill schedules (pause, resume, trigger for operators), their results with
// time to safe against the SLO, and the four DORA keys per service with their 30-day trend.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import uPlot from 'uplot';
import { api, roleAtLeast, type Caller } from './api';
import { Chart } from './chart';
import { duration, percent, seconds, tone, when } from './format';
import { usePoll } from './poll';

interface DrillSchedule {
  scheduleId: string;
  service: string;
  environment: string;
  paused: boolean;
  note: string | null;
  every: string | null;
  cron: string | null;
  nextRuns: string[];
}

interface DrillResult {
  service: string;
  environment: string;
  result: 'passed' | 'failed' | 'skipped';
  reason: string;
  releaseId: string | null;
  finishedAt: string;
  timeToSafeMs: number | null;
  sloMs: number;
}

interface DoraFigures {
  service: string;
  environment: string;
  deployments: number;
  deploymentFrequencyPerDay: number;
  leadTimeForChanges: { medianSeconds: number } | null;
  changeFailureRate: number | null;
  failedDeployments: number;
  failedDeploymentRecoveryTime: { medianSeconds: number } | null;
}

const DAYS = 30;
const DAY_SECONDS = 86_400;

/**
 * Deployments and failed deployments per day over the last DAYS days: the difference between the
 * figures of windows one day apart, so drills and superseded releases are left out exactly as the
 * DORA figures leave them out.
 */
export async function dailyTrend(now = Date.now()): Promise<uPlot.AlignedData> {
  const windows = await Promise.all(
    Array.from({ length: DAYS + 1 }, (_, days) =>
      days === 0 ? Promise.resolve({ figures: [] as DoraFigures[] }) : api<{ figures: DoraFigures[] }>('GET', `/v1/dora?days=${days}`),
    ),
  );
  const sum = (i: number, key: 'deployments' | 'failedDeployments') => windows[i]!.figures.reduce((total, f) => total + f[key], 0);
  const slots = Array.from({ length: DAYS }, (_, i) => DAYS - i);
  return [
    slots.map((daysAgo) => Math.round(now / 1_000 - (daysAgo - 1) * DAY_SECONDS)),
    slots.map((daysAgo) => sum(daysAgo, 'deployments') - sum(daysAgo - 1, 'deployments')),
    slots.map((daysAgo) => sum(daysAgo, 'failedDeployments') - sum(daysAgo - 1, 'failedDeployments')),
  ];
}

const TREND_OPTIONS: Omit<uPlot.Options, 'width' | 'height'> = {
  axes: [{}, { label: 'releases per day' }],
  series: [
    {},
    { label: 'deployments', stroke: '#15803d', width: 2, points: { show: true } },
    { label: 'failed (rolled back, aborted)', stroke: '#b91c1c', width: 2, points: { show: true } },
  ],
};

const DRILL_OPTIONS: Omit<uPlot.Options, 'width' | 'height'> = {
  // The drills in order rather than on a time axis: a few drills hours apart would be dots at its edges.
  scales: { x: { time: false, range: (_u, min, max) => [min - 0.5, max + 0.5] }, y: { range: (_u, _min, max) => [0, max * 1.1] } },
  axes: [{ label: 'drill, oldest first', values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? String(t) : '')) }, { label: 'seconds' }],
  series: [{}, { label: 'time to safe', stroke: '#2563eb', width: 2, points: { show: true, size: 7 } }, { label: 'SLO', stroke: '#b91c1c', dash: [6, 4], width: 1.5 }],
};

function DrillSchedules({ caller }: { caller: Caller }) {
  const polled = usePoll(() => api<{ drills: DrillSchedule[] }>('GET', '/v1/drills'), 'drills', 5_000);
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const schedules = polled.data?.drills ?? [];
  const operator = roleAtLeast(caller.role, 'operator');
  const act = async (s: DrillSchedule, action: 'pause' | 'resume' | 'trigger') => {
    let body: { reason: string } | undefined;
    if (action !== 'trigger') {
      const reason = window.prompt(`Reason to ${action} the drills of ${s.service} in ${s.environment}`);
      if (!reason?.trim()) return;
      body = { reason };
    }
    try {
      await api('POST', `/v1/drills/${encodeURIComponent(s.service)}/${encodeURIComponent(s.environment)}/${action}`, body);
      setMessage({ text: `${action} sent for ${s.scheduleId}`, error: false });
      polled.refresh();
    } catch (e) {
      setMessage({ text: `${action} refused: ${(e as Error).message}`, error: true });
    }
  };
  const unavailable = polled.error && !polled.data;
  return html`<section class="panel" aria-labelledby="schedules-title" data-testid="drill-schedules">
    <h2 id="schedules-title">Drill schedules</h2>
    ${unavailable && html`<p role="status" class="muted">${polled.error}</p>`}
    ${message && html`<p role=${message.error ? 'alert' : 'status'} class=${message.error ? 'tone-bad' : 'tone-good'}>${message.text}</p>`}
    ${!unavailable &&
    html`<div class="scroll"><table>
      <thead><tr><th scope="col">Service</th><th scope="col">Environment</th><th scope="col">Every</th><th scope="col">Next</th><th scope="col">State</th><th scope="col">Actions</th></tr></thead>
      <tbody>
        ${schedules.length === 0 && html`<tr><td colspan="6">No drill schedules.</td></tr>`}
        ${schedules.map(
          (s) => html`<tr>
            <th scope="row">${s.service}</th>
            <td>${s.environment}</td>
            <td>${s.every ?? s.cron ?? '—'}</td>
            <td>${when(s.nextRuns[0])}</td>
            <td class=${s.paused ? 'tone-wait' : ''}>${s.paused ? 'paused' : 'active'}${s.note ? html`<br /><small>${s.note}</small>` : ''}</td>
            <td class="buttons">
              ${(['pause', 'resume', 'trigger'] as const).map(
                (action) => html`<button
                  type="button"
                  disabled=${!operator || (action === 'pause' && s.paused) || (action === 'resume' && !s.paused)}
                  title=${operator ? `${action} the drills of ${s.service}` : `needs the operator role; ${caller.name} is a ${caller.role}`}
                  onClick=${() => void act(s, action)}
                >
                  ${action}
                </button>`,
              )}
            </td>
          </tr>`,
        )}
      </tbody>
    </table></div>`}
  </section>`;
}

function DrillResults() {
  const polled = usePoll(() => api<{ results: DrillResult[] }>('GET', '/v1/drills/results?limit=100'), 'drill-results', 5_000);
  if (polled.error && !polled.data) return null;
  const results = [...(polled.data?.results ?? [])].reverse();
  const timed = results.filter((r) => r.timeToSafeMs !== null);
  const data: uPlot.AlignedData = [timed.map((_, i) => i + 1), timed.map((r) => r.timeToSafeMs! / 1_000), timed.map((r) => r.sloMs / 1_000)];
  return html`<section class="panel" aria-labelledby="results-title">
    <h2 id="results-title">Drill results</h2>
    ${timed.length > 0 && html`<${Chart} label="time to safe of each drill against its SLO" options=${DRILL_OPTIONS} data=${data} testId="drill-chart" />`}
    <div class="scroll"><table>
      <thead><tr><th scope="col">Finished</th><th scope="col">Service</th><th scope="col">Result</th><th scope="col">Time to safe</th><th scope="col">SLO</th><th scope="col">Why</th></tr></thead>
      <tbody>
        ${results.length === 0 && html`<tr><td colspan="6">No drill has run yet.</td></tr>`}
        ${[...results].reverse().map(
          (r) => html`<tr><td>${when(r.finishedAt)}</td><td>${r.service}/${r.environment}</td><td class=${tone(r.result)}>${r.result}</td><td>${seconds(r.timeToSafeMs)}</td><td>${seconds(r.sloMs)}</td><td>${r.reason}</td></tr>`,
        )}
      </tbody>
    </table></div>
  </section>`;
}

function Dora() {
  const polled = usePoll(async () => {
    const [dora, trend] = await Promise.all([api<{ figures: DoraFigures[] }>('GET', `/v1/dora?days=${DAYS}`), dailyTrend()]);
    return { figures: dora.figures, trend };
  }, 'dora', 60_000);
  if (!polled.data) return html`<p role=${polled.error ? 'alert' : 'status'}>${polled.error ?? 'Loading…'}</p>`;
  const { figures, trend } = polled.data;
  return html`<section class="panel" aria-labelledby="dora-title">
    <h2 id="dora-title">DORA keys, last ${DAYS} days</h2>
    <div class="scroll"><table data-testid="dora">
      <thead><tr><th scope="col">Service</th><th scope="col">Deployments</th><th scope="col">Deployment frequency</th><th scope="col">Lead time (median)</th><th scope="col">Change failure rate</th><th scope="col">Recovery time (median)</th></tr></thead>
      <tbody>
        ${figures.length === 0 && html`<tr><td colspan="6">No release finished in the window.</td></tr>`}
        ${figures.map(
          (f) => html`<tr>
            <th scope="row">${f.service}/${f.environment}</th>
            <td>${f.deployments} (${f.failedDeployments} failed)</td>
            <td>${f.deploymentFrequencyPerDay.toFixed(2)} / day</td>
            <td>${f.leadTimeForChanges ? duration(f.leadTimeForChanges.medianSeconds) : '—'}</td>
            <td class=${f.changeFailureRate !== null && f.changeFailureRate > 0.15 ? 'tone-bad' : ''}>${percent(f.changeFailureRate, 0)}</td>
            <td>${f.failedDeploymentRecoveryTime ? duration(f.failedDeploymentRecoveryTime.medianSeconds) : '—'}</td>
          </tr>`,
        )}
      </tbody>
    </table></div>
    <h3>Deployments and failures per day</h3>
    <${Chart} label=${`deployments and failed releases per day over the last ${DAYS} days`} options=${TREND_OPTIONS} data=${trend} testId="dora-chart" />
  </section>`;
}

export function DoraPage({ caller }: { caller: Caller }) {
  return html`<section>
    <h1>Drills and DORA</h1>
    <${Dora} />
    <${DrillSchedules} caller=${caller} />
    <${DrillResults} />
  </section>`;
}

