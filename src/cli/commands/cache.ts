/** `vdeploy cache prune [--all]`: trim the local artifact cache (build once, ship) to its size limit, or empty it. */
import chalk from 'chalk';
import type { Argv, CommandModule } from 'yargs';
import { artifactsDir, DEFAULT_CACHE_MEGABYTES, pruneArtifacts, type PruneResult } from '../../deploy/artifact-cache.js';
import { ConfigError } from '../../errors.js';
import { loadConfig, type GlobalArgs } from '../context.js';
import { plural, type Output } from '../output.js';
import { formatBytes } from '../render-events.js';

interface PruneArgs extends GlobalArgs {
  action: 'prune';
  all: boolean;
  json: boolean;
}

export function cacheCommand(output: Output): CommandModule<GlobalArgs, PruneArgs> {
  return {
    command: 'cache <action>',
    describe: `Manage the local artifact cache (releases built once and shipped): \`cache prune\` removes the least recently used artifacts beyond the deployfile's ship.cacheMegabytes (default ${DEFAULT_CACHE_MEGABYTES})`,
    builder: (y: Argv<GlobalArgs>) =>
      y
        .positional('action', { type: 'string', choices: ['prune'], demandOption: true, describe: 'prune: trim the cache to its size limit' })
        .option('all', { type: 'boolean', default: false, describe: 'prune: remove every artifact' })
        .option('json', { type: 'boolean', default: false, describe: 'Print what was removed as JSON' }) as unknown as Argv<PruneArgs>,
    handler: async (args) => {
      const megabytes = args.all ? undefined : await cacheMegabytes(args);
      const result = await pruneArtifacts({ all: args.all, ...(megabytes !== undefined ? { megabytes } : {}) });
      if (args.json) output.json({ dir: artifactsDir(), ...result });
      else for (const line of renderPrune(result)) output.out(line);
    },
  };
}

/** The deployfile's limit; without a deployfile (the cache is per machine, not per project) the default. */
async function cacheMegabytes(args: GlobalArgs): Promise<number> {
  try {
    const config = await loadConfig(args);
    return config.ship?.cacheMegabytes ?? DEFAULT_CACHE_MEGABYTES;
  } catch (err) {
    if (!args.deployfile && err instanceof ConfigError && err.message.startsWith('no deployfile')) return DEFAULT_CACHE_MEGABYTES;
    throw err;
  }
}

export function renderPrune(result: PruneResult): string[] {
  const lines = result.removed.map((r) => `removed ${r.name} (${formatBytes(r.bytes)})`);
  const limit = result.limitBytes === null ? '' : chalk.dim(` (limit ${formatBytes(result.limitBytes)})`);
  lines.push(`${result.removed.length === 0 ? 'nothing to remove' : `removed ${plural(result.removed.length, 'artifact')}, freed ${formatBytes(result.freedBytes)}`}; the cache holds ${formatBytes(result.keptBytes)}${limit}`);
  return lines;
}
