import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { DEMO_RUN, redactRedisUrl, stateFolder } from '@grove/jobs';
import type { Command } from 'commander';
import { ApiClient, apiClientFromEnv } from '../api-client.js';
import { apiTokenFile } from '../api-token.js';
import { type Cluster, startCluster } from '../cluster.js';
import { followLogs } from '../logs.js';
import { dataRoots, nonNegativeInteger, positiveInteger } from '../options.js';
import { printTable } from '../table.js';
import { followRun, renderBars, renderRun } from '../watch.js';

export function registerService(program: Command): void {
  program
    .command('demo')
    .description(
      'Start a local cluster, run the built-in demo (seed → 4 experts × 2 replicas → merge → eval) and print the table.',
    )
    .option('--workers <n>', 'worker processes (default: one per core)', positiveInteger, cpus().length)
    .option('--json', 'end by printing the finished run record as JSON', false)
    .option('--spec <file>', 'run this spec (JSON) instead of the built-in demo; its folders become data roots')
    .option('--data-root <dir>', 'a folder whose data runs may name (repeatable)', dataRoots, [])
    .option(NO_AUTH, NO_AUTH_HELP)
    .action(async (options: { workers: number; json: boolean; spec?: string; dataRoot: string[]; auth: boolean }) => {
      const spec = options.spec ? readSpec(options.spec) : DEMO_RUN;
      const state = stateFolder();
      const roots = [...options.dataRoot, ...specFolders(spec)];
      const cluster = await startCluster({
        stateFolder: state,
        workers: options.workers,
        dataRoots: roots,
        auth: options.auth,
      });
      process.stderr.write(
        `cluster: api ${cluster.apiUrl}, redis ${redactRedisUrl(cluster.redisUrl)}, ${options.workers} workers; state in ${state}\n${access(cluster, state)}`,
      );
      const stop = async () => {
        await cluster.stop();
        process.exit(130);
      };
      process.once('SIGINT', stop);
      try {
        const client = new ApiClient(cluster.apiUrl, cluster.token);
        const { id } = await client.submit(spec);
        const run = await followRun(client, id);
        if (run.status !== 'completed')
          throw new Error(`The demo run ended ${run.status}: ${run.error ?? 'see the logs folder'}.`);
        if (options.json) process.stdout.write(`${JSON.stringify(run)}\n`);
        else printTable(run.rows ?? []);
        process.stderr.write(`artifacts and report: ${join(state, 'runs', id)}\n`);
      } finally {
        await cluster.stop();
      }
    });

  program
    .command('up')
    .description('Run a local cluster (Redis, API, merge service, workers) until interrupted.')
    .option('--workers <n>', 'worker processes, 0 for none (default: one per core)', nonNegativeInteger, cpus().length)
    .option('--port <n>', 'API port', positiveInteger, 8080)
    .option(
      '--data-root <dir>',
      'a folder whose data runs may name (repeatable; adds to GROVE_DATA_ROOTS)',
      dataRoots,
      [],
    )
    .option(NO_AUTH, NO_AUTH_HELP)
    .action(async (options: { workers: number; port: number; dataRoot: string[]; auth: boolean }) => {
      const state = stateFolder();
      const cluster = await startCluster({
        stateFolder: state,
        workers: options.workers,
        port: options.port,
        dataRoots: options.dataRoot,
        auth: options.auth,
      });
      process.stderr.write(
        `grove is up: api ${cluster.apiUrl} (docs at /docs), redis ${redactRedisUrl(cluster.redisUrl)}, ${options.workers} workers; Ctrl-C stops\n${access(cluster, state)}`,
      );
      await new Promise<void>((done) => {
        process.once('SIGINT', done);
        process.once('SIGTERM', done);
      });
      await cluster.stop();
    });

  program
    .command('submit')
    .description('Submit a run spec (JSON file) to a Grove API.')
    .argument('<spec>', 'run spec file')
    .option('--api <url>', 'API base URL (default GROVE_API_URL or http://127.0.0.1:8080)')
    .option('--wait', 'follow the run until it ends and print its table', false)
    .action(async (file: string, options: { api?: string; wait: boolean }) => {
      const spec = readSpec(file);
      const client = apiClientFromEnv(options.api);
      const { id, created } = await client.submit(spec);
      process.stdout.write(`${id}\n`);
      if (!created) process.stderr.write(`run ${id} already existed; nothing new was queued\n`);
      if (options.wait) {
        const run = await followRun(client, id);
        if (run.rows) printTable(run.rows);
        if (run.status !== 'completed') throw new Error(`Run ${id} ended ${run.status}: ${run.error ?? ''}`);
      }
    });

  program
    .command('grow')
    .description(
      "Grow a completed run by one expert: it starts from the experts' posterior average; merges and eval rerun.",
    )
    .argument('<id>', 'run id')
    .argument('<domain>', 'the new domain: a Brown domain or name=folder')
    .option('--steps <n>', "the new expert's updates (default: the run's expertSteps)", positiveInteger)
    .option('--api <url>', 'API base URL (default GROVE_API_URL or http://127.0.0.1:8080)')
    .option('--wait', 'follow the run until it ends and print its table', false)
    .action(async (id: string, domain: string, options: { steps?: number; api?: string; wait: boolean }) => {
      const client = apiClientFromEnv(options.api);
      const { generation } = await client.grow(id, { domain, steps: options.steps });
      process.stderr.write(`run ${id} grows an expert for ${domain} (generation ${generation})\n`);
      if (options.wait) {
        const run = await followRun(client, id);
        if (run.rows) printTable(run.rows);
        if (run.status !== 'completed') process.exitCode = 1;
      }
    });

  program
    .command('status')
    .description('Show runs, or one run with its jobs.')
    .argument('[id]', 'run id')
    .option('--api <url>', 'API base URL (default GROVE_API_URL or http://127.0.0.1:8080)')
    .option('--json', 'print JSON', false)
    .option('--follow', 'follow the run with live progress until it ends', false)
    .action(async (id: string | undefined, options: { api?: string; json: boolean; follow: boolean }) => {
      const client = apiClientFromEnv(options.api);
      if (!id) {
        const { runs } = await client.runs();
        if (options.json) process.stdout.write(`${JSON.stringify({ runs })}\n`);
        else for (const run of runs) process.stdout.write(`${run.id}  ${run.status.padEnd(10)} ${run.createdAt}\n`);
        return;
      }
      if (options.json) {
        process.stdout.write(`${JSON.stringify(await client.run(id))}\n`);
        return;
      }
      const run = options.follow ? await followRun(client, id) : await client.run(id);
      if (!options.follow)
        process.stdout.write(`${(process.stdout.isTTY ? renderBars(run) : renderRun(run)).join('\n')}\n`);
      if (run.rows) printTable(run.rows);
    });

  program
    .command('logs')
    .description("Follow a run's events: job states, training steps, evaluations, Local-SGD rounds.")
    .argument('<id>', 'run id')
    .option('--api <url>', 'API base URL (default GROVE_API_URL or http://127.0.0.1:8080)')
    .action(async (id: string, options: { api?: string }) => {
      await followLogs(apiClientFromEnv(options.api), id, (line) => process.stdout.write(`${line}\n`));
    });
}

/** The folders a spec's `name=folder` domains name: the user gave them, so the demo's cluster may read them. */
function specFolders(spec: unknown): string[] {
  const domains = (spec as { domains?: unknown }).domains;
  if (!Array.isArray(domains)) return [];
  return domains
    .filter((domain): domain is string => typeof domain === 'string' && domain.indexOf('=') > 0)
    .map((domain) => resolve(domain.slice(domain.indexOf('=') + 1)));
}

const NO_AUTH = '--no-auth';
const NO_AUTH_HELP = 'serve the API without a token: anyone on this machine can use it';

/** How to reach the API: the token and where it is kept, and the dashboard link that carries it. */
function access(cluster: Cluster, state: string): string {
  if (!cluster.token) return `dashboard ${cluster.dashboardUrl} (no token: open to every user of this machine)\n`;
  return [
    `token ${cluster.token} (in ${apiTokenFile(state)}, which grove commands read; or set GROVE_API_TOKEN)`,
    `dashboard ${cluster.dashboardUrl}`,
    '',
  ].join('\n');
}

function readSpec(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`Cannot read run spec ${file}: ${(error as Error).message}`);
  }
}
