/**
 * Codec speed and size on pseudo-gradient-like data (N(0, 1e-3), 4 M values = 16 MB of fp32):
 * compression against fp32 and the median encode + decode throughput, in MB of fp32 input per
 * second on one core.
 *   npx tsx bench/codec.ts [millions of values]
 */
import { decode, encode, parseCodec } from '@grove/peer';
import { median } from '@grove/train';

const length = Math.round(Number(process.argv[2] ?? 4) * 1_000_000);
const values = new Float32Array(length);
for (let i = 0; i < length; i += 2) {
  // Box–Muller: two normal values per pair of uniforms.
  const radius = 1e-3 * Math.sqrt(-2 * Math.log(Math.random() + Number.EPSILON));
  const angle = 2 * Math.PI * Math.random();
  values[i] = radius * Math.cos(angle);
  if (i + 1 < length) values[i + 1] = radius * Math.sin(angle);
}

console.log(`# ${length.toLocaleString('en')} values (${(values.byteLength / 1e6).toFixed(0)} MB fp32), median of 7`);
console.log('| codec | × smaller than fp32 | encode + decode MB/s | encode MB/s | decode MB/s |');
console.log('|---|---|---|---|---|');
for (const name of ['fp32', 'fp16', 'fp16+shuffle+lz4', 'int8', 'int8+lz4', 'int8+shuffle+lz4', 'int4', 'int4+lz4']) {
  const codec = parseCodec(name);
  const encodeTimes: number[] = [];
  const decodeTimes: number[] = [];
  let size = 0;
  for (let repeat = 0; repeat < 7; repeat++) {
    const began = performance.now();
    const payload = encode(values, codec);
    const encoded = performance.now();
    decode(payload, codec, length);
    decodeTimes.push(performance.now() - encoded);
    encodeTimes.push(encoded - began);
    size = payload.length;
  }
  const rate = (ms: number) => (values.byteLength / 1e6 / (ms / 1000)).toFixed(0);
  const total = median(encodeTimes.map((e, i) => e + decodeTimes[i]));
  console.log(
    `| ${name} | ${(values.byteLength / size).toFixed(2)} | ${rate(total)} | ${rate(median(encodeTimes))} | ${rate(median(decodeTimes))} |`,
  );
}
