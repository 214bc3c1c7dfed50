/**
 * Paths inside a run's folder that a request names: confined by real path (symlinks resolved)
 * to the run folder, and folders listed one level at a time, a page at a time, without
 * blocking the event loop.
 */
import type { Dirent } from 'node:fs';
import { opendir, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve, sep } from 'node:path';
import { artifactPaths, RUN_ID_PATTERN } from '@grove/jobs';

/** A path that leaves the run folder, or one that cannot be inside any run. */
export class PathOutsideRunError extends Error {
  readonly statusCode = 400;
  constructor(path: string) {
    super(`"${path}" is not inside the run folder.`);
    this.name = 'PathOutsideRunError';
  }
}

/**
 * The real path of `path` inside run `id`'s folder, or undefined when nothing is there.
 * Throws PathOutsideRunError when the id is not a run id, or the path (after every symlink)
 * ends outside the run folder.
 */
export async function resolveInsideRun(stateFolder: string, id: string, path: string): Promise<string | undefined> {
  if (!RUN_ID_PATTERN.test(id) || isAbsolute(path) || path.includes('\0')) throw new PathOutsideRunError(path);
  const folder = resolve(artifactPaths(stateFolder, id).run);
  if (!isInside(folder, join(folder, path))) throw new PathOutsideRunError(path);
  const root = await realpathOrUndefined(folder);
  if (!root) return undefined;
  const target = await realpathOrUndefined(join(root, path));
  if (target && !isInside(root, target)) throw new PathOutsideRunError(path);
  return target;
}

function isInside(root: string, path: string): boolean {
  return path === root || path.startsWith(root + sep);
}

async function realpathOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await realpath(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

export const LIST_LIMIT_MAX = 1_000;

export interface FolderPage {
  /** This folder's files and folders (not what is below them), in name order. */
  entries: { name: string; type: 'file' | 'folder'; bytes?: number }[];
  /** Pass as `cursor` for the next page; absent on the last one. */
  next?: string;
}

/**
 * One page of a folder's entries in name order, after `cursor` (a name). The folder is read
 * as a stream, keeping only the `limit` smallest names past the cursor, so a huge folder costs
 * memory for one page and yields to other requests between reads.
 */
export async function listFolder(folder: string, cursor: string, limit: number): Promise<FolderPage> {
  const byName = (a: Dirent, b: Dirent) => (a.name < b.name ? -1 : 1);
  const page: Dirent[] = [];
  let more = false;
  for await (const entry of await opendir(folder, { bufferSize: 64 })) {
    if (entry.name <= cursor || !(entry.isFile() || entry.isDirectory())) continue;
    page.push(entry);
    if (page.length > limit) {
      page.sort(byName).pop();
      more = true;
    }
  }
  page.sort(byName);
  const entries = await Promise.all(
    page.map(async (entry) =>
      entry.isDirectory()
        ? { name: entry.name, type: 'folder' as const }
        : { name: entry.name, type: 'file' as const, bytes: (await stat(join(folder, entry.name))).size },
    ),
  );
  return more ? { entries, next: page[page.length - 1].name } : { entries };
}
