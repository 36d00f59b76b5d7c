// GitHub's webhooks: a workflow run that completed with success, or a deployment, releases the
// services whose registered specs are bound to the repository. The version is the commit SHA.
// Anyone who can open a pull request can make a workflow run complete with success, so a run
// releases only when everything the binding names holds: the repository's own commit (no fork),
// a bound workflow, on a bound branch, started by a trigger only people with write access have.
// GitHub's payloads carry far more than Rampart reads; the fields it reads are checked, the rest is
// GitHub's business and is let through.
import { z } from 'zod';
import { versionSchema, type ReleaseSpec } from '../../spec/release-spec';
import { fieldsFromIssues, ProblemError } from '../problem';
import { SpecRegistry, type GitHubBinding, type RegisteredSpec } from '../spec-registry';

const fullNameSchema = z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'a repository is owner/name');
const repositorySchema = z.looseObject({
  full_name: fullNameSchema,
  default_branch: z.string().min(1).max(500).nullish(),
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
    /** What started the run: push, workflow_dispatch, pull_request… */
    event: z.string().max(100).nullish(),
    /** Where the run's commit comes from: a fork's pull request names the fork here. */
    head_repository: z.looseObject({ full_name: fullNameSchema }).nullish(),
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

function unbound(repository: string): ProblemError {
  const detail = `no registered spec is bound to ${repository}: add github.repository to the service's spec in RAMPART_SPECS_DIR`;
  return new ProblemError(422, 'no-spec', detail, [{ field: 'body.repository.full_name', message: detail }]);
}

/** Why a bound spec is not released by this run, or null when it is. */
function whyRunDoesNotRelease(
  binding: GitHubBinding,
  run: { workflow: string[]; branch: string | null; event: string | null; defaultBranch: string | null },
): string | null {
  if (!run.event || !(binding.events as readonly string[]).includes(run.event)) {
    return `a run started by ${run.event ?? '(no event)'} does not release (github.events: ${binding.events.join(', ')})`;
  }
  if (binding.workflows.length === 0) return 'no workflow is bound (github.workflows is empty)';
  if (!binding.workflows.some((w) => run.workflow.includes(w))) {
    return `workflow ${run.workflow.join(' / ') || '(unnamed)'} is not bound (github.workflows: ${binding.workflows.join(', ')})`;
  }
  const branches = binding.branches.length ? binding.branches : run.defaultBranch ? [run.defaultBranch] : [];
  if (branches.length === 0) return 'the payload names no default branch (repository.default_branch) and github.branches is empty';
  if (!run.branch || !branches.includes(run.branch)) {
    const source = binding.branches.length ? 'github.branches' : "the repository's default branch";
    return `branch ${run.branch ?? '(none)'} is not bound (${source}: ${branches.join(', ')})`;
  }
  return null;
}

/** The reasons of every bound spec, said once each: usually one spec, one reason. */
function ignoredBecause(reasons: { entry: RegisteredSpec; reason: string }[]): GitHubOutcome {
  const distinct = [...new Set(reasons.map((r) => r.reason))];
  const reason =
    distinct.length === 1 ? distinct[0]! : reasons.map(({ entry, reason }) => `${entry.service}/${entry.environment}: ${reason}`).join('; ');
  return { kind: 'ignored', reason };
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
      const bound = specs.forGitHub(repository.full_name);
      if (bound.length === 0) throw unbound(repository.full_name);
      const origin = run.head_repository?.full_name;
      if (!origin) return { kind: 'ignored', reason: `the run does not say which repository its commit comes from (workflow_run.head_repository): only runs of ${repository.full_name}'s own commits release` };
      if (origin.toLowerCase() !== repository.full_name.toLowerCase()) {
        return { kind: 'ignored', reason: `the run's commit comes from ${origin}, a fork: only runs of ${repository.full_name}'s own commits release` };
      }
      const facts = {
        workflow: [run.name, run.path].filter((w): w is string => typeof w === 'string'),
        branch: run.head_branch ?? null,
        event: run.event ?? null,
        defaultBranch: repository.default_branch ?? null,
      };
      const verdicts = bound.map((entry) => ({ entry, reason: whyRunDoesNotRelease(entry.github!, facts) }));
      const matching = verdicts.filter((v) => v.reason === null).map((v) => v.entry);
      if (matching.length === 0) return ignoredBecause(verdicts as { entry: RegisteredSpec; reason: string }[]);
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
      const bound = specs.forGitHub(repository.full_name);
      if (bound.length === 0) throw unbound(repository.full_name);
      const environment = deployment.environment.toLowerCase();
      const matching = bound.filter((entry) => entry.github!.environments.some((e) => e.toLowerCase() === environment));
      if (matching.length === 0) {
        return { kind: 'ignored', reason: `no registered spec of ${repository.full_name} binds the GitHub environment "${deployment.environment}" (github.environments)` };
      }
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
