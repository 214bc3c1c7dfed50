import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * Writes a file so that readers see either the old content or the new, never a part:
 * write a temporary sibling, flush it, then rename over the target.
 */
export function writeFileAtomic(path: string, content: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.tmp-${randomBytes(4).toString('hex')}`;
  try {
    writeFileSync(temporary, content, { flush: true });
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

export function readRequiredFile(path: string, what: string): Buffer {
  if (!existsSync(path)) throw new Error(`${what} not found: ${path} does not exist.`);
  return readFileSync(path);
}

/**
 * Creates `folder` holding `files` (name → content) so that it appears complete or not at all:
 * the files are written under a temporary sibling name, which is then renamed into place.
 */
export function writeNewFolder(folder: string, files: Iterable<[string, Uint8Array | string]>): void {
  mkdirSync(dirname(folder), { recursive: true });
  const staging = `${folder}.tmp-${randomBytes(4).toString('hex')}`;
  mkdirSync(staging);
  try {
    for (const [name, content] of files) writeFileSync(join(staging, name), content, { flush: true });
    renameSync(staging, folder);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}

/** Refuses an output folder that holds anything, so that nothing already there is overwritten. */
export function refuseOccupiedFolder(folder: string): void {
  if (existsSync(folder) && readdirSync(folder).length > 0)
    throw new Error(`${folder} already exists and is not empty; choose a new output folder.`);
}
