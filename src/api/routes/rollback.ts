import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { nameSchema, rolloutPlan, versionSchema, type TargetSpec } from '../../spec/release-spec';
import { RollbackRefusedError } from '../../temporal/releases';
import { principalOf, releasePath, type ApiContext } from '../context';
import { PROBLEM_CONTENT_TYPE, ProblemError, problemSchema, toProblem } from '../problem';
import { SpecRegistry } from '../spec-registry';
import { errorResponses, reasonSchema } from '../schemas';

const rollbackBodySchema = z
  .object({
    to: versionSchema.optional().describe('A version that was stable in the lane; default: the one stable before the current one (skipping versions a rollback left).'),
    reason: reasonSchema.describe('Why: recorded with the actor (the token name) in the rollback history.'),
    region: nameSchema.optional().describe("A region of a service released in rollouts: that region's lane rolls back (with the region's registered target)."),
  })
  .strict()
  .describe('A rollback of the promoted release to a known-good version.');

const rollbackAnswerSchema = z.object({
  releaseId: z.string().describe('rollback/<service>/<environment>/<version>/<id>: follow it as a release.'),
  disposition: z
    .enum(['started', 'queued', 'duplicate'])
    .describe('started: running now; queued: starts once the release in flight it supersedes has rolled back; duplicate: the same rollback is already under way.'),
  from: z.string().nullable().describe('The version stable when the lane took the request.'),
  to: z.string().describe('The known-good version the lane returns to.'),
  supersedes: z.string().optional().describe('The release in flight this rollback supersedes.'),
  allowed: z.array(z.string()).describe('Every version a rollback may return to, newest first.'),
});

const refusedSchema = problemSchema.extend({ allowed: z.array(z.string()).describe('The versions a rollback may return to, newest first.') });

const STATUS = { started: 201, queued: 202, duplicate: 200 } as const;

/** The rollback command: through the service's lane, on the fast path (the target is known-good). */
export const rollbackRoutes: FastifyPluginAsyncZod<{ ctx: ApiContext }> = async (app, { ctx }) => {
  const operator = { access: { kind: 'token' as const, role: 'operator' as const } };

  /** A registered service deploys as its reviewed spec says today; one without lets the lane use the target the version ran with. */
  function registeredTarget(service: string, environment: string, actor: string, region?: string): TargetSpec | undefined {
    const found = ctx.specs.find(service, environment);
    if (!found || 'ambiguous' in found) return undefined;
    // Any valid version will do: only the target of the composed spec is used.
    const spec = SpecRegistry.specFor(found, { version: '0'.repeat(40), requestedBy: actor });
    if (!region) return spec.target;
    const regional = rolloutPlan(spec)?.specs[region];
    if (!regional) {
      const detail = `${service} in ${environment} has no region ${region} in ${found.file}`;
      throw new ProblemError(400, 'invalid-request', detail, [{ field: 'body.region', message: detail }]);
    }
    return regional.target;
  }

  app.post(
    '/v1/services/:service/:environment/rollback',
    {
      config: operator,
      schema: {
        tags: ['services'],
        summary: 'Roll the promoted release back to a known-good version, in seconds.',
        description:
          'The lane returns to a version that was stable in it: by default the one stable before the current one. The fast path skips ' +
          'synthetic load, analysis and bakes: the known-good version is deployed, checked healthy, given all traffic, then put in the ' +
          'stable slot, retiring the current version; a failure undoes every step. A release in flight is superseded first. ' +
          '201 started, 202 queued behind the release it supersedes, 200 the same rollback is already under way; 409 with `allowed` when ' +
          'the version was never stable here (or is stable now). The actor is the token name; who, why, from and to stay in the history.',
        security: [{ bearer: [] }],
        params: z.object({ service: nameSchema, environment: nameSchema }).strict(),
        body: rollbackBodySchema,
        response: { 200: rollbackAnswerSchema, 201: rollbackAnswerSchema, 202: rollbackAnswerSchema, 409: refusedSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { service, environment } = request.params;
      const actor = principalOf(request).name;
      const { region } = request.body;
      const target = registeredTarget(service, environment, actor, region);
      try {
        const answer = await ctx.releases.rollback(service, environment, {
          ...(request.body.to ? { to: request.body.to } : {}),
          actor,
          reason: request.body.reason,
          ...(target ? { target } : {}),
        }, region);
        if (answer.disposition === 'refused' || !answer.releaseId || !answer.to) throw new Error('the lane answered a refusal as an answer');
        const { releaseId, disposition, from, to, supersedes, allowed } = answer;
        return reply
          .status(STATUS[disposition])
          .header('location', releasePath(releaseId))
          .send({ releaseId, disposition, from, to, allowed, ...(supersedes ? { supersedes } : {}) });
      } catch (error) {
        if (!(error instanceof RollbackRefusedError)) throw error;
        const field = request.body.to ? 'body.to' : 'params.service';
        const detail = `${error.message}; a rollback may return to: ${error.allowed.length ? error.allowed.join(', ') : 'nothing yet'}`;
        const { problem } = toProblem(new ProblemError(409, 'rollback-refused', detail, [{ field, message: error.message }]), request);
        return reply.status(409).type(PROBLEM_CONTENT_TYPE).send({ ...problem, allowed: error.allowed });
      }
    },
  );
};
