import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const packageRoot = fileURLToPath(new URL('..', import.meta.url));

describe('building the addon', () => {
  it('lets installation succeed without a compiler, and the loader says why there are no native kernels', () => {
    const copy = mkdtempSync(join(tmpdir(), 'grove-native-'));
    try {
      for (const part of ['binding.gyp', 'package.json', 'scripts', 'src'])
        cpSync(join(packageRoot, part), join(copy, part), { recursive: true });
      const build = spawnSync(process.execPath, [join(copy, 'scripts', 'build.mjs')], {
        encoding: 'utf8',
        env: { ...process.env, CC: 'no-such-compiler' },
      });
      assert.equal(build.status, 0, build.stderr);
      assert.match(readFileSync(join(copy, 'build', 'unavailable.txt'), 'utf8'), /no C compiler \(no-such-compiler\)/);
      const load = spawnSync(
        process.execPath,
        [
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          `import { loadAddon } from ${JSON.stringify(join(copy, 'src', 'addon.ts'))}; console.log(loadAddon().reason)`,
        ],
        { encoding: 'utf8', env: { ...process.env, GROVE_NATIVE: '1' } },
      );
      assert.equal(load.stdout.trim(), 'native addon not built: no C compiler (no-such-compiler) on PATH');
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
});
