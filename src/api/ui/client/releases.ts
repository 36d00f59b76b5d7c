// Every release, newest first, filtered by service, environment and workflow status; polled.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { api } from './api';
import { tone, when } from './format';
import { usePoll } from './poll';

export interface ReleaseSummary {
  releaseId: string;
  service?: string;
  environment?: string;
  version?: string;
  phase?: string;
  outcome?: string;
  status: string;
  startTime: string;
  closeTime: string | null;
}

/** The API's list filter (the workflow's status: running includes paused releases). */
const STATUSES = ['running', 'completed', 'failed', 'cancelled', 'terminated', 'timed-out'];

export function releaseHref(releaseId: string): string {
  return `#/release/${encodeURIComponent(releaseId)}`;
}

export function ReleasesPage() {
  const [service, setService] = useState('');
  const [environment, setEnvironment] = useState('');
  const [status, setStatus] = useState('');
  const query = new URLSearchParams({ limit: '200' });
  if (service.trim()) query.set('service', service.trim());
  if (environment.trim()) query.set('environment', environment.trim());
  if (status) query.set('status', status);
  const polled = usePoll(() => api<{ releases: ReleaseSummary[] }>('GET', `/v1/releases?${query.toString()}`), query.toString());
  const releases = polled.data?.releases ?? [];

  return html`<section>
    <h1>Releases</h1>
    <form class="filters" role="search" aria-label="Filter releases" onSubmit=${(e: Event) => e.preventDefault()}>
      <label>Service <input name="service" value=${service} onChange=${(e: Event) => setService((e.target as HTMLInputElement).value)} /></label>
      <label>Environment <input name="environment" value=${environment} onChange=${(e: Event) => setEnvironment((e.target as HTMLInputElement).value)} /></label>
      <label
        >Status
        <select name="status" value=${status} onChange=${(e: Event) => setStatus((e.target as HTMLSelectElement).value)}>
          <option value="">any</option>
          ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </label>
    </form>
    ${polled.error && html`<p role="alert" class="tone-bad">${polled.error}</p>`}
    <p class="muted" aria-live="polite">${polled.data ? `${releases.length} release${releases.length === 1 ? '' : 's'}, updated every 2 s` : 'Loading…'}</p>
    <div class="scroll">
      <table data-testid="releases">
        <thead><tr><th scope="col">Release</th><th scope="col">Service</th><th scope="col">Environment</th><th scope="col">Phase</th><th scope="col">Status</th><th scope="col">Outcome</th><th scope="col">Started</th></tr></thead>
        <tbody>
          ${releases.map(
            (r) => html`<tr data-release-id=${r.releaseId}>
              <td><a href=${releaseHref(r.releaseId)}><code>${r.version ?? r.releaseId}</code></a></td>
              <td>${r.service ?? ''}</td>
              <td>${r.environment ?? ''}</td>
              <td>${r.phase ?? ''}</td>
              <td class=${tone(r.status)}>${r.status.toLowerCase()}</td>
              <td class=${tone(r.outcome)}>${r.outcome ?? ''}</td>
              <td>${when(r.startTime)}</td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
  </section>`;
}
