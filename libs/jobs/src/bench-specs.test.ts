import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseRunSpec } from './run-spec.js';

const BENCH = fileURLToPath(new URL('../../../bench/', import.meta.url));

// The run specs in bench/ are quoted in README.md and BENCHMARKS.md: each must still be a valid run.
describe('run specs in bench/', () => {
  const files = readdirSync(BENCH).filter((file) => file.endsWith('.json') && file !== 'tsconfig.json');

  it('includes the forest run', () => {
    assert.ok(files.includes('forest-run.json'));
  });

  for (const file of files) {
    it(`${file} parses as a run spec`, () => {
      assert.doesNotThrow(() => parseRunSpec(JSON.parse(readFileSync(`${BENCH}${file}`, 'utf8'))));
    });
  }
});
