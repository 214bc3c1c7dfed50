import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CorruptFileError, decodeSafetensors, encodeSafetensors, type TensorMap } from './safetensors.js';

const sample = (): TensorMap =>
  new Map([
    ['layers.0.ffn.up.weight', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
    ['norm.weight', { shape: [3], data: Float32Array.from([0.5, -1.25, 3e-8]) }],
  ]);

describe('safetensors', () => {
  it('round-trips tensors and metadata', () => {
    const decoded = decodeSafetensors(encodeSafetensors(sample(), { note: 'hello' }));
    assert.deepEqual(decoded.tensors, sample());
    assert.deepEqual(decoded.metadata, { note: 'hello' });
  });

  it('lays the file out as the format specifies', () => {
    const file = encodeSafetensors(sample());
    const view = new DataView(file.buffer);
    const headerLength = Number(view.getBigUint64(0, true));
    assert.equal((8 + headerLength) % 8, 0, 'data section is 8-byte aligned');
    const header = JSON.parse(Buffer.from(file.subarray(8, 8 + headerLength)).toString('utf8'));
    assert.deepEqual(header['norm.weight'], { dtype: 'F32', shape: [3], data_offsets: [24, 36] });
    assert.equal(file.length, 8 + headerLength + 36);
    assert.equal(view.getFloat32(8 + headerLength + 4, true), 2);
  });

  it('refuses a truncated file', () => {
    const file = encodeSafetensors(sample());
    assert.throws(() => decodeSafetensors(file.subarray(0, file.length - 4), 'model.safetensors'), CorruptFileError);
    assert.throws(() => decodeSafetensors(file.subarray(0, 20), 'x'), /header runs past the end/);
    assert.throws(() => decodeSafetensors(file.subarray(0, 5), 'x'), /only 5 bytes long/);
  });

  it('refuses a file whose data changed, naming the file', () => {
    const file = encodeSafetensors(sample());
    file[file.length - 1] ^= 0x40;
    assert.throws(
      () => decodeSafetensors(file, 'ckpt/model.safetensors'),
      /ckpt\/model.safetensors is not a valid safetensors file \(content hash does not match/,
    );
  });

  it('refuses a header that is not JSON', () => {
    const file = encodeSafetensors(sample());
    file[9] = 0x7b; // a second "{" breaks the JSON
    assert.throws(() => decodeSafetensors(file), /header is not JSON/);
  });

  it('reads files from other writers that carry no Grove hash, and checks their offsets', () => {
    const header = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }));
    const file = Buffer.alloc(8 + header.length + 8);
    file.writeBigUInt64LE(BigInt(header.length), 0);
    header.copy(file, 8);
    file.writeFloatLE(1.5, 8 + header.length);
    file.writeFloatLE(-2, 12 + header.length);
    assert.deepEqual(decodeSafetensors(file).tensors.get('w')?.data, Float32Array.from([1.5, -2]));
    assert.throws(() => decodeSafetensors(file.subarray(0, file.length - 4)), /lies outside the data/);
  });

  it('is readable by an independent reader written from the format spec (Python)', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'grove-st-')), 'model.safetensors');
    writeFileSync(path, encodeSafetensors(sample(), { format: 'pt' }));
    const reader = `
import json, struct, sys
raw = open(sys.argv[1], 'rb').read()
(n,) = struct.unpack('<Q', raw[:8])
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
out = {}
for name, entry in header.items():
    if name == '__metadata__':
        continue
    a, b = entry['data_offsets']
    flat = list(struct.unpack('<%df' % ((b - a) // 4), data[a:b]))
    rows, cols = (entry['shape'] + [1])[:2] if len(entry['shape']) == 2 else (len(flat), None)
    out[name] = [flat[r * cols:(r + 1) * cols] for r in range(rows)] if cols else flat
print(json.dumps({'tensors': out, 'format': header['__metadata__']['format']}))
`;
    const result = spawnSync('python3', ['-c', reader, path], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    const parsed = JSON.parse(result.stdout);
    assert.equal(parsed.format, 'pt');
    assert.deepEqual(parsed.tensors['layers.0.ffn.up.weight'], [
      [1, 2, 3],
      [4, 5, 6],
    ]);
  });
});
