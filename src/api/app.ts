// The API as one Fastify app: built here from its dependencies, listened on by server.ts. Every
// route declares who may call it (config.access), validates its input with zod, and answers errors
// as problem documents; the OpenAPI document is generated from the same schemas.
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest, type onRequestHookHandler } from 'fastify';
import { isResponseSerializationError, jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import {
  bearerToken,
  roleAtLeast,
  secretEquals,
  SIGNATURE_HEADER,
  TokenStore,
  verifySignature,
  type Access,
  type Principal,
} from './auth';
import type { Registry } from 'prom-client';
import type { ApiContext, DrillOperations, ReleaseOperations } from './context';
import { ApiMetrics } from './metrics';
import { badRequest, PROBLEM_CONTENT_TYPE, ProblemError, toProblem, unauthenticated } from './problem';
import { alertRoutes } from './routes/alerts';
import { doraRoutes } from './routes/dora';
import { drillRoutes } from './routes/drills';
import { healthRoutes } from './routes/health';
import { releaseRoutes } from './routes/releases';
import { rollbackRoutes } from './routes/rollback';
import { rolloutRoutes } from './routes/rollouts';
import { serviceRoutes } from './routes/services';
import { webhookRoutes } from './routes/webhooks';
import type { TrustedProxies } from '../config';
import { DEFAULT_API_SETTINGS, type ApiSettings } from './settings';
import { SpecRegistry } from './spec-registry';
import { dashboardRoutes } from './ui/plugin';

export interface ApiDependencies {
  releases: ReleaseOperations;
  /** Resolves when Temporal answers; /readyz reports it. */
  ping(): Promise<void>;
  settings?: Partial<ApiSettings>;
  specs?: SpecRegistry;
  /** Pass one to add other metrics to the same /metrics page. */
  metrics?: ApiMetrics;
  /** Rollback drill schedules (a DrillClient); without them the drill routes answer 503. */
  drills?: DrillOperations;
  /** Other registries served on /metrics too: the DeploymentMetrics of a worker running in this process. */
  registries?: readonly Registry[];
  /** A pino logger; default: silent. */
  logger?: FastifyBaseLogger;
}

export const API_VERSION = '1.0.0';

/** Every route and who may call it: what the tests walk to check that each one refuses the wrong caller. */
export interface RouteAccess {
  method: string;
  url: string;
  access: Access;
}

declare module 'fastify' {
  interface FastifyInstance {
    routeTable: readonly RouteAccess[];
  }
}

/** Routes under these prefixes belong to the documentation page and are public. */
const DOCS_PREFIX = '/docs';

const CLOSED: Access = { kind: 'token', role: 'admin' };

export async function buildApp(deps: ApiDependencies): Promise<FastifyInstance> {
  const settings: ApiSettings = { ...DEFAULT_API_SETTINGS, ...deps.settings };
  const ctx: ApiContext = {
    settings,
    releases: deps.releases,
    specs: deps.specs ?? new SpecRegistry(),
    metrics: deps.metrics ?? new ApiMetrics(),
    drills: deps.drills ?? null,
    ping: deps.ping,
  };
  for (const registry of deps.registries ?? []) ctx.metrics.include(registry);
  const tokens = new TokenStore(settings.tokens);

  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: false }),
    bodyLimit: settings.bodyLimit,
    // Fastify's two lines per request are noise at webhook rates; changes are logged once, below.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: proxyTrust(settings.trustProxy),
    // Client-chosen request ids would let a caller forge log lines; every request gets a fresh one.
    requestIdHeader: false,
    // Requests that still arrive while closing (on a kept-alive connection) get a problem document, below.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: 600 },
  });
  app.setValidatorCompiler(validatorCompiler);
  ctx.metrics.dora.attach(
    (days) => ctx.releases.dora({ days }),
    (error) => app.log.warn({ err: error }, 'DORA figures could not be computed for /metrics; the page is served without them'),
  );
  // A status from an older workflow version may not match today's response schema: the operator
  // must still see (and abort) that release, so the answer goes out as it is, with a warning.
  app.setSerializerCompiler((route) => {
    const serialize = serializerCompiler(route as Parameters<typeof serializerCompiler>[0]);
    return (data) => {
      try {
        return serialize(data);
      } catch (error) {
        if (!isResponseSerializationError(error)) throw error;
        app.log.warn({ url: route.url, status: route.httpStatus, issues: error.cause.issues.slice(0, 5) }, 'answer does not match its response schema');
        return JSON.stringify(data);
      }
    };
  });

  app.setErrorHandler((error, request, reply) => {
    const { problem, headers } = toProblem(error, request);
    if (problem.status >= 500) request.log.error({ err: error, url: request.url }, 'request failed');
    void reply.headers(headers).status(problem.status).type(PROBLEM_CONTENT_TYPE).send(problem);
  });
  app.setNotFoundHandler((request, reply) => {
    const detail = `no route ${request.method} ${request.url.split('?')[0]}; see /docs`;
    const { problem } = toProblem(new ProblemError(404, 'no-route', detail, [{ field: 'url', message: detail }]), request);
    void reply.status(404).type(PROBLEM_CONTENT_TYPE).send(problem);
  });

  // Bodies are kept as bytes until the route's credentials are checked: a webhook's signature is
  // over the raw body, and nothing of an unauthenticated body is interpreted.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
    request.rawBody = body as Buffer;
    done(null, undefined);
  });

  await app.register(helmet, { global: true });
  if (settings.rateLimit.max > 0) {
    await app.register(rateLimit, {
      global: true,
      max: settings.rateLimit.max,
      timeWindow: settings.rateLimit.windowMs,
      errorResponseBuilder: (_request, context) =>
        new ProblemError(429, 'rate-limited', `more than ${context.max} requests in ${context.after === '1 minute' ? 'a minute' : context.after}; retry later`, [
          { field: 'request', message: 'rate limit reached' },
        ]),
    });
  }

  const routeTable: RouteAccess[] = [];
  app.decorate('routeTable', routeTable);
  // After the rate limiter's own onRoute hook, so a flood of wrong tokens is limited too.
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith(DOCS_PREFIX)) route.config = { ...route.config, access: { kind: 'public' } };
    const access = route.config?.access ?? CLOSED;
    for (const method of [route.method].flat()) routeTable.push({ method, url: route.url, access });
    const hook: onRequestHookHandler = async (request) => {
      request.principal = authenticate(request, access);
    };
    const existing = route.onRequest;
    route.onRequest = existing === undefined ? [hook] : Array.isArray(existing) ? [...existing, hook] : [existing, hook];
  });

  app.addHook('preValidation', async (request) => {
    const access = request.routeOptions.config.access ?? CLOSED;
    if (access.kind === 'signature') request.principal = checkSignature(request);
    if (request.rawBody !== undefined) request.body = decodeBody(request, access.kind === 'signature');
  });

  // While closing, answers in flight tell their clients to hang up, so keep-alive connections end
  // with them rather than holding the close open until the grace period runs out; a request that
  // still arrives is sent to another replica with a 503.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async () => {
    if (closing) throw new ProblemError(503, 'shutting-down', 'this API process is shutting down; retry', [], { 'retry-after': '1' });
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing) void reply.header('connection', 'close');
    return payload;
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    ctx.metrics.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    ctx.metrics.duration.observe({ method: request.method, route }, reply.elapsedTime / 1_000);
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      request.log.info(
        { method: request.method, route, status: reply.statusCode, caller: request.principal?.name, client: request.ip, ms: Math.round(reply.elapsedTime) },
        'request answered',
      );
    }
  });

  function authenticate(request: FastifyRequest, access: Access): Principal | undefined {
    switch (access.kind) {
      case 'public':
      case 'signature':
        return undefined;
      case 'token': {
        const token = bearerToken(request.headers.authorization);
        if (!token) throw unauthenticated('send an API token: Authorization: Bearer <token>', 'header.authorization');
        const found = tokens.find(token);
        if (!found) throw unauthenticated('the token is not valid', 'header.authorization');
        if (!roleAtLeast(found.role, access.role)) {
          const detail = `token "${found.name}" has the ${found.role} role; this route needs ${access.role}`;
          throw new ProblemError(403, 'forbidden', detail, [{ field: 'header.authorization', message: detail }]);
        }
        return found;
      }
      case 'alertmanager': {
        const token = bearerToken(request.headers.authorization);
        if (!token) throw unauthenticated('send the Alertmanager bearer token (http_config.authorization)', 'header.authorization');
        if (settings.alertmanagerToken && secretEquals(settings.alertmanagerToken, token)) return { name: 'alertmanager', role: 'alertmanager' };
        const found = tokens.find(token);
        if (!found) throw unauthenticated('the token is not valid', 'header.authorization');
        if (!roleAtLeast(found.role, 'operator')) {
          const detail = `token "${found.name}" has the ${found.role} role; alerts need the Alertmanager token or an operator token`;
          throw new ProblemError(403, 'forbidden', detail, [{ field: 'header.authorization', message: detail }]);
        }
        return found;
      }
    }
  }

  function checkSignature(request: FastifyRequest): Principal {
    const field = `header.${SIGNATURE_HEADER}`;
    if (!settings.webhookSecret) throw unauthenticated('webhook signatures cannot be checked: this server has no RAMPART_WEBHOOK_SECRET', field);
    const header = request.headers[SIGNATURE_HEADER];
    const verdict = verifySignature(settings.webhookSecret, request.rawBody ?? Buffer.alloc(0), Array.isArray(header) ? header[0] : header);
    if (!verdict.ok) throw unauthenticated(verdict.reason, field);
    return { name: 'webhook', role: 'webhook' };
  }

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Rampart API',
        version: API_VERSION,
        description:
          'Start, watch and steer releases. API routes take `Authorization: Bearer <token>` (roles viewer < operator < admin); ' +
          'CI and GitHub webhooks are signed (X-Hub-Signature-256, HMAC-SHA256 of the raw body); Alertmanager sends its bearer token. ' +
          'Every error is an application/problem+json document naming the field at fault.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'An API token (RAMPART_API_TOKENS).' },
          signature: { type: 'apiKey', in: 'header', name: 'X-Hub-Signature-256', description: 'sha256=<hex HMAC-SHA256 of the raw body>.' },
        },
      },
      tags: [
        { name: 'releases', description: 'Start, list, inspect and steer releases.' },
        { name: 'rollouts', description: 'Rollouts across regions: waves, commands on the rollout or one region, what runs where.' },
        { name: 'webhooks', description: 'CI, GitHub and Alertmanager deliveries.' },
        { name: 'services', description: 'Registered service specs and lanes.' },
        { name: 'drills', description: 'Rollback drills on Temporal Schedules, and their results.' },
        { name: 'dora', description: 'The four DORA keys, from the releases’ own history.' },
        { name: 'operations', description: 'Health, readiness, metrics.' },
      ],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: DOCS_PREFIX, staticCSP: true });

  await app.register(healthRoutes, { ctx });
  await app.register(releaseRoutes, { ctx });
  await app.register(serviceRoutes, { ctx });
  await app.register(rollbackRoutes, { ctx });
  await app.register(rolloutRoutes, { ctx });
  await app.register(webhookRoutes, { ctx });
  await app.register(alertRoutes, { ctx });
  await app.register(drillRoutes, { ctx });
  await app.register(doraRoutes, { ctx });
  await app.register(dashboardRoutes);
  return app;
}

/**
 * Fastify's own hop count believes nothing (it cannot check the peer), so hops are counted here, as
 * proxy-addr counts them: the `hops` nearest addresses are proxies, the next one is the client.
 */
function proxyTrust(trusted: TrustedProxies): false | string[] | ((address: string, hop: number) => boolean) {
  if (trusted === false) return false;
  if ('hops' in trusted) return (_address, hop) => hop < trusted.hops;
  return trusted.addresses;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** JSON.parse that refuses keys which could reach an object's prototype. */
function parseJson(text: string, field: string): unknown {
  try {
    return JSON.parse(text, function (key, value: unknown) {
      if (key === '__proto__' || (key === 'constructor' && value !== null && typeof value === 'object' && 'prototype' in value)) {
        throw new SyntaxError(`the key "${key}" is not allowed`);
      }
      return value;
    });
  } catch (error) {
    throw badRequest(`${field} is not valid JSON: ${(error as Error).message}`, [{ field, message: `not valid JSON: ${(error as Error).message}` }]);
  }
}

/** JSON bodies; webhooks may also come form-encoded (GitHub's application/x-www-form-urlencoded, payload=<json>). */
function decodeBody(request: FastifyRequest, formAllowed: boolean): unknown {
  const raw = request.rawBody!;
  const header = request.headers['content-type'] ?? '';
  const [mediaType = '', ...params] = header.split(';').map((part) => part.trim().toLowerCase());
  const charset = params.find((p) => p.startsWith('charset='))?.slice('charset='.length).replace(/"/g, '');
  const unsupported = () =>
    new ProblemError(415, 'unsupported-media-type', `send the body as application/json${formAllowed ? ' (or GitHub’s form encoding)' : ''}, not "${header || 'nothing'}"`, [
      { field: 'header.content-type', message: 'unsupported media type' },
    ]);
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') throw unsupported();
  const json = mediaType === 'application/json' || /^application\/[a-z0-9.-]+\+json$/.test(mediaType);
  const form = formAllowed && mediaType === 'application/x-www-form-urlencoded';
  if (!json && !form) {
    if (raw.length === 0 && !header) return undefined;
    throw unsupported();
  }
  if (raw.length === 0) return undefined;
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw badRequest('the body is not valid UTF-8', [{ field: 'body', message: 'not valid UTF-8' }]);
  }
  if (json) return parseJson(text, 'body');
  const payload = new URLSearchParams(text).get('payload');
  if (payload === null) throw badRequest('a form-encoded webhook carries its JSON in the payload field', [{ field: 'body.payload', message: 'missing' }]);
  return parseJson(payload, 'body.payload');
}
