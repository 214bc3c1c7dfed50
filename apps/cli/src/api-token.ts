/** The token `grove up` generates for its API, kept in the state folder for the CLI to find. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const apiTokenFile = (state: string) => join(state, 'api-token');

export function readApiToken(state: string): string | undefined {
  const file = apiTokenFile(state);
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}
