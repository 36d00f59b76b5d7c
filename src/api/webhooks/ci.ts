// The generic CI webhook: any pipeline (GitHub Actions, GitLab CI, Jenkins) posts the immutable
// version it built, signed like GitHub's webhooks, with a spec or relying on the service's registered one.
import { z } from 'zod';
import { InvalidSpecError, validateReleaseSpec } from '../../spec/parse';
import { nameSchema, releaseSpecSchema, versionSchema, type ReleaseSpec } from '../../spec/release-spec';
import { ProblemError, type FieldProblem } from '../problem';
import { SpecRegistry } from '../spec-registry';

const FACT_FIELDS = ['service', 'environment', 'version', 'commit', 'pipelineUrl', 'requestedBy'];

export const ciDeliverySchema = z
  .object({
    service: nameSchema.describe('The service the version belongs to.'),
    environment: nameSchema.optional().describe("Where to release it; default the spec's environment (production)."),
    version: versionSchema,
    commit: releaseSpecSchema.shape.commit,
    pipelineUrl: z.url().optional().describe('The pipeline run that built the version.'),
    requestedBy: z.string().min(1).max(200).optional().describe('Who or what asked (recorded as the requester); default "ci".'),
    spec: releaseSpecSchema
      .omit({ service: true, version: true, commit: true, pipelineUrl: true, requestedBy: true })
      .optional()
      .describe("The release spec without the fields above; unset: the service's registered spec (RAMPART_SPECS_DIR)."),
  })
  .strict()
  .describe('A CI delivery: an immutable version of a service is ready.');

export type CiDelivery = z.infer<typeof ciDeliverySchema>;

/** The release spec a CI delivery asks for: its own spec, or the service's registered one, with the delivery's facts. */
export function specForCiDelivery(delivery: CiDelivery, specs: SpecRegistry): ReleaseSpec {
  const facts = {
    version: delivery.version,
    commit: delivery.commit,
    pipelineUrl: delivery.pipelineUrl,
    requestedBy: delivery.requestedBy ?? 'ci',
  };
  if (delivery.spec) {
    try {
      return validateReleaseSpec({
        ...delivery.spec,
        service: delivery.service,
        environment: delivery.environment ?? delivery.spec.environment,
        version: facts.version,
        ...(facts.commit ? { commit: facts.commit } : {}),
        ...(facts.pipelineUrl ? { pipelineUrl: facts.pipelineUrl } : {}),
        requestedBy: facts.requestedBy,
      });
    } catch (error) {
      if (!(error instanceof InvalidSpecError)) throw error;
      const errors: FieldProblem[] = error.problems.map((p) => ({
        field: FACT_FIELDS.includes(p.field.split('.')[0]!) ? `body.${p.field}` : `body.spec.${p.field}`,
        message: p.message,
      }));
      throw new ProblemError(400, 'invalid-spec', errors.map((e) => `${e.field}: ${e.message}`).join('; '), errors);
    }
  }
  const found = specs.find(delivery.service, delivery.environment);
  if (found === null) {
    const detail =
      `no spec is registered for ${delivery.service}${delivery.environment ? ` in ${delivery.environment}` : ''}: ` +
      'send one in the spec field, or add the service to RAMPART_SPECS_DIR';
    throw new ProblemError(422, 'no-spec', detail, [{ field: 'body.spec', message: detail }]);
  }
  if ('ambiguous' in found) {
    const detail = `${delivery.service} has specs for ${found.ambiguous.join(', ')}: say which in environment`;
    throw new ProblemError(422, 'ambiguous-environment', detail, [{ field: 'body.environment', message: detail }]);
  }
  return SpecRegistry.specFor(found, facts);
}
