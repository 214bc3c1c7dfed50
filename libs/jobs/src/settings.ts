/** Settings read from environment variables through a zod schema, each wrong one named by its variable. */
import type { z } from 'zod';

/**
 * Parses the variables named in `variables` (schema field → variable name) with `schema`;
 * unset or empty variables take the schema's defaults. Throws one sentence naming every wrong variable.
 */
export function settingsFromEnv<Schema extends z.ZodObject>(
  schema: Schema,
  variables: Record<keyof z.input<Schema> & string, string>,
  env: NodeJS.ProcessEnv = process.env,
): z.output<Schema> {
  const names = Object.entries(variables) as [string, string][];
  const raw = Object.fromEntries(names.filter(([, name]) => env[name]).map(([field, name]) => [field, env[name]]));
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const wrong = result.error.issues.map(
    (issue) => `${variables[issue.path[0] as keyof typeof variables]}: ${issue.message}`,
  );
  throw new Error(`Invalid settings: ${wrong.join('; ')}.`);
}
