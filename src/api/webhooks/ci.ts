// The generic CI webhook: any pipeline (GitHub Actions, GitLab CI, Jenkins) posts the immutable
// version it built, signed like GitHub's webhooks. A registered service is released from its
// registered spec, with the overrides the delivery brings; only a service without one may come with
// an inline spec, on the simulated target.
import { z } from 'zod';
import { InvalidSpecError } from '../../spec/parse';
import { INLINE_SPEC_FIELDS, inlineSpecSchema, releaseOverridesSchema } from '../../spec/release-request';
import { nameSchema, releaseSpecSchema, versionSchema, type ReleaseSpec } from '../../spec/release-spec';
import { ProblemError, summarize, type FieldProblem } from '../problem';
import type { SpecRegistry } from '../spec-registry';

export const ciDeliverySchema = z
  .object({
    service: nameSchema.describe('The service the version belongs to.'),
    environment: nameSchema.optional().describe("Where to release it; default the registered spec's only environment, else production."),
    version: versionSchema,
    commit: releaseSpecSchema.shape.commit,
    pipelineUrl: z.url().optional().describe('The pipeline run that built the version.'),
    requestedBy: z.string().min(1).max(200).optional().describe('Who or what asked (recorded as the requester); default "ci".'),
    overrides: releaseOverridesSchema.optional(),
    spec: inlineSpecSchema
      .optional()
      .describe("Only for a service without a registered spec (RAMPART_SPECS_DIR): its spec, on the simulated target. A registered service takes none."),
  })
  .strict()
  .describe('A CI delivery: an immutable version of a service is ready.');

export type CiDelivery = z.infer<typeof ciDeliverySchema>;

const SPEC_FIELDS: readonly string[] = INLINE_SPEC_FIELDS;

/** The release spec a CI delivery asks for: the service's registered spec, or its own inline one, with the delivery's facts and overrides. */
export function specForCiDelivery(delivery: CiDelivery, specs: SpecRegistry): ReleaseSpec {
  const registered = specs.find(delivery.service, delivery.environment);
  if (registered !== null && !('ambiguous' in registered) && delivery.spec) {
    const detail =
      `${delivery.service} in ${registered.environment} is registered (${registered.file}): a delivery brings its version and overrides, never a spec`;
    throw new ProblemError(400, 'invalid-spec', detail, [{ field: 'body.spec', message: detail }]);
  }
  if (registered === null && !delivery.spec) {
    const detail =
      `no spec is registered for ${delivery.service}${delivery.environment ? ` in ${delivery.environment}` : ''}: ` +
      'add the service to RAMPART_SPECS_DIR (or, on the simulated target, send a spec)';
    throw new ProblemError(422, 'no-spec', detail, [{ field: 'body.spec', message: detail }]);
  }
  try {
    return specs.releaseFor(
      {
        service: delivery.service,
        ...(delivery.environment ? { environment: delivery.environment } : {}),
        version: delivery.version,
        ...(delivery.commit ? { commit: delivery.commit } : {}),
        ...(delivery.pipelineUrl ? { pipelineUrl: delivery.pipelineUrl } : {}),
        ...delivery.spec,
        ...(delivery.overrides ? { overrides: delivery.overrides } : {}),
      },
      delivery.requestedBy ?? 'ci',
    );
  } catch (error) {
    if (!(error instanceof InvalidSpecError)) throw error;
    // The request's spec fields sit under `spec` in a delivery.
    const errors: FieldProblem[] = error.problems.map((p) => ({
      field: SPEC_FIELDS.includes(p.field.split('.')[0]!) ? `body.spec.${p.field}` : `body.${p.field}`,
      message: p.message,
    }));
    throw new ProblemError(400, 'invalid-spec', summarize(errors, 'invalid release spec'), errors);
  }
}
