/**
 * What each pseudo-gradient codec costs and saves: compression ratio against fp32 and the
 * median encode + decode throughput (MB = 10⁶ bytes of fp32 input per second, one core) over
 * 7 repetitions.
 *
 *   node --import tsx bench/codec.ts [after-checkpoint before-checkpoint]
 *
 * Always measures a 4M-value tensor of N(0, 1e-3) values (pseudo-gradient-like); given two
 * checkpoint folders of the same model, also the real delta between them (after − before).
 */

import { decode, encode, parseCodec } from '@grove/peer';
import { loadCheckpoint } from '@grove/store';
import { median, smokeCap } from '@grove/train';

const CODECS = ['fp32', 'fp16', 'fp16+shuffle+lz4', 'int8', 'int8+lz4', 'int4', 'int4+lz4'];
const REPETITIONS = smokeCap('repetitions', 7);

/** Deterministic N(0, scale²) values (Box–Muller over a linear congruential generator). */
function normal(length: number, scale: number, seed = 1): Float32Array {
  let state = seed >>> 0;
  const uniform = () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return (state + 0.5) / 2 ** 32;
  };
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++)
    out[i] = scale * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return out;
}

function checkpointDelta(after: string, before: string): Float32Array {
  const [a, b] = [loadCheckpoint(after).weights, loadCheckpoint(before).weights];
  const parts: Float32Array[] = [];
  for (const [name, tensor] of a) {
    const base = b.get(name)?.data;
    if (!base || base.length !== tensor.data.length) throw new Error(`Checkpoints differ in tensor ${name}.`);
    parts.push(tensor.data.map((v, i) => v - base[i]));
  }
  const out = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function table(title: string, values: Float32Array): string {
  const rows = [
    `### ${title} (${values.length.toLocaleString('en')} values, median of ${REPETITIONS})`,
    '',
    '| codec | ratio vs fp32 | encode + decode MB/s | encode MB/s | decode MB/s |',
    '| --- | ---: | ---: | ---: | ---: |',
  ];
  for (const name of CODECS) {
    const codec = parseCodec(name);
    decode(encode(values, codec), codec, values.length); // warm up
    const [encodeSeconds, decodeSeconds, totalSeconds]: number[][] = [[], [], []];
    let size = 0;
    for (let r = 0; r < REPETITIONS; r++) {
      const start = performance.now();
      const payload = encode(values, codec);
      const encoded = performance.now();
      decode(payload, codec, values.length);
      const decoded = performance.now();
      encodeSeconds.push((encoded - start) / 1e3);
      decodeSeconds.push((decoded - encoded) / 1e3);
      totalSeconds.push((decoded - start) / 1e3);
      size = payload.length;
    }
    const rate = (seconds: number[]) => (values.byteLength / 1e6 / median(seconds)).toFixed(0);
    rows.push(
      `| ${name} | ${(values.byteLength / size).toFixed(2)} | ${rate(totalSeconds)} | ${rate(encodeSeconds)} | ${rate(decodeSeconds)} |`,
    );
  }
  return rows.join('\n');
}

console.log(table('N(0, 1e-3)', normal(4 * 1024 * 1024, 1e-3)));
const [after, before] = process.argv.slice(2);
if (after && before) console.log(`\n${table(`Checkpoint delta ${after} − ${before}`, checkpointDelta(after, before))}`);
