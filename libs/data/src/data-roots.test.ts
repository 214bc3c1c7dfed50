/** Folders a server reads only inside its data roots, regular files only, within size caps. */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { dataLimitsFromEnv, dataRootsFromEnv, FOLDER_REFUSED } from './data-roots.js';
import { loadDomain } from './domains.js';

/** A data root holding `docs/` (three documents), and a folder beside it, outside the root. */
function layout() {
  const base = mkdtempSync(join(tmpdir(), 'grove-roots-'));
  const root = join(base, 'root');
  const outside = join(base, 'outside');
  for (const folder of [join(root, 'docs'), outside]) {
    mkdirSync(folder, { recursive: true });
    for (let i = 0; i < 3; i++) writeFileSync(join(folder, `doc${i}.txt`), `document ${i} of ${folder}`);
  }
  return { base, root, docs: join(root, 'docs'), outside };
}

const refused = new RegExp(`^Error: Domain "x": ${FOLDER_REFUSED.replace(/[()]/g, '\\$&')}\\.$`);

describe('data roots', () => {
  it('reads a folder inside a root', () => {
    const { root, docs } = layout();
    const domain = loadDomain(`x=${docs}`, { roots: [root] });
    assert.deepEqual(domain.documents, { train: 2, heldOut: 1 });
    assert.match(new TextDecoder().decode(domain.heldOut), /^document 2 of /);
  });

  it('refuses folders outside the roots, missing ones and files alike, with one message', () => {
    const { root, docs, outside } = layout();
    for (const folder of ['/etc', outside, join(root, 'absent'), join(docs, 'doc0.txt'), `${root}/../outside`])
      assert.throws(() => loadDomain(`x=${folder}`, { roots: [root] }), refused, folder);
    assert.throws(() => loadDomain(`x=${docs}`, { roots: [] }), refused, 'no roots: no folder');
    assert.throws(() => loadDomain(`x=${docs}`, { roots: [join(root, 'do')] }), refused, 'a prefix is not a parent');
  });

  it('refuses a symlink that leads out of the root, for the folder or for one file', () => {
    const { root, docs, outside } = layout();
    symlinkSync(outside, join(root, 'escape'));
    assert.throws(() => loadDomain(`x=${join(root, 'escape')}`, { roots: [root] }), refused);
    symlinkSync(join(outside, 'doc0.txt'), join(docs, 'stolen.txt'));
    assert.throws(() => loadDomain(`x=${docs}`, { roots: [root] }), /^Error: Domain "x": stolen.txt links outside/);
    const linkedRoot = join(layout().base, 'link-to-root');
    symlinkSync(root, linkedRoot);
    assert.throws(
      () => loadDomain(`x=${docs}`, { roots: [linkedRoot] }),
      /stolen.txt links outside/,
      'roots by real path',
    );
  });

  it('refuses a device named like a document', () => {
    const { docs } = layout();
    symlinkSync('/dev/zero', join(docs, 'zero.txt'));
    assert.throws(() => loadDomain(`x=${docs}`), /^Error: Domain "x": zero.txt is not a regular file\.$/);
  });

  it('refuses a FIFO named a.txt instead of waiting on it forever', () => {
    const { root, docs } = layout();
    execFileSync('mkfifo', [join(docs, 'a.txt')]);
    const script = `import('./domains.ts').then((data) => data.loadDomain(${JSON.stringify(`x=${docs}`)}, { roots: [${JSON.stringify(root)}] }))`;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: import.meta.dirname,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(run.signal, null, 'the loader returned rather than hang');
    assert.match(run.stderr, /Domain "x": a.txt is not a regular file\./);
  });

  it('refuses files and domains over the size caps', () => {
    const { root, docs } = layout();
    const limits = (fileBytes: number, domainBytes: number) => ({ roots: [root], limits: { fileBytes, domainBytes } });
    assert.throws(
      () => loadDomain(`x=${docs}`, limits(10, 1_000)),
      /doc0.txt is \d+ bytes, over the cap of 10 a file \(GROVE_DATA_MAX_FILE_BYTES\)/,
    );
    assert.throws(
      () => loadDomain(`x=${docs}`, limits(1_000, 100)),
      /doc\d.txt takes the domain over its cap of 100 bytes \(GROVE_DATA_MAX_DOMAIN_BYTES\)/,
    );
    assert.deepEqual(dataLimitsFromEnv({ GROVE_DATA_MAX_FILE_BYTES: '10', GROVE_DATA_MAX_DOMAIN_BYTES: '' }), {
      fileBytes: 10,
      domainBytes: 256 * 2 ** 20,
    });
    assert.throws(() => dataLimitsFromEnv({ GROVE_DATA_MAX_FILE_BYTES: '1e99' }), /must be a positive number/);
  });

  it('reads the roots from GROVE_DATA_ROOTS, none by default', () => {
    assert.deepEqual(dataRootsFromEnv({}), []);
    assert.deepEqual(dataRootsFromEnv({ GROVE_DATA_ROOTS: '/srv/a::/srv/b/' }), ['/srv/a', '/srv/b']);
  });
});
