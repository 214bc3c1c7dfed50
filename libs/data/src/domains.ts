/**
 * Named training domains: byte streams for training and a held-out split made by
 * whole documents, so no held-out text was ever seen in training.
 */
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  openSync,
  readdirSync,
  readSync,
  realpathSync,
  statSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { type BrownGenre, loadBrownDocuments } from './brown.js';
import {
  type DataLimits,
  dataLimitsFromEnv,
  FOLDER_REFUSED,
  folderInsideDataRoots,
  isInsideDataRoots,
} from './data-roots.js';

export interface Domain {
  name: string;
  /** Training text as UTF-8 bytes, documents separated by blank lines. */
  train: Uint8Array;
  /** Held-out text, same layout. */
  heldOut: Uint8Array;
  documents: { train: number; heldOut: number };
}

/** Brown domains: groups of genres. The first four are the default multi-domain corpus. */
export const BROWN_DOMAINS: Record<string, BrownGenre[]> = {
  press: ['a', 'b', 'c'],
  lore: ['d', 'f', 'g'],
  learned: ['h', 'j'],
  fiction: ['k', 'l', 'm', 'n', 'p', 'r'],
  hobbies: ['e'],
};

export const DEFAULT_DOMAINS = ['press', 'lore', 'learned', 'fiction'];

/** Share of each genre's (or folder's) documents held out, taken from the end of its file order. */
export const HELD_OUT_FRACTION = 0.1;

const encoder = new TextEncoder();
const DOCUMENT_SEPARATOR = '\n\n';

function splitByDocument(name: string, groups: string[][]): Domain {
  const train: string[] = [];
  const heldOut: string[] = [];
  for (const documents of groups) {
    const held = Math.max(1, Math.round(documents.length * HELD_OUT_FRACTION));
    if (documents.length < 2) throw new Error(`Domain "${name}" needs at least 2 documents to hold one out.`);
    train.push(...documents.slice(0, documents.length - held));
    heldOut.push(...documents.slice(documents.length - held));
  }
  return {
    name,
    train: encoder.encode(train.join(DOCUMENT_SEPARATOR)),
    heldOut: encoder.encode(heldOut.join(DOCUMENT_SEPARATOR)),
    documents: { train: train.length, heldOut: heldOut.length },
  };
}

/** A Brown domain by name (see BROWN_DOMAINS); each genre contributes its last 10 % of files to held-out. */
export function brownDomain(name: string): Domain {
  const genres = BROWN_DOMAINS[name];
  if (!genres) {
    throw new Error(`Unknown Brown domain "${name}"; choose from ${Object.keys(BROWN_DOMAINS).join(', ')}.`);
  }
  const documents = loadBrownDocuments();
  return splitByDocument(
    name,
    genres.map((genre) => documents.filter((doc) => doc.genre === genre).map((doc) => doc.text)),
  );
}

export interface LoadDomainOptions {
  /**
   * When given, a folder must lie inside one of these by real path (see data-roots.ts), and so
   * must every file it links to: what a server passes, from dataRootsFromEnv(). The CLI reading
   * the user's own folders on the user's own machine passes none.
   */
  roots?: readonly string[];
  /** Size caps; dataLimitsFromEnv() when left out. */
  limits?: DataLimits;
}

/**
 * A user domain from a folder of `.txt` files (one document each) and `.jsonl` files
 * (one document per line, in a `text` field). Files are taken in name order.
 */
export function folderDomain(name: string, folder: string, options: LoadDomainOptions = {}): Domain {
  const real = readableFolder(name, folder, options.roots);
  const limits = options.limits ?? dataLimitsFromEnv();
  const budget = { left: limits.domainBytes };
  const documents: string[] = [];
  for (const file of readdirSync(real).sort()) {
    if (!file.endsWith('.txt') && !file.endsWith('.jsonl')) continue;
    const text = readDocumentFile(name, join(real, file), { limits, budget, roots: options.roots });
    if (file.endsWith('.txt')) documents.push(text);
    else documents.push(...parseJsonLines(join(folder, file), text));
  }
  const nonEmpty = documents.map((doc) => doc.trim()).filter((doc) => doc.length > 0);
  if (nonEmpty.length === 0)
    throw new Error(`Domain "${name}": ${folder} holds no non-empty .txt or .jsonl documents.`);
  return splitByDocument(name, [nonEmpty]);
}

/** The folder to read; inside roots, one refusal for every reason, so that no answer tells what exists. */
function readableFolder(name: string, folder: string, roots: readonly string[] | undefined): string {
  if (roots) {
    const real = folderInsideDataRoots(folder, roots);
    if (!real) throw new Error(`Domain "${name}": ${FOLDER_REFUSED}.`);
    return real;
  }
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new Error(`Domain "${name}": data folder ${folder} does not exist.`);
  }
  return folder;
}

/**
 * One document file as text: regular files only (reading a FIFO or a terminal would block the
 * worker for good; a device never ends), within the caps. Checked before opening (opening some
 * devices acts on them) and again on the open file, which is what is read.
 */
function readDocumentFile(
  name: string,
  path: string,
  context: { limits: DataLimits; budget: { left: number }; roots: readonly string[] | undefined },
): string {
  const file = basename(path);
  const { limits, budget, roots } = context;
  const target = roots ? realpathSync(path) : path;
  if (roots && !isInsideDataRoots(target, roots))
    throw new Error(`Domain "${name}": ${file} links outside the data roots.`);
  const refuse = (why: string) => new Error(`Domain "${name}": ${file} ${why}.`);
  if (!statSync(target).isFile()) throw refuse('is not a regular file');
  const fd = openSync(target, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw refuse('is not a regular file');
    if (stats.size > limits.fileBytes)
      throw refuse(`is ${stats.size} bytes, over the cap of ${limits.fileBytes} a file (GROVE_DATA_MAX_FILE_BYTES)`);
    if (stats.size > budget.left)
      throw refuse(`takes the domain over its cap of ${limits.domainBytes} bytes (GROVE_DATA_MAX_DOMAIN_BYTES)`);
    budget.left -= stats.size;
    const bytes = Buffer.alloc(stats.size);
    let filled = 0;
    while (filled < bytes.length) {
      const read = readSync(fd, bytes, filled, bytes.length - filled, filled);
      if (read === 0) break; // the file shrank while being read
      filled += read;
    }
    return bytes.subarray(0, filled).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

function parseJsonLines(path: string, text: string): string[] {
  return text.split('\n').flatMap((line, index) => {
    if (!line.trim()) return [];
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      throw new Error(`${path}:${index + 1} is not valid JSON.`);
    }
    const text = (record as { text?: unknown }).text;
    if (typeof text !== 'string') throw new Error(`${path}:${index + 1} has no string "text" field.`);
    return [text];
  });
}

/**
 * Resolves a domain reference: a Brown domain name, or `name=folder` for user data.
 */
export function loadDomain(reference: string, options: LoadDomainOptions = {}): Domain {
  const equals = reference.indexOf('=');
  if (equals > 0) return folderDomain(reference.slice(0, equals), reference.slice(equals + 1), options);
  return brownDomain(reference);
}

/** The training streams of several domains as one mixture, in proportion to their sizes. */
export function mixtureOf(domains: Domain[]): Uint8Array {
  const total = domains.reduce((sum, domain) => sum + domain.train.length, 0);
  const mixture = new Uint8Array(total);
  let offset = 0;
  for (const domain of domains) {
    mixture.set(domain.train, offset);
    offset += domain.train.length;
  }
  return mixture;
}
