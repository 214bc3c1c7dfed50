/**
 * What a Grove server may read as training data. A run spec may name a folder (`name=folder`),
 * and the spec comes from whoever may call the API: the folder must lie, by real path (symlinks
 * resolved), inside one of the data roots this server was given (GROVE_DATA_ROOTS, colon
 * separated; none by default, so a server reads no folder unless told). Files are read only
 * when regular, and only up to size caps (GROVE_DATA_MAX_FILE_BYTES, GROVE_DATA_MAX_DOMAIN_BYTES).
 */
import { realpathSync, statSync } from 'node:fs';
import { resolve, sep } from 'node:path';

/**
 * The one answer for a folder that is outside the roots, missing, unreadable or not a folder:
 * whoever submits a spec learns nothing about which paths exist.
 */
export const FOLDER_REFUSED =
  'a name=folder domain must name a folder inside the data roots this server reads (GROVE_DATA_ROOTS)';

export interface DataLimits {
  /** Largest document file read. */
  fileBytes: number;
  /** Largest total of one domain's files. */
  domainBytes: number;
}

/** 64 MiB a file, 256 MiB a domain: far above any corpus the tiny presets train on, far below the memory of a worker. */
export const DEFAULT_DATA_LIMITS: DataLimits = { fileBytes: 64 * 2 ** 20, domainBytes: 256 * 2 ** 20 };

/** The data roots named in GROVE_DATA_ROOTS, as absolute paths. */
export function dataRootsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.GROVE_DATA_ROOTS ?? '')
    .split(':')
    .filter((root) => root.trim().length > 0)
    .map((root) => resolve(root));
}

/** The size caps, from GROVE_DATA_MAX_FILE_BYTES and GROVE_DATA_MAX_DOMAIN_BYTES when set. */
export function dataLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): DataLimits {
  const limit = (variable: string, fallback: number) => {
    const text = env[variable];
    if (text === undefined || text === '') return fallback;
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${variable} must be a positive number of bytes.`);
    return value;
  };
  return {
    fileBytes: limit('GROVE_DATA_MAX_FILE_BYTES', DEFAULT_DATA_LIMITS.fileBytes),
    domainBytes: limit('GROVE_DATA_MAX_DOMAIN_BYTES', DEFAULT_DATA_LIMITS.domainBytes),
  };
}

function realPath(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

/** Whether a real path lies inside (or is) one of the roots, themselves taken by real path. */
export function isInsideDataRoots(path: string, roots: readonly string[]): boolean {
  return roots.some((root) => {
    const realRoot = realPath(root);
    if (!realRoot) return false;
    return path === realRoot || path.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep);
  });
}

/** The real path of a folder inside the roots, or undefined for anything else (see FOLDER_REFUSED). */
export function folderInsideDataRoots(folder: string, roots: readonly string[]): string | undefined {
  const real = realPath(folder);
  if (!real || !isInsideDataRoots(real, roots)) return undefined;
  try {
    return statSync(real).isDirectory() ? real : undefined;
  } catch {
    return undefined;
  }
}
