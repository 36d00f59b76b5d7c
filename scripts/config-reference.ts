// Prints the configuration reference (a markdown table) from the config schema itself, so the
// README's table cannot drift from the code: `npx tsx scripts/config-reference.ts`.
import { z } from 'zod';
import { configSchema } from '../src/config';

function defaultOf(schema: z.ZodType): string {
  const result = schema.safeParse(undefined);
  if (!result.success || result.data === undefined) return 'unset';
  return `\`${String(result.data)}\``;
}

export function configReference(): string {
  const rows = Object.entries(configSchema.shape).map(
    ([name, schema]) => `| \`${name}\` | ${defaultOf(schema as z.ZodType)} | ${((schema as z.ZodType).description ?? '').replace(/\|/g, '\\|')} |`,
  );
  return ['| variable | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

if (require.main === module) console.log(configReference());
