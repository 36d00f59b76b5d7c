// The CLI's view of the API: one request at a time, every failure turned into an exit code.

/** Exit codes scripts can rely on. */
export const EXIT = {
  ok: 0,
  /** Anything unexpected: the API unreachable, a 5xx, an answer that is not JSON. */
  error: 1,
  /** Bad arguments, an unreadable or invalid spec, a request the API found invalid (400, 413, 415, 422). */
  usage: 2,
  /** The command makes no sense in the release's state now, or the drill schedule exists already (409): the message says why. */
  rejected: 3,
  /** No such release or drill schedule (404). */
  notFound: 4,
  /** Missing or wrong token (401), or a role too low for the command (403). */
  auth: 5,
  /** status --watch: the release finished without being promoted (rolled back, aborted, superseded, cancelled). */
  notPromoted: 6,
} as const;

export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
    readonly details: string[] = [],
  ) {
    super(message);
    this.name = 'CliError';
  }
}

interface ProblemBody {
  detail?: string;
  title?: string;
  errors?: { field: string; message: string }[];
}

function exitCodeFor(status: number): number {
  if (status === 401 || status === 403) return EXIT.auth;
  if (status === 404) return EXIT.notFound;
  if (status === 409) return EXIT.rejected;
  if (status === 400 || status === 413 || status === 415 || status === 422) return EXIT.usage;
  return EXIT.error;
}

export interface ApiClientOptions {
  url: string;
  token: string | undefined;
  timeoutMs: number;
}

export class ApiClient {
  private readonly base: string;
  constructor(private readonly options: ApiClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
  }

  /** The JSON answer and its status; any status outside 2xx becomes a CliError with the problem's words. */
  async request<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (error) {
      const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
      const why = (error as Error).name === 'TimeoutError' ? `no answer within ${this.options.timeoutMs} ms` : (cause?.code ?? cause?.message ?? (error as Error).message);
      throw new CliError(EXIT.error, `cannot reach the Rampart API at ${this.base}: ${why} (set RAMPART_API_URL or --url)`);
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      throw new CliError(EXIT.error, `the API answered ${response.status} with something that is not JSON: ${text.slice(0, 200)}`);
    }
    if (response.ok) return { status: response.status, body: parsed as T };
    const problem = (parsed ?? {}) as ProblemBody;
    const message = problem.detail ?? problem.title ?? `the API answered ${response.status}`;
    const details = (problem.errors ?? []).filter((e) => !message.includes(e.message)).map((e) => `${e.field}: ${e.message}`);
    const hint = response.status === 401 && !this.options.token ? ['set RAMPART_TOKEN or pass --token'] : [];
    throw new CliError(exitCodeFor(response.status), `${message} (${response.status})`, [...details, ...hint]);
  }
}
