// The dashboard: a sign-in form until a token is accepted, then the views, chosen by the URL's
// hash so a release page can be linked and reloaded.
import { render } from 'preact';
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, forgetToken, keepToken, storedToken, whenUnauthenticated, type Caller } from './api';
import { DoraPage } from './dora';
import { ReleasePage } from './release';
import { ReleasesPage } from './releases';
import { ServicesPage } from './services';

type Route = { page: 'releases' } | { page: 'release'; releaseId: string } | { page: 'services' } | { page: 'dora' };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '');
  const release = /^\/release\/(.+)$/.exec(path);
  if (release) return { page: 'release', releaseId: decodeURIComponent(release[1]!) };
  if (path === '/services') return { page: 'services' };
  if (path === '/dora') return { page: 'dora' };
  return { page: 'releases' };
}

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const changed = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return route;
}

function SignIn({ onSignedIn, notice }: { onSignedIn: (caller: Caller) => void; notice: string | null }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(notice);
  const [busy, setBusy] = useState(false);
  const field = useRef<HTMLInputElement>(null);
  useEffect(() => field.current?.focus(), []);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    try {
      const caller = await api<Caller>('GET', '/v1/whoami', undefined, token.trim());
      keepToken(token.trim());
      onSignedIn(caller);
    } catch (e) {
      setError(`Not signed in: ${(e as Error).message}`);
    } finally {
      setBusy(false);
    }
  };
  return html`<main id="main" class="signin">
    <h1>Rampart</h1>
    <form onSubmit=${submit} aria-describedby="signin-help">
      <label for="token">API token</label>
      <input id="token" name="token" type="password" autocomplete="current-password" required ref=${field} value=${token} onInput=${(e: Event) => setToken((e.target as HTMLInputElement).value)} />
      <p id="signin-help" class="muted">The token is kept for this tab only and sent to this API as a bearer header.</p>
      <button type="submit" disabled=${busy || token.trim() === ''}>Sign in</button>
      ${error && html`<p role="alert" class="tone-bad">${error}</p>`}
    </form>
  </main>`;
}

function App() {
  const [caller, setCaller] = useState<Caller | null>(null);
  const [checking, setChecking] = useState(storedToken() !== null);
  const [notice, setNotice] = useState<string | null>(null);
  const route = useRoute();
  const heading = useRef<HTMLElement>(null);

  useEffect(() => {
    whenUnauthenticated(() => {
      forgetToken();
      setCaller(null);
      setNotice('The token is no longer accepted; sign in again.');
    });
    if (storedToken() === null) return;
    api<Caller>('GET', '/v1/whoami')
      .then(setCaller)
      .catch(() => forgetToken())
      .finally(() => setChecking(false));
  }, []);

  // A new view takes the focus to its content, as a page load would, for keyboards and screen readers.
  useEffect(() => heading.current?.focus(), [route.page]);

  if (checking) return html`<p role="status">Checking the token…</p>`;
  if (!caller) return html`<${SignIn} onSignedIn=${setCaller} notice=${notice} />`;

  const link = (href: string, label: string, page: Route['page']) =>
    html`<a href=${href} aria-current=${route.page === page || (page === 'releases' && route.page === 'release') ? 'page' : undefined}>${label}</a>`;
  return html`
    <a class="skip" href="#main" onClick=${(e: Event) => { e.preventDefault(); heading.current?.focus(); }}>Skip to content</a>
    <header class="top">
      <strong class="brand">Rampart</strong>
      <nav aria-label="Views">${link('#/', 'Releases', 'releases')} ${link('#/services', 'Services', 'services')} ${link('#/dora', 'Drills and DORA', 'dora')}</nav>
      <span class="who" data-testid="who">${caller.name} (${caller.role})</span>
      <button type="button" onClick=${() => { forgetToken(); setCaller(null); setNotice(null); }}>Sign out</button>
    </header>
    <main id="main" tabindex="-1" ref=${heading}>
      ${route.page === 'releases' && html`<${ReleasesPage} />`}
      ${route.page === 'release' && html`<${ReleasePage} key=${route.releaseId} caller=${caller} releaseId=${route.releaseId} />`}
      ${route.page === 'services' && html`<${ServicesPage} />`}
      ${route.page === 'dora' && html`<${DoraPage} caller=${caller} />`}
    </main>
  `;
}

render(html`<${App} />`, document.getElementById('app')!);
