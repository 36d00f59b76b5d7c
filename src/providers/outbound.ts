// Rampart's calls to the outside world (hooks, notifications) go through here. A release spec names
// URLs, and a worker sits inside the network: without a fence, a spec could make it POST to an
// admin endpoint (a Prometheus's /-/quit) or read an internal page back through an error message.
// So: only hosts the operator listed (RAMPART_OUTBOUND_HOSTS), no redirects, bounded time and
// answer, and nothing of the answer but its status reaches a caller.

/** One allowed host: a name or address, optionally `*.` for its subdomains, optionally one port. */
interface HostRule {
  host: string;
  wildcard: boolean;
  port: number | null;
}

const HOST_RULE = /^(\*\.)?([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/;

export class OutboundHostsError extends Error {
  constructor(readonly entry: string, reason: string) {
    super(`"${entry}" ${reason}: list hosts as name, name:port, *.domain or [ipv6]:port, comma separated`);
    this.name = 'OutboundHostsError';
  }
}

function parseRule(entry: string): HostRule {
  const match = HOST_RULE.exec(entry.toLowerCase());
  if (!match) throw new OutboundHostsError(entry, 'is not a host');
  const [, star, host, port] = match;
  if (star && host!.startsWith('[')) throw new OutboundHostsError(entry, 'cannot be a wildcard');
  const number = port === undefined ? null : Number(port);
  if (number !== null && (number < 1 || number > 65_535)) throw new OutboundHostsError(entry, 'has no valid port');
  return { host: host!, wildcard: Boolean(star), port: number };
}

/** The hosts hooks and notifications may reach. Empty (the default) reaches none. */
export class OutboundAllowlist {
  private readonly rules: readonly HostRule[];

  constructor(readonly entries: readonly string[] = []) {
    this.rules = entries.map(parseRule);
  }

  /** From RAMPART_OUTBOUND_HOSTS: comma-separated entries; throws OutboundHostsError naming a bad one. */
  static parse(text: string | undefined): OutboundAllowlist {
    return new OutboundAllowlist(
      (text ?? '')
        .split(',')
        .map((entry) => entry.trim())
        .filter(Boolean),
    );
  }

  /** Why a URL may not be called, or null when it may. The reason names the host, never more of the URL. */
  refusal(url: string): string | null {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return 'is not a URL';
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return `uses ${parsed.protocol.replace(/:$/, '')}: only http and https are called`;
    // URL normalises the host (case, IPv4 in decimal or hex), so the comparison sees what fetch will dial.
    const host = parsed.hostname;
    const port = parsed.port ? Number(parsed.port) : parsed.protocol === 'https:' ? 443 : 80;
    const allowed = this.rules.some(
      (rule) => (rule.port === null || rule.port === port) && (rule.wildcard ? host.endsWith(`.${rule.host}`) : host === rule.host),
    );
    if (allowed) return null;
    return this.rules.length === 0
      ? `goes to ${host}:${port}, and RAMPART_OUTBOUND_HOSTS allows no host`
      : `goes to ${host}:${port}, which is not in RAMPART_OUTBOUND_HOSTS`;
  }
}

/** A call refused before any connection was made. */
export class OutboundRefusedError extends Error {
  constructor(readonly url: string, reason: string) {
    super(reason);
    this.name = 'OutboundRefusedError';
  }
}

/**
 * How a call went, in Rampart's own words: the answer's body is never part of it, because these
 * reasons end up in release histories that every viewer reads.
 */
export interface OutboundResult {
  outcome: 'ok' | 'redirect' | 'error-status' | 'timeout' | 'unreachable';
  status: number | null;
  reason: string;
}

export interface OutboundOptions {
  allowlist: OutboundAllowlist;
  timeoutMs: number;
  /** Bytes of the answer read (and discarded) before the connection is dropped; default 4 KiB. */
  maxAnswerBytes?: number;
  /** Extra request headers (a hook's Idempotency-Key). */
  headers?: Record<string, string>;
  /** Aborts the call, e.g. when the activity making it is cancelled. */
  signal?: AbortSignal;
}

/** POSTs JSON to an allowed host; throws OutboundRefusedError without dialling when the host is not allowed. */
export async function postJson(url: string, payload: unknown, options: OutboundOptions): Promise<OutboundResult> {
  const refusal = options.allowlist.refusal(url);
  if (refusal) throw new OutboundRefusedError(url, refusal);
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { ...options.headers, 'content-type': 'application/json' },
      body: JSON.stringify(payload),
      // A redirect could lead anywhere, including past the allowlist.
      redirect: 'manual',
      signal,
    });
    await discardAnswer(response, options.maxAnswerBytes ?? 4_096);
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason ?? error;
    if (signal.aborted) return { outcome: 'timeout', status: null, reason: `no answer within ${options.timeoutMs} ms` };
    const code = (error as { cause?: { code?: unknown } }).cause?.code;
    return { outcome: 'unreachable', status: null, reason: `could not be reached${typeof code === 'string' ? ` (${code})` : ''}` };
  }
  const status = response.status;
  if (status >= 300 && status < 400) return { outcome: 'redirect', status, reason: `answered ${status}, a redirect, which is not followed` };
  if (!response.ok) return { outcome: 'error-status', status, reason: `answered ${status}` };
  return { outcome: 'ok', status, reason: `answered ${status}` };
}

/**
 * Reads at most `limit` bytes, so a small answer leaves the connection reusable, and drops the rest.
 * The status is known by now: an answer that stalls or breaks off changes nothing about it.
 */
async function discardAnswer(response: Response, limit: number): Promise<void> {
  if (!response.body) return;
  const reader = response.body.getReader();
  let read = 0;
  try {
    while (read <= limit) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
    }
  } catch {
    // Timed out or cut off while reading the body.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
