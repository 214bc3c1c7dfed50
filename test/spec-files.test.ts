/**
 * Every run spec kept in the repository parses, so the figures made from them can be made
 * again. A spec is any JSON file that is not one of the tools' configuration files; a new
 * one is covered by being there.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { DEMO_RUN, parseRunSpec } from '@grove/jobs';

const ROOT = join(import.meta.dirname, '..');
/** Folders of dependencies, builds, run state and benchmark output: nothing there is ours to check. */
const SKIPPED_FOLDERS = new Set(['node_modules', 'dist', '.git', '.grove', 'test-artifacts', 'results']);
const CONFIG_FILE = /^(package|package-lock|biome|tsconfig(\..*)?)\.json$/;

function jsonFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return SKIPPED_FOLDERS.has(entry.name) ? [] : jsonFiles(path);
    return entry.name.endsWith('.json') && !CONFIG_FILE.test(entry.name) ? [path] : [];
  });
}

/** Why the spec is refused (the path and reason of every wrong field), or nothing when it parses. */
function specErrors(input: unknown): string {
  try {
    parseRunSpec(input);
    return '';
  } catch (error) {
    return (error as Error).message;
  }
}

describe('run spec files', () => {
  const files = jsonFiles(ROOT);

  it('finds the specs the benchmarks run', () => {
    assert.ok(files.includes(join(ROOT, 'bench', 'forest-run.json')), `found: ${files.join(', ')}`);
  });

  for (const file of files) {
    it(`${relative(ROOT, file)} is a valid run spec`, () => {
      assert.equal(specErrors(JSON.parse(readFileSync(file, 'utf8'))), '');
    });
  }

  it('the built-in demo is a valid run spec', () => {
    assert.equal(specErrors(DEMO_RUN), '');
  });

  it('rejects a spec with a misspelt field, so the check above can fail', () => {
    assert.match(specErrors({ domains: ['press'], baseline: { dense: true } }), /baseline|Unrecognized/i);
  });
});
