import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { evaluationBatches, sampleBatch } from './batches.js';
import { loadBrownDocuments, untagSentence } from './brown.js';
import { BROWN_DOMAINS, brownDomain, DEFAULT_DOMAINS, folderDomain, loadDomain, mixtureOf } from './domains.js';

describe('Brown corpus', () => {
  it('strips tags and re-attaches punctuation and quotes', () => {
    assert.equal(
      untagSentence("The/at jury/nn said/vbd ``/`` it/pps did/dod n't/* ''/'' ,/, (/( twice/rb )/) ./."),
      'The jury said "it didn\'t", (twice).',
    );
    assert.equal(untagSentence("Atlanta's/np$ mayor/nn"), "Atlanta's mayor");
  });

  it('reads all 500 documents of the 15 genres', () => {
    const documents = loadBrownDocuments();
    assert.equal(documents.length, 500);
    assert.equal(new Set(documents.map((doc) => doc.genre)).size, 15);
    assert.ok(!documents[0].text.includes('/at'), 'tags are gone');
  });

  it('builds the four default domains with a held-out split by whole document', () => {
    assert.deepEqual(DEFAULT_DOMAINS, ['press', 'lore', 'learned', 'fiction']);
    const decoder = new TextDecoder();
    for (const name of Object.keys(BROWN_DOMAINS)) {
      const domain = brownDomain(name);
      assert.ok(domain.documents.heldOut >= 1 && domain.documents.train > domain.documents.heldOut);
      const held = decoder.decode(domain.heldOut).split('\n\n');
      const train = decoder.decode(domain.train);
      for (const document of held)
        assert.ok(!train.includes(document.slice(0, 200)), `${name}: a held-out document leaked into training`);
    }
  });

  it('names the choices when a domain is unknown', () => {
    assert.throws(
      () => loadDomain('poetry'),
      /Unknown Brown domain "poetry"; choose from press, lore, learned, fiction, hobbies/,
    );
  });
});

describe('user data folders', () => {
  const folder = () => mkdtempSync(join(tmpdir(), 'grove-data-'));

  it('reads .txt documents and .jsonl lines, holding out the last documents', () => {
    const root = folder();
    for (let i = 0; i < 9; i++) writeFileSync(join(root, `doc${i}.txt`), `plain document ${i}`);
    writeFileSync(join(root, 'more.jsonl'), '{"text":"json document"}\n\n{"text":"last document"}\n');
    const domain = loadDomain(`mine=${root}`);
    assert.equal(domain.name, 'mine');
    assert.deepEqual(domain.documents, { train: 10, heldOut: 1 });
    assert.equal(new TextDecoder().decode(domain.heldOut), 'last document', 'files in name order, lines in file order');
  });

  it('gives one sentence naming the path for missing, empty or malformed data', () => {
    const root = folder();
    assert.throws(() => folderDomain('x', join(root, 'absent')), /Domain "x": data folder .*absent does not exist\./);
    mkdirSync(join(root, 'empty'));
    writeFileSync(join(root, 'empty', 'blank.txt'), '   \n');
    assert.throws(() => folderDomain('x', join(root, 'empty')), /holds no non-empty .txt or .jsonl documents/);
    mkdirSync(join(root, 'bad'));
    writeFileSync(join(root, 'bad', 'a.jsonl'), '{"text": "fine"}\n{oops\n');
    assert.throws(() => folderDomain('x', join(root, 'bad')), /a.jsonl:2 is not valid JSON/);
  });
});

describe('batches', () => {
  const stream = Uint8Array.from({ length: 100 }, (_, i) => i);

  it('samples windows whose targets are the inputs shifted by one', () => {
    let state = 0;
    const random = { below: (bound: number) => (state++ * 7) % bound };
    const batch = sampleBatch(stream, 3, 10, random);
    for (let row = 0; row < 3; row++) {
      for (let i = 0; i < 10; i++) assert.equal(batch.targets[row * 10 + i], batch.inputs[row * 10 + i] + 1);
    }
    assert.throws(() => sampleBatch(stream.subarray(0, 5), 1, 10, random), /fewer than one window/);
  });

  it('cuts held-out text into the same non-overlapping windows every time', () => {
    const batches = evaluationBatches(stream, 10, 4, 1000);
    assert.deepEqual(
      batches.map((batch) => batch.rows),
      [4, 4, 1],
    );
    assert.equal(batches[1].inputs[0], 40);
    assert.deepEqual(evaluationBatches(stream, 10, 4, 1000), batches);
    assert.equal(evaluationBatches(stream, 10, 4, 25).length, 1, 'maxBytes caps the text scored');
  });

  it('mixes domains in proportion to their sizes', () => {
    const a = { name: 'a', train: Uint8Array.of(1, 1), heldOut: new Uint8Array(), documents: { train: 1, heldOut: 0 } };
    const b = { ...a, name: 'b', train: Uint8Array.of(2, 2, 2) };
    assert.deepEqual([...mixtureOf([a, b])], [1, 1, 2, 2, 2]);
  });
});
