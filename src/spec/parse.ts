import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { checkedReleaseSpecSchema, type ReleaseSpec } from './release-spec';

/** One problem with a spec: where it is (a dotted path such as strategy.steps.2.weight) and why. */
export interface SpecProblem {
  field: string;
  message: string;
}

export class InvalidSpecError extends Error {
  constructor(readonly problems: SpecProblem[]) {
    super(`invalid release spec: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`);
    this.name = 'InvalidSpecError';
  }
}

export function describeIssues(issues: readonly z.core.$ZodIssue[]): SpecProblem[] {
  return issues.map((issue) => ({
    field: issue.path.length ? issue.path.map(String).join('.') : '(root)',
    message: issue.message,
  }));
}

/** Validates an already-decoded spec, filling in every default. Throws InvalidSpecError naming each bad field. */
export function validateReleaseSpec(input: unknown): ReleaseSpec {
  const result = checkedReleaseSpecSchema.safeParse(input);
  if (!result.success) throw new InvalidSpecError(describeIssues(result.error.issues));
  return result.data;
}

/** Parses a spec written as YAML or JSON (JSON is YAML, so one parser serves both). */
export function parseReleaseSpec(text: string): ReleaseSpec {
  let decoded: unknown;
  try {
    decoded = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (error) {
    throw new InvalidSpecError([{ field: '(document)', message: `not valid YAML or JSON: ${(error as Error).message}` }]);
  }
  if (decoded === null || typeof decoded !== 'object' || Array.isArray(decoded)) {
    throw new InvalidSpecError([{ field: '(document)', message: 'a release spec is a mapping with service, version, …' }]);
  }
  return validateReleaseSpec(decoded);
}
