/** Flags every command accepts, and how a command finds its deployfile. */
import type { Argv } from 'yargs';
import { loadDeployfile } from '../config/load-deployfile.js';
import type { ResolvedConfig } from '../config/resolve-config.js';
import { onInterrupt } from './interrupt.js';

export interface GlobalArgs {
  deployfile?: string;
  debug: boolean;
}

export function globalOptions<T>(yargs: Argv<T>) {
  return yargs
    .option('deployfile', {
      type: 'string',
      describe: 'Path to the deployfile (default: deployfile.ts/.mts/.js/.mjs in the current directory or a parent)',
      global: true,
    })
    .option('debug', { type: 'boolean', default: false, describe: 'Show stack traces on errors', global: true })
    // Read from argv by colour.ts before parsing; declared here for --help and strict parsing.
    .option('color', {
      type: 'boolean',
      describe: 'Colour the output even when not a terminal; --no-color: never (default: on a terminal, unless NO_COLOR is set)',
      global: true,
    });
}

/** Ctrl-C while the deployfile loads stops it (it may be stuck in a loop) and exits 130 with a message. */
export async function loadConfig(args: GlobalArgs): Promise<ResolvedConfig> {
  const interrupted = new AbortController();
  const restore = onInterrupt(() => interrupted.abort());
  try {
    return await loadDeployfile({ ...(args.deployfile ? { path: args.deployfile } : {}), signal: interrupted.signal });
  } finally {
    restore();
  }
}
