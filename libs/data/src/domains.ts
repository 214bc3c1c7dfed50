/**
 * Named training domains: byte streams for training and a held-out split made by
 * whole documents, so no held-out text was ever seen in training.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type BrownGenre, loadBrownDocuments } from './brown.js';

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

/**
 * A user domain from a folder of `.txt` files (one document each) and `.jsonl` files
 * (one document per line, in a `text` field). Files are taken in name order.
 */
export function folderDomain(name: string, folder: string): Domain {
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new Error(`Domain "${name}": data folder ${folder} does not exist.`);
  }
  const documents: string[] = [];
  for (const file of readdirSync(folder).sort()) {
    const path = join(folder, file);
    if (file.endsWith('.txt')) documents.push(readFileSync(path, 'utf8'));
    else if (file.endsWith('.jsonl')) documents.push(...readJsonLines(path));
  }
  const nonEmpty = documents.map((doc) => doc.trim()).filter((doc) => doc.length > 0);
  if (nonEmpty.length === 0)
    throw new Error(`Domain "${name}": ${folder} holds no non-empty .txt or .jsonl documents.`);
  return splitByDocument(name, [nonEmpty]);
}

function readJsonLines(path: string): string[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  return lines.flatMap((line, index) => {
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
export function loadDomain(reference: string): Domain {
  const equals = reference.indexOf('=');
  if (equals > 0) return folderDomain(reference.slice(0, equals), reference.slice(equals + 1));
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
