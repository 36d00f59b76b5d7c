// GitHub's webhooks: a workflow run that completed with success, or a deployment, releases the
// services whose registered specs are bound to the repository. The version is the commit SHA.
// GitHub's payloads carry far more than Rampart reads; the fields it reads are checked, the rest is
// GitHub's business and is let through.
import { z } from 'zod';
import { nameSchema, versionSchema, type ReleaseSpec } from '../../spec/release-spec';
import { fieldsFromIssues, ProblemError } from '../problem';
import { SpecRegistry, type RegisteredSpec } from '../spec-registry';

const repositorySchema = z.looseObject({
  full_name: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'a repository is owner/name'),
});
const userSchema = z.looseObject({ login: z.string().min(1).max(100) });

export const workflowRunEventSchema = z.looseObject({
  action: z.string().max(100),
  workflow_run: z.looseObject({
    id: z.number().int(),
    name: z.string().max(500).nullish(),
    path: z.string().max(500).nullish(),
    head_sha: versionSchema,
    head_branch: z.string().max(500).nullish(),
    status: z.string().max(100).nullish(),
    conclusion: z.string().max(100).nullish(),
    html_url: z.url().nullish(),
    head_commit: z.looseObject({ timestamp: z.iso.datetime({ offset: true }) }).nullish(),
    triggering_actor: userSchema.nullish(),
  }),
  repository: repositorySchema,
  sender: userSchema.optional(),
});

export const deploymentEventSchema = z.looseObject({
  action: z.string().max(100).optional(),
  deployment: z.looseObject({
    id: z.number().int(),
    sha: versionSchema,
    environment: z.string().min(1).max(200),
    creator: userSchema.nullish(),
  }),
  repository: repositorySchema,
  sender: userSchema.optional(),
});

export type GitHubOutcome =
  | { kind: 'ignored'; reason: string }
  | { kind: 'release'; specs: ReleaseSpec[] };

function parse<T extends z.ZodType>(schema: T, payload: unknown): z.infer<T> {
  const result = schema.safeParse(payload);
  if (!result.success) {
    const errors = fieldsFromIssues('body', result.error.issues);
    throw new ProblemError(400, 'invalid-request', errors.map((e) => `${e.field}: ${e.message}`).join('; '), errors);
  }
  return result.data;
}

function unbound(repository: string, what: string): ProblemError {
  const detail = `no registered spec is bound to ${repository}${what}: add github.repository to the service's spec in RAMPART_SPECS_DIR`;
  return new ProblemError(422, 'no-spec', detail, [{ field: 'body.repository.full_name', message: detail }]);
}

/** What a GitHub event asks of Rampart: which releases to start, or why it asks for none. */
export function releasesForGitHubEvent(event: string, payload: unknown, specs: SpecRegistry): GitHubOutcome {
  switch (event) {
    case 'ping':
      return { kind: 'ignored', reason: 'pong' };
    case 'workflow_run': {
      const { action, workflow_run: run, repository, sender } = parse(workflowRunEventSchema, payload);
      if (action !== 'completed') return { kind: 'ignored', reason: `workflow run ${action}: only completed runs release` };
      if (run.conclusion !== 'success') return { kind: 'ignored', reason: `workflow run concluded ${run.conclusion ?? 'without a conclusion'}: only successful runs release` };
      const bound = specs.forGitHub(repository.full_name, {});
      if (bound.length === 0) throw unbound(repository.full_name, '');
      const workflow = [run.name, run.path].filter((w): w is string => typeof w === 'string');
      const matching = specs.forGitHub(repository.full_name, { workflow, branch: run.head_branch ?? null });
      if (matching.length === 0) {
        return { kind: 'ignored', reason: `workflow ${workflow.join(' / ')} on branch ${run.head_branch ?? '(none)'} releases no registered service` };
      }
      const requestedBy = `github:${run.triggering_actor?.login ?? sender?.login ?? 'unknown'}`;
      return {
        kind: 'release',
        specs: matching.map((entry) =>
          specFor(entry, {
            version: run.head_sha,
            commit: run.head_commit ? { sha: run.head_sha, time: run.head_commit.timestamp } : undefined,
            pipelineUrl: run.html_url ?? undefined,
            requestedBy,
          }),
        ),
      };
    }
    case 'deployment': {
      const { action, deployment, repository, sender } = parse(deploymentEventSchema, payload);
      if (action !== undefined && action !== 'created') return { kind: 'ignored', reason: `deployment ${action}: only created deployments release` };
      const environment = deployment.environment.toLowerCase();
      if (!nameSchema.safeParse(environment).success) {
        const detail = `"${deployment.environment}" cannot be a Rampart environment: use lower-case letters, digits and dashes`;
        throw new ProblemError(422, 'invalid-environment', detail, [{ field: 'body.deployment.environment', message: detail }]);
      }
      const matching = specs.forGitHub(repository.full_name, { environment });
      if (matching.length === 0) throw unbound(repository.full_name, ` in environment ${environment}`);
      const requestedBy = `github:${deployment.creator?.login ?? sender?.login ?? 'unknown'}`;
      return { kind: 'release', specs: matching.map((entry) => specFor(entry, { version: deployment.sha, requestedBy })) };
    }
    default:
      return { kind: 'ignored', reason: `${event} events do not release anything (send workflow_run or deployment)` };
  }
}

function specFor(entry: RegisteredSpec, facts: Parameters<typeof SpecRegistry.specFor>[1]): ReleaseSpec {
  return SpecRegistry.specFor(entry, facts);
}
