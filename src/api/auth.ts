// Who may call what. API tokens carry a name (the actor in the audit trail) and a role; webhooks
// prove themselves by an HMAC signature (CI, GitHub) or a bearer token (Alertmanager's http_config).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** What a route asks of its caller. */
export type Access =
  | { kind: 'public' }
  /** An API token whose role is at least this one (viewer < operator < admin). */
  | { kind: 'token'; role: Role }
  /** An HMAC-SHA256 signature of the raw body with the webhook secret (X-Hub-Signature-256). */
  | { kind: 'signature' }
  /** The Alertmanager bearer token, or an API token with the operator role. */
  | { kind: 'alertmanager' };

export interface ApiToken {
  name: string;
  role: Role;
  token: string;
}

/** The authenticated caller; its name is the actor of the commands it sends. */
export interface Principal {
  name: string;
  role: Role | 'webhook' | 'alertmanager';
}

export class TokenConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenConfigError';
  }
}

const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
export const MIN_TOKEN_LENGTH = 16;

/**
 * Parses `name:role:token` entries separated by commas or new lines (# starts a comment). Errors
 * say where the bad entry is, never what the token is.
 */
export function parseTokens(text: string, source: string): ApiToken[] {
  const tokens: ApiToken[] = [];
  const entries = text
    .split(/\r?\n/)
    .flatMap((line, lineIndex) => line.replace(/#.*$/, '').split(',').map((entry) => ({ entry: entry.trim(), line: lineIndex + 1 })))
    .filter(({ entry }) => entry.length > 0);
  for (const { entry, line } of entries) {
    const where = `${source}, line ${line}`;
    const first = entry.indexOf(':');
    const second = entry.indexOf(':', first + 1);
    if (first < 0 || second < 0) throw new TokenConfigError(`${where}: an entry is name:role:token`);
    const name = entry.slice(0, first);
    const role = entry.slice(first + 1, second);
    const token = entry.slice(second + 1);
    if (!TOKEN_NAME.test(name)) throw new TokenConfigError(`${where}: token name "${name}" must be 1 to 64 letters, digits, . _ @ or -`);
    if (!(ROLES as readonly string[]).includes(role)) throw new TokenConfigError(`${where}: role of "${name}" is "${role}"; use ${ROLES.join(', ')}`);
    if (token.length < MIN_TOKEN_LENGTH) throw new TokenConfigError(`${where}: the token of "${name}" is shorter than ${MIN_TOKEN_LENGTH} characters`);
    if (tokens.some((t) => t.name === name)) throw new TokenConfigError(`${where}: token name "${name}" is used twice`);
    if (tokens.some((t) => t.token === token)) throw new TokenConfigError(`${where}: the token of "${name}" is also another name's token`);
    tokens.push({ name, role: role as Role, token });
  }
  return tokens;
}

export function roleAtLeast(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** Looks tokens up by comparing digests in constant time, every entry every time. */
export class TokenStore {
  private readonly entries: { name: string; role: Role; digest: Buffer }[];

  constructor(tokens: readonly ApiToken[]) {
    this.entries = tokens.map((t) => ({ name: t.name, role: t.role, digest: digest(t.token) }));
  }

  get size(): number {
    return this.entries.length;
  }

  find(presented: string): { name: string; role: Role } | null {
    const presentedDigest = digest(presented);
    let found: { name: string; role: Role } | null = null;
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.digest, presentedDigest) && !found) found = { name: entry.name, role: entry.role };
    }
    return found;
  }
}

export function secretEquals(expected: string, presented: string): boolean {
  return timingSafeEqual(digest(expected), digest(presented));
}

/** The bearer token of an Authorization header, or null when there is none. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match ? match[1]! : null;
}

export const SIGNATURE_HEADER = 'x-hub-signature-256';

/** GitHub's form of the signature: sha256=<hex HMAC-SHA256 of the raw body>. */
export function signBody(secret: string, body: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Checks a signature header against the raw body in constant time; the answer says what was wrong. */
export function verifySignature(secret: string, body: Buffer, header: string | undefined): { ok: true } | { ok: false; reason: string } {
  if (!header) return { ok: false, reason: `missing ${SIGNATURE_HEADER} signature` };
  const match = /^sha256=([0-9a-fA-F]{64})$/.exec(header.trim());
  if (!match) return { ok: false, reason: `${SIGNATURE_HEADER} must be sha256=<64 hex digits>` };
  const presented = Buffer.from(match[1]!, 'hex');
  const expected = createHmac('sha256', secret).update(body).digest();
  return timingSafeEqual(presented, expected) ? { ok: true } : { ok: false, reason: 'the signature does not match the body' };
}
