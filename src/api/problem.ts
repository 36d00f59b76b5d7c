// Every error the API gives is an RFC 9457 problem document (application/problem+json) that names the
// field at fault, so a person or a script can act on it without reading logs.
import { ScheduleAlreadyRunning } from '@temporalio/client';
import type { FastifyError, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { InvalidSpecError, type SpecProblem } from '../spec/parse';
import { DrillNotFoundError } from '../temporal/drills';
import { CommandRejectedError, ReleaseNotFoundError, SubmitRefusedError } from '../temporal/releases';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export const fieldProblemSchema = z.object({
  field: z.string().describe('Where the problem is: body.strategy.steps.2.weight, querystring.limit, header.authorization, …'),
  message: z.string().describe('What is wrong with it.'),
});

export const problemSchema = z
  .looseObject({
    type: z.string().describe('A URN naming the kind of problem, e.g. urn:rampart:problem:invalid-request.'),
    title: z.string().describe('Short summary of the kind of problem.'),
    status: z.number().int().describe('The HTTP status code.'),
    detail: z.string().describe('What went wrong this time, in words.'),
    instance: z.string().optional().describe('The request path.'),
    requestId: z.string().optional().describe('The request id, also in the logs.'),
    errors: z.array(fieldProblemSchema).optional().describe('One entry per field at fault.'),
  })
  .describe('RFC 9457 problem document.');

export type FieldProblem = z.infer<typeof fieldProblemSchema>;
export type Problem = z.infer<typeof problemSchema>;

const TITLES: Record<number, string> = {
  400: 'Invalid request',
  401: 'Not authenticated',
  403: 'Not allowed',
  404: 'Not found',
  405: 'Method not allowed',
  406: 'Not acceptable',
  408: 'Request timeout',
  409: 'Conflict with the release state',
  411: 'Length required',
  413: 'Body too large',
  414: 'URI too long',
  415: 'Unsupported media type',
  422: 'Cannot process the request',
  429: 'Too many requests',
  500: 'Internal error',
  503: 'Service unavailable',
};

/** An error the API answers as a problem document, as it is: status, slug, detail and the fields at fault. */
export class ProblemError extends Error {
  readonly statusCode: number;
  constructor(
    readonly status: number,
    readonly slug: string,
    readonly detail: string,
    readonly errors: FieldProblem[] = [],
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = 'ProblemError';
    this.statusCode = status;
  }
}

export function badRequest(detail: string, errors: FieldProblem[] = []): ProblemError {
  return new ProblemError(400, 'invalid-request', detail, errors);
}

export function unauthenticated(detail: string, field: string): ProblemError {
  return new ProblemError(401, 'unauthenticated', detail, [{ field, message: detail }], { 'www-authenticate': 'Bearer realm="rampart"' });
}

function joinPath(prefix: string, path: readonly PropertyKey[]): string {
  return [prefix, ...path.map(String)].filter(Boolean).join('.');
}

/** Zod issues as field problems, each unknown key named on its own. */
export function fieldsFromIssues(prefix: string, issues: readonly z.core.$ZodIssue[]): FieldProblem[] {
  return issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ field: joinPath(prefix, [...issue.path, key]), message: 'unknown field' }));
    }
    return [{ field: joinPath(prefix, issue.path), message: issue.message }];
  });
}

function fieldsFromSpecProblems(prefix: string, problems: SpecProblem[]): FieldProblem[] {
  return problems.map((p) => ({ field: p.field === '(root)' ? prefix : `${prefix}.${p.field}`, message: p.message }));
}

/** A 400 for zod issues found after the route's own validation (a drill's spec composed with its service), each named under `prefix`. */
export function invalidFields(prefix: string, issues: readonly z.core.$ZodIssue[], fallback: string): ProblemError {
  const errors = fieldsFromIssues(prefix, issues);
  return badRequest(summarize(errors, fallback), errors);
}

export function summarize(errors: FieldProblem[], fallback: string): string {
  if (errors.length === 0) return fallback;
  const shown = errors.slice(0, 5).map((e) => `${e.field}: ${e.message}`);
  return shown.join('; ') + (errors.length > 5 ? `; and ${errors.length - 5} more` : '');
}

/** Fastify's own 4xx errors, with the field they concern. */
const FASTIFY_FIELDS: Record<string, { slug: string; field: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { slug: 'body-too-large', field: 'body' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { slug: 'unsupported-media-type', field: 'header.content-type' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { slug: 'invalid-request', field: 'header.content-length' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { slug: 'invalid-request', field: 'body' },
  FST_ERR_CTP_INVALID_JSON_BODY: { slug: 'invalid-request', field: 'body' },
  FST_ERR_BAD_URL: { slug: 'invalid-request', field: 'url' },
  FST_ERR_ASYNC_CONSTRAINT: { slug: 'invalid-request', field: 'url' },
};

/** gRPC codes that mean Temporal cannot be reached now: the request may be retried later. */
const UNAVAILABLE_GRPC = new Set([4 /* DEADLINE_EXCEEDED */, 14 /* UNAVAILABLE */]);

function isTemporalUnavailable(error: unknown): boolean {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    const e = current as { name?: string; code?: unknown; cause?: unknown };
    if (e.name === 'ServiceError' && typeof e.code === 'number' && UNAVAILABLE_GRPC.has(e.code)) return true;
    if (typeof e.code === 'number' && UNAVAILABLE_GRPC.has(e.code) && 'details' in e) return true;
    if (e.name === 'TransportError' || e.name === 'ConnectionError') return true;
    current = e.cause;
  }
  return false;
}

/** Maps anything thrown while answering a request to the problem the client gets. 5xx details stay in the logs. */
export function toProblem(error: unknown, request: Pick<FastifyRequest, 'url' | 'id'>): { problem: Problem; headers: Record<string, string> } {
  const build = (status: number, slug: string, detail: string, errors: FieldProblem[] = [], headers: Record<string, string> = {}) => ({
    problem: {
      type: `urn:rampart:problem:${slug}`,
      title: TITLES[status] ?? (status >= 500 ? 'Server error' : 'Client error'),
      status,
      detail,
      instance: request.url.split('?')[0] ?? request.url,
      requestId: String(request.id),
      ...(errors.length ? { errors } : {}),
    },
    headers,
  });

  if (error instanceof ProblemError) return build(error.status, error.slug, error.detail, error.errors, error.headers);
  if (hasZodFastifySchemaValidationErrors(error)) {
    const where = (error as { validationContext?: string }).validationContext ?? 'body';
    const prefix = where === 'headers' ? 'header' : where;
    const errors = error.validation.flatMap((v) => {
      const path = v.instancePath.split('/').filter(Boolean);
      const keys = (v.params as { keys?: unknown }).keys;
      if (v.keyword === 'unrecognized_keys' && Array.isArray(keys)) {
        return keys.map((key) => ({ field: joinPath(prefix, [...path, String(key)]), message: 'unknown field' }));
      }
      return [{ field: joinPath(prefix, path), message: v.message ?? 'invalid' }];
    });
    return build(400, 'invalid-request', summarize(errors, `invalid ${prefix}`), errors);
  }
  if (error instanceof InvalidSpecError) {
    const errors = fieldsFromSpecProblems('body', error.problems);
    return build(400, 'invalid-spec', summarize(errors, 'invalid release spec'), errors);
  }
  if (error instanceof ReleaseNotFoundError) {
    return build(404, 'release-not-found', `no release ${error.releaseId}`, [{ field: 'params', message: `no release ${error.releaseId}` }]);
  }
  if (error instanceof DrillNotFoundError) {
    return build(404, 'drill-not-found', error.message, [{ field: 'params', message: error.message }]);
  }
  if (error instanceof ScheduleAlreadyRunning) {
    const detail = `a drill schedule ${error.scheduleId} exists already; delete it first, or pause and resume it`;
    return build(409, 'drill-exists', detail, [{ field: 'body.service', message: detail }]);
  }
  if (error instanceof SubmitRefusedError) {
    return build(409, 'submit-refused', `the release was refused: ${error.message}`, [{ field: 'body', message: error.message }]);
  }
  if (error instanceof CommandRejectedError) {
    return build(409, 'command-rejected', `${error.command} rejected: ${error.message}`, [{ field: 'state', message: error.message }]);
  }

  const fastifyError = error as Partial<FastifyError>;
  const status = typeof fastifyError.statusCode === 'number' ? fastifyError.statusCode : 500;
  if (status >= 400 && status < 500) {
    const known = fastifyError.code ? FASTIFY_FIELDS[fastifyError.code] : undefined;
    const detail = fastifyError.message ?? 'bad request';
    return build(status, known?.slug ?? 'invalid-request', detail, [{ field: known?.field ?? 'request', message: detail }]);
  }
  if (isTemporalUnavailable(error)) {
    return build(503, 'temporal-unavailable', 'Temporal cannot be reached right now; retry later', [], { 'retry-after': '5' });
  }
  return build(500, 'internal', `internal error; quote request id ${request.id} to find it in the logs`);
}
