/**
 * How an MoE checkpoint routes held-out text: each layer's share of routed tokens per expert,
 * over the given domains (the first 16 KB of each held-out split).
 *   npx tsx bench/routing-shares.ts <model folder> [domains, comma-separated]
 */
import { DEFAULT_DOMAINS, loadDomain } from '@grove/data';
import { selectBackend } from '@grove/model';
import { loadCheckpoint } from '@grove/store';
import { bitsPerByte, modelFromCheckpoint, smokeCap } from '@grove/train';

const [folder, domainList] = process.argv.slice(2);
if (!folder) throw new Error('Give an MoE model folder: npx tsx bench/routing-shares.ts <folder> [domains].');
await selectBackend();
const model = modelFromCheckpoint(loadCheckpoint(folder));
if (!model.routingStats) throw new Error(`${folder} holds a dense model; routing shares need a Mixture-of-Experts.`);
const domains = domainList ? domainList.split(',') : DEFAULT_DOMAINS;
console.log('| domain | layer | share of tokens per expert |');
console.log('| --- | --- | --- |');
for (const name of domains) {
  model.resetRoutingStats();
  bitsPerByte(model, loadDomain(name).heldOut, { maxBytes: smokeCap('maxBytes', 16_384), rows: 16 });
  for (let layer = 0; layer < model.config.layers; layer++) {
    const shares = model.routingStats?.shares(layer) ?? [];
    console.log(`| ${name} | ${layer} | ${shares.map((share) => `${(100 * share).toFixed(0)} %`).join(' · ')} |`);
  }
}
