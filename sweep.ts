import { brownDomain, DEFAULT_DOMAINS, mixtureOf } from '@grove/data';
import { presetConfig, selectBackend } from '@grove/model';
import { bitsPerByte, TRAINING_DEFAULTS, Trainer } from '@grove/train';

await selectBackend('wasm');
const [lr, beta2, batch, steps, wd] = process.argv.slice(2).map(Number);
const domains = DEFAULT_DOMAINS.map(brownDomain);
const held = mixtureOf(domains.map((d) => ({ ...d, train: d.heldOut })));
const t = Trainer.fresh(
  presetConfig('tiny'),
  { ...TRAINING_DEFAULTS, steps: 2000, batchSize: batch, warmupSteps: 30, learningRate: lr, beta2, weightDecay: wd },
  mixtureOf(domains),
);
let acc = 0;
const t0 = performance.now();
for (let i = 1; i <= steps; i++) {
  acc += t.trainStep().loss;
  if (i % 25 == 0) {
    console.log(
      `lr=${lr} b2=${beta2} bs=${batch} step ${i} tokens ${t.tokensSeen} loss ${(acc / 25 / Math.LN2).toFixed(3)} bits  ${((performance.now() - t0) / 1000).toFixed(0)}s`,
    );
    acc = 0;
  }
}
