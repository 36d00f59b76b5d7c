// The specs services "already have": a folder of YAML files (RAMPART_SPECS_DIR), one per service and
// environment, read and validated once at start. Webhooks that carry no spec (GitHub's, a CI call
// without `spec`) start releases from these. Files, not an API: every API replica behind a load
// balancer reads the same folder, and a change to how production is released goes through review.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../config';
import { OutboundAllowlist } from '../providers/outbound';
import { InvalidSpecError, validateReleaseSpec } from '../spec/parse';
import {
  outboundProblems,
  releaseLimitsSchema,
  releaseSpecFromRequest,
  rolloutProblems,
  type ReleaseLimits,
  type ReleaseRequest,
} from '../spec/release-request';
import { alertPolicySchema, nameSchema, type AlertPolicy, type ReleaseSpec } from '../spec/release-spec';
import { fieldsFromIssues, ProblemError } from './problem';

/**
 * The workflow_run events (what started the run) that may release. `push`: the commit is already on
 * the branch, put there by someone with write access (and through review, where the branch is
 * protected). `workflow_dispatch`: a run started by hand by someone with write access; the branch
 * check keeps it to the bound branch. Every other trigger runs code or refs an outsider can choose
 * (`pull_request`, `pull_request_target`, `issue_comment`, `merge_group` on a queue branch…).
 */
export const GITHUB_RELEASE_EVENTS = ['push', 'workflow_dispatch'] as const;

export const githubBindingSchema = z
  .object({
    repository: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'use owner/name')
      .describe('The repository (owner/name) whose workflow runs and deployments release this service; runs of forks never do.'),
    workflows: z
      .array(z.string().min(1))
      .default([])
      .describe('Workflows (names, or paths such as .github/workflows/build.yml: paths are unique, names are not) whose successful runs release; empty: no workflow run releases.'),
    branches: z
      .array(z.string().min(1))
      .default([])
      .describe("Branches whose runs release; empty: the repository's default branch (repository.default_branch of each payload)."),
    events: z
      .array(z.enum(GITHUB_RELEASE_EVENTS))
      .min(1)
      .default([...GITHUB_RELEASE_EVENTS])
      .describe('What may have started a releasing run (workflow_run.event): push and workflow_dispatch; no other trigger is accepted.'),
    environments: z
      .array(z.string().min(1).max(200))
      .default([])
      .describe('GitHub deployment environments (names, any case) whose deployment events release this service; empty: deployments release nothing.'),
  })
  .strict();

/** A registered spec: a release spec without a version (the version comes with each release), and how GitHub finds it. */
export const registeredSpecFileSchema = z
  .object({
    github: githubBindingSchema.optional().describe('Which GitHub events release this service.'),
    limits: releaseLimitsSchema.default(() => releaseLimitsSchema.parse({})).describe('How far a request (API, CI, drill) may vary this spec.'),
    spec: z.record(z.string(), z.unknown()).describe('The release spec, without version; service defaults to the file name.'),
  })
  .strict();

export type GitHubBinding = z.infer<typeof githubBindingSchema>;

export interface RegisteredSpec {
  service: string;
  environment: string;
  file: string;
  github: GitHubBinding | null;
  alerts: AlertPolicy;
  /** How far a request may vary the spec. */
  limits: ReleaseLimits;
  /** The spec as written, without version; filled in and validated per release. */
  template: Record<string, unknown>;
}

/** What one release adds to a registered spec. */
export interface ReleaseFacts {
  version: string;
  commit?: { sha: string; time: string } | undefined;
  pipelineUrl?: string | undefined;
  requestedBy: string;
}

// Only for checking a template at load time; never released.
const PLACEHOLDER_VERSION = 'feedfacefeedfacefeedfacefeedfacefeedface';

export class SpecRegistry {
  /** `outbound`: the hosts hooks and notifications may call (RAMPART_OUTBOUND_HOSTS); default none. */
  constructor(
    private readonly entries: readonly RegisteredSpec[] = [],
    readonly outbound: OutboundAllowlist = new OutboundAllowlist(),
  ) {}

  /** Reads every .yaml, .yml and .json file of the folder; any bad file stops the start with the file and field named. */
  static load(dir: string, outbound: OutboundAllowlist = new OutboundAllowlist()): SpecRegistry {
    let files: string[];
    try {
      files = readdirSync(dir)
        .filter((f) => ['.yaml', '.yml', '.json'].includes(extname(f)))
        .sort();
    } catch (error) {
      throw new ConfigError([{ field: 'RAMPART_SPECS_DIR', message: `cannot read ${dir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` }]);
    }
    const entries: RegisteredSpec[] = [];
    const problems: { field: string; message: string }[] = [];
    for (const file of files) {
      try {
        const entry = parseRegisteredSpec(readFileSync(join(dir, file), 'utf8'), file, outbound);
        const twin = entries.find((e) => e.service === entry.service && e.environment === entry.environment);
        if (twin) problems.push({ field: file, message: `${entry.service}/${entry.environment} is also registered by ${twin.file}` });
        else entries.push(entry);
      } catch (error) {
        if (error instanceof InvalidSpecError) problems.push(...error.problems.map((p) => ({ field: `${file}: ${p.field}`, message: p.message })));
        else throw error;
      }
    }
    if (problems.length) throw new ConfigError(problems);
    return new SpecRegistry(entries, outbound);
  }

  /**
   * The release a request asks for: the registered spec of its service with the request's version
   * and overrides, or, for a service with none, its inline spec on the simulated target. Throws
   * InvalidSpecError naming each field by its path in the request.
   */
  releaseFor(request: ReleaseRequest, requestedBy: string): ReleaseSpec {
    const found = this.find(request.service, request.environment);
    if (found && 'ambiguous' in found) {
      const detail = `${request.service} has specs for ${found.ambiguous.join(', ')}: say which in environment`;
      throw new ProblemError(422, 'ambiguous-environment', detail, [{ field: 'body.environment', message: detail }]);
    }
    // A registered service's name is not free for an inline spec in another environment.
    const elsewhere = found === null ? this.entries.filter((e) => e.service === request.service).map((e) => e.environment) : [];
    if (elsewhere.length) {
      const detail = `${request.service} is registered for ${elsewhere.join(', ')} only: add a spec for ${request.environment ?? 'production'} to RAMPART_SPECS_DIR`;
      throw new ProblemError(422, 'no-spec', detail, [{ field: 'body.environment', message: detail }]);
    }
    return releaseSpecFromRequest(request, { registered: found, outboundRefusal: (url) => this.outbound.refusal(url), requestedBy });
  }

  list(): readonly RegisteredSpec[] {
    return this.entries;
  }

  /** The spec of a service in an environment; without an environment, the service's only one. */
  find(service: string, environment?: string): RegisteredSpec | { ambiguous: string[] } | null {
    const matches = this.entries.filter((e) => e.service === service && (environment === undefined || e.environment === environment));
    if (matches.length === 1) return matches[0]!;
    if (matches.length === 0) return null;
    return { ambiguous: matches.map((e) => e.environment) };
  }

  /** The specs bound to a GitHub repository; which of its events release each one is github.ts's decision. */
  forGitHub(repository: string): RegisteredSpec[] {
    return this.entries.filter((e) => e.github !== null && e.github.repository.toLowerCase() === repository.toLowerCase());
  }

  /** The registered spec with this release's version, commit and requester: validated like any spec. */
  static specFor(entry: RegisteredSpec, facts: ReleaseFacts): ReleaseSpec {
    return validateReleaseSpec({
      ...entry.template,
      service: entry.service,
      environment: entry.environment,
      version: facts.version,
      ...(facts.commit ? { commit: facts.commit } : {}),
      ...(facts.pipelineUrl ? { pipelineUrl: facts.pipelineUrl } : {}),
      requestedBy: facts.requestedBy,
    });
  }
}

export function parseRegisteredSpec(text: string, file: string, outbound: OutboundAllowlist = new OutboundAllowlist()): RegisteredSpec {
  let decoded: unknown;
  try {
    decoded = parseYaml(text, { uniqueKeys: true });
  } catch (error) {
    throw new InvalidSpecError([{ field: '(document)', message: `not valid YAML or JSON: ${(error as Error).message}` }]);
  }
  const parsed = registeredSpecFileSchema.safeParse(decoded);
  if (!parsed.success) {
    throw new InvalidSpecError(fieldsFromIssues('', parsed.error.issues).map((p) => ({ field: p.field || '(document)', message: p.message })));
  }
  const template = parsed.data.spec;
  if ('version' in template) throw new InvalidSpecError([{ field: 'spec.version', message: 'a registered spec has no version: each release brings its own' }]);
  const stem = basename(file, extname(file));
  const service = template.service ?? stem;
  if (!nameSchema.safeParse(service).success) {
    throw new InvalidSpecError([{ field: 'spec.service', message: `"${String(service)}" is not a service name (the file name is used when spec.service is unset)` }]);
  }
  let checked: ReleaseSpec;
  try {
    checked = validateReleaseSpec({ ...template, service, version: PLACEHOLDER_VERSION });
  } catch (error) {
    if (error instanceof InvalidSpecError) throw new InvalidSpecError(error.problems.map((p) => ({ field: `spec.${p.field}`, message: p.message })));
    throw error;
  }
  const unreachable = [...outboundProblems(checked, (url) => outbound.refusal(url)), ...rolloutProblems(checked, true, (url) => outbound.refusal(url))];
  if (unreachable.length) throw new InvalidSpecError(unreachable.map((p) => ({ field: `spec.${p.field}`, message: p.message })));
  return {
    service: checked.service,
    environment: checked.environment,
    file,
    github: parsed.data.github ?? null,
    alerts: alertPolicySchema.parse(checked.alerts),
    limits: parsed.data.limits,
    template: { ...template, service: checked.service },
  };
}
