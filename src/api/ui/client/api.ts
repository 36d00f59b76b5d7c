// The dashboard's only way to the data: the API's token routes, with the token the user signed in
// with. The token lives in sessionStorage: this tab only, gone when it closes.

const TOKEN_KEY = 'rampart.token';

export type Role = 'viewer' | 'operator' | 'admin';
export interface Caller {
  name: string;
  role: Role;
}

export function storedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function keepToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** An answer other than 2xx, with the problem document's sentence (the server's reason). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Called when the server no longer accepts the token: the app goes back to the sign-in form. */
let onUnauthenticated: () => void = () => undefined;
export function whenUnauthenticated(handler: () => void): void {
  onUnauthenticated = handler;
}

export async function api<T>(method: 'GET' | 'POST', path: string, body?: unknown, token = storedToken()): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}), cache: 'no-store' });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  if (!response.ok) {
    const problem = parsed as { detail?: string; title?: string } | undefined;
    const message = problem?.detail ?? problem?.title ?? `${response.status} ${response.statusText}`;
    if (response.status === 401 && token === storedToken()) onUnauthenticated();
    throw new ApiError(response.status, message);
  }
  return parsed as T;
}

export function roleAtLeast(role: Role, needed: Role): boolean {
  const order: Role[] = ['viewer', 'operator', 'admin'];
  return order.indexOf(role) >= order.indexOf(needed);
}

export function releasePath(releaseId: string): string {
  return `/v1/releases/${encodeURIComponent(releaseId)}`;
}
