// One release: where it is (steps), where the traffic went (weight chart), what the analysis saw
// (each run's verdicts with their evidence), who paused or approved it, and its audit trail.
import { html } from 'htm/preact';
import { useMemo } from 'preact/hooks';
import uPlot from 'uplot';
import type { CheckVerdict } from '../../../engine/analysis';
import type { ReleaseStatus, Transition } from '../../../engine/release-state';
import { api, releasePath, type Caller } from './api';
import { Chart, epochSeconds } from './chart';
import { CommandBar } from './commands';
import { percent, tone, when } from './format';
import { usePoll } from './poll';

/** Analysis runs shown in full; older ones are counted (a 200 ms interval makes hundreds). */
const RUNS_SHOWN = 10;

/** The step names the history has seen, in order, then the steps still to come (unnamed until reached). */
export function timeline(status: ReleaseStatus): { name: string; state: 'done' | 'current' | 'pending' }[] {
  const names: string[] = [];
  for (const t of status.history) if (t.step && !names.includes(t.step)) names.push(t.step);
  const current = status.step?.name ?? null;
  const currentIndex = current === null ? (status.finishedAt ? names.length : -1) : names.indexOf(current);
  const steps = names.map((name, i) => ({ name, state: i < currentIndex ? ('done' as const) : i === currentIndex ? ('current' as const) : ('pending' as const) }));
  for (let i = names.length; i < status.stepCount; i++) steps.push({ name: `step ${i + 1}`, state: 'pending' });
  if (status.finishedAt) return steps.map((s) => (s.state === 'current' ? { ...s, state: 'done' as const } : s));
  return steps;
}

/** The canary weight after each traffic move, held until the next one (and until now or the end). */
export function weightSeries(status: ReleaseStatus): [number[], number[]] {
  const times: number[] = [epochSeconds(status.startedAt)];
  const weights: number[] = [0];
  for (const t of status.history) {
    const match = t.event === 'traffic-moved' ? /canary (\d+(?:\.\d+)?)%/.exec(t.reason ?? '') : null;
    if (!match) continue;
    times.push(epochSeconds(t.at));
    weights.push(Number(match[1]));
  }
  const end = status.finishedAt ? epochSeconds(status.finishedAt) : Date.now() / 1_000;
  times.push(Math.max(end, times[times.length - 1]!));
  weights.push(status.routes.canaryWeight);
  return [times, weights];
}

const WEIGHT_OPTIONS: Omit<uPlot.Options, 'width' | 'height'> = {
  scales: { y: { range: [0, 100] } },
  axes: [{}, { label: 'canary %', values: (_u, ticks) => ticks.map((t) => `${t}%`) }],
  series: [{}, { label: 'canary weight', stroke: '#2563eb', fill: 'rgba(37, 99, 235, 0.12)', width: 2, paths: uPlot.paths.stepped!({ align: 1 }) }],
  legend: { show: true },
};

function counts(c: { events: number; total: number } | undefined): string {
  return c ? `${c.events} / ${c.total}` : '—';
}

function Verdict({ v }: { v: CheckVerdict }) {
  return html`<tr>
    <th scope="row">${v.check}</th>
    <td class=${tone(v.outcome)}>${v.outcome}</td>
    <td>${counts(v.canary)}</td>
    <td>${counts(v.stable)}</td>
    <td>${v.interval ? `${percent(v.interval[0])} … ${percent(v.interval[1])}` : '—'}</td>
    <td>${v.limit !== undefined ? percent(v.limit) : '—'}</td>
    <td class="sentence">${v.message}</td>
  </tr>`;
}

function Gate({ status }: { status: ReleaseStatus }) {
  if (status.pause) {
    return html`<p class="gate tone-wait" data-testid="gate">
      Paused (${status.pause.cause}) by <strong>${status.pause.actor}</strong> at ${when(status.pause.at)}: ${status.pause.reason}
    </p>`;
  }
  if (status.state === 'awaiting-approval') return html`<p class="gate tone-wait" data-testid="gate">Waiting for approval at step ${status.step?.name ?? '?'}.</p>`;
  const approval = [...status.history].reverse().find((t: Transition) => t.event === 'approved');
  if (approval) return html`<p class="gate" data-testid="gate">Approved by <strong>${approval.actor ?? '?'}</strong> at ${when(approval.at)}${approval.reason ? `: ${approval.reason}` : ''}</p>`;
  return null;
}

export function ReleasePage({ caller, releaseId }: { caller: Caller; releaseId: string }) {
  const polled = usePoll(() => api<ReleaseStatus>('GET', releasePath(releaseId)), releaseId);
  const status = polled.data;
  const weights = useMemo(() => (status ? weightSeries(status) : null), [status]);
  if (!status) {
    return html`<section><h1>Release</h1><p role=${polled.error ? 'alert' : 'status'}>${polled.error ?? 'Loading…'}</p></section>`;
  }
  const runs = [...status.analysis].reverse();
  return html`<section class="release">
    <h1>${status.service} <span class="muted">in</span> ${status.environment}: <code>${status.version}</code></h1>
    ${polled.error && html`<p role="alert" class="tone-bad">Not refreshed: ${polled.error}</p>`}
    <dl class="facts">
      <div><dt>State</dt><dd class=${tone(status.state)} data-testid="release-state">${status.state}</dd></div>
      <div><dt>Phase</dt><dd>${status.phase ?? '—'}</dd></div>
      <div><dt>Canary weight</dt><dd>${status.routes.canaryWeight}%</dd></div>
      <div><dt>Stable version</dt><dd><code>${status.stableVersion ?? 'none'}</code></dd></div>
      <div><dt>Requested by</dt><dd>${status.requestedBy}</dd></div>
      <div><dt>Started</dt><dd>${when(status.startedAt)}</dd></div>
      ${status.commit && html`<div><dt>Commit</dt><dd><code>${status.commit.sha.slice(0, 12)}</code></dd></div>`}
    </dl>
    ${status.outcome &&
    html`<p class=${`outcome ${tone(status.outcome.result)}`} data-testid="outcome">
      <strong>${status.outcome.result}</strong>${status.outcome.actor ? ` by ${status.outcome.actor}` : ''} at ${when(status.outcome.at)}: ${status.outcome.reason}
    </p>`}
    <${Gate} status=${status} />
    <${CommandBar} caller=${caller} status=${status} onDone=${polled.refresh} />

    <section class="panel" aria-labelledby="steps-title">
      <h2 id="steps-title">Steps</h2>
      <ol class="timeline" data-testid="timeline">
        ${timeline(status).map((s) => html`<li class=${`step ${s.state}`} aria-current=${s.state === 'current' ? 'step' : undefined}>${s.name}<span class="visually-hidden"> (${s.state})</span></li>`)}
      </ol>
    </section>

    <section class="panel" aria-labelledby="weight-title">
      <h2 id="weight-title">Canary weight over time</h2>
      <${Chart} label=${`canary weight over time, now ${status.routes.canaryWeight}%`} options=${WEIGHT_OPTIONS} data=${weights!} testId="weight-chart" />
    </section>

    <section class="panel" aria-labelledby="analysis-title">
      <h2 id="analysis-title">Analysis runs (${status.analysis.length})</h2>
      ${runs.length === 0 && html`<p>No analysis yet.</p>`}
      ${runs.slice(0, RUNS_SHOWN).map(
        (run) => html`<details class="run" data-testid="analysis-run" open=${run === runs[0]}>
          <summary><span class=${tone(run.outcome)}>${run.outcome}</span> at step ${run.step}, ${when(run.at)}, ${run.windowSeconds.toFixed(0)} s of traffic</summary>
          <div class="scroll">
            <table>
              <thead><tr><th scope="col">Check</th><th scope="col">Verdict</th><th scope="col">Canary events / total</th><th scope="col">Stable events / total</th><th scope="col">Interval</th><th scope="col">Limit</th><th scope="col">Why</th></tr></thead>
              <tbody>${run.verdicts.map((v) => html`<${Verdict} v=${v} />`)}</tbody>
            </table>
          </div>
        </details>`,
      )}
      ${runs.length > RUNS_SHOWN && html`<p class="muted">${runs.length - RUNS_SHOWN} earlier runs not shown.</p>`}
    </section>

    <section class="panel" aria-labelledby="history-title">
      <h2 id="history-title">Audit history</h2>
      <div class="scroll">
        <table data-testid="history">
          <thead><tr><th scope="col">At</th><th scope="col">Event</th><th scope="col">State</th><th scope="col">Step</th><th scope="col">Actor</th><th scope="col">Reason</th></tr></thead>
          <tbody>
            ${[...status.history].reverse().map(
              (t) => html`<tr><td>${when(t.at)}</td><td>${t.event}</td><td class=${tone(t.state)}>${t.state}</td><td>${t.step ?? ''}</td><td>${t.actor ?? ''}</td><td>${t.reason ?? ''}</td></tr>`,
            )}
          </tbody>
        </table>
      </div>
    </section>
  </section>`;
}
