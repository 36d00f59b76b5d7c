// Per service and environment: the stable version (the last one promoted), the release in flight,
// the recent versions; from the release list, plus the registered specs.
import { html } from 'htm/preact';
import uPlot from 'uplot';
import { api } from './api';
import { Chart } from './chart';
import { tone } from './format';
import { usePoll } from './poll';
import { releaseHref, type ReleaseSummary } from './releases';

interface Registered {
  service: string;
  environment: string;
  file: string;
}

export interface ServiceRow {
  service: string;
  environment: string;
  registered: boolean;
  stable: ReleaseSummary | null;
  inFlight: ReleaseSummary | null;
  recent: ReleaseSummary[];
  promoted: number;
  failed: number;
}

const RECENT = 5;

export function serviceRows(releases: ReleaseSummary[], registered: Registered[]): ServiceRow[] {
  const rows = new Map<string, ServiceRow>();
  const row = (service: string, environment: string) => {
    const key = `${service}\u0000${environment}`;
    let found = rows.get(key);
    if (!found) {
      found = { service, environment, registered: false, stable: null, inFlight: null, recent: [], promoted: 0, failed: 0 };
      rows.set(key, found);
    }
    return found;
  };
  for (const r of registered) row(r.service, r.environment).registered = true;
  // Newest first: the first promoted release met is the stable one.
  for (const r of releases) {
    if (!r.service || !r.environment) continue;
    const entry = row(r.service, r.environment);
    if (r.status === 'RUNNING' && !entry.inFlight) entry.inFlight = r;
    if (r.outcome === 'promoted') {
      entry.promoted++;
      entry.stable ??= r;
    }
    if (r.outcome === 'rolled-back' || r.outcome === 'aborted') entry.failed++;
    if (entry.recent.length < RECENT) entry.recent.push(r);
  }
  return [...rows.values()].sort((a, b) => a.service.localeCompare(b.service) || a.environment.localeCompare(b.environment));
}

export function ServicesPage() {
  const polled = usePoll(async () => {
    const [list, services] = await Promise.all([
      api<{ releases: ReleaseSummary[] }>('GET', '/v1/releases?limit=1000'),
      api<{ services: Registered[] }>('GET', '/v1/services'),
    ]);
    return serviceRows(list.releases, services.services);
  }, 'services', 5_000);
  const rows = polled.data ?? [];
  const bars = uPlot.paths.bars!({ size: [0.6, 40] });
  const options: Omit<uPlot.Options, 'width' | 'height'> = {
    scales: { x: { time: false } },
    axes: [{ values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? `${rows[t]?.service ?? ''}/${rows[t]?.environment ?? ''}` : '')) }, { label: 'releases' }],
    series: [{}, { label: 'promoted', fill: 'rgba(22, 163, 74, 0.6)', stroke: '#15803d', paths: bars }, { label: 'rolled back or aborted', fill: 'rgba(220, 38, 38, 0.6)', stroke: '#b91c1c', paths: bars }],
  };

  return html`<section>
    <h1>Services</h1>
    ${polled.error && html`<p role="alert" class="tone-bad">${polled.error}</p>`}
    <div class="scroll">
      <table data-testid="services">
        <thead><tr><th scope="col">Service</th><th scope="col">Environment</th><th scope="col">Stable version</th><th scope="col">In flight</th><th scope="col">Recent versions</th><th scope="col">Spec</th></tr></thead>
        <tbody>
          ${rows.map(
            (r) => html`<tr>
              <th scope="row">${r.service}</th>
              <td>${r.environment}</td>
              <td>${r.stable ? html`<code>${r.stable.version}</code>` : '—'}</td>
              <td>${r.inFlight ? html`<a href=${releaseHref(r.inFlight.releaseId)}><code>${r.inFlight.version}</code></a>` : '—'}</td>
              <td>
                <ul class="inline">
                  ${r.recent.map((v) => html`<li><a href=${releaseHref(v.releaseId)} class=${tone(v.outcome ?? v.status)}><code>${v.version}</code></a></li>`)}
                </ul>
              </td>
              <td>${r.registered ? 'registered' : 'inline'}</td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
    ${rows.length > 0 &&
    html`<section class="panel" aria-labelledby="outcomes-title">
      <h2 id="outcomes-title">Outcomes per service (last 1000 releases)</h2>
      <${Chart}
        key=${rows.map((r) => `${r.service}/${r.environment}`).join(',')}
        label="promoted and failed releases per service"
        options=${options}
        data=${[rows.map((_, i) => i), rows.map((r) => r.promoted), rows.map((r) => r.failed)] as uPlot.AlignedData}
        testId="services-chart"
      />
    </section>`}
  </section>`;
}
