import chalk from 'chalk';
import { stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { ConfigError } from '../../errors.js';
import { addWheels, type AddWheelEvent, type AddWheelResult } from '../../wheels/repository.js';
import { formatTable, plural, type Output } from '../output.js';
import { EXIT } from '../report-error.js';
import { repoOption, resolveRepoDir, type RepoArgs } from '../wheel-repo.js';

interface AddWheelArgs extends RepoArgs {
  files: string[];
  force: boolean;
  json: boolean;
}

export function addWheelCommand(output: Output, setExit: (code: number) => void): CommandModule<RepoArgs, AddWheelArgs> {
  return {
    command: 'add-wheel <files..>',
    describe: 'Validate wheels and record them in the repository and its release_log',
    builder: (y) =>
      y
        .positional('files', { type: 'string', array: true, demandOption: true, describe: 'Wheel files (.whl)' })
        .option('repo', repoOption)
        .option('force', { type: 'boolean', default: false, describe: 'Replace a wheel of the same filename whose bytes differ' })
        .option('json', { type: 'boolean', default: false, describe: 'Print the results as JSON' }),
    handler: async (args) => {
      await checkFiles(args.files);
      const repo = await resolveRepoDir(args);
      const results = await addWheels(repo, args.files, { force: args.force, onEvent: (e) => output.err(describeEvent(e)) });
      if (args.json) output.json({ repo, results });
      else renderResults(output, results);
      if (results.some((r) => r.status === 'refused')) setExit(EXIT.targetFailed);
    },
  };
}

/**
 * Every argument must be a file before anything is added: a glob that matched nothing reaches us as
 * `dist/*.whl` itself, and would otherwise be refused as a badly named wheel.
 */
async function checkFiles(files: readonly string[]): Promise<void> {
  for (const file of files) {
    let info;
    try {
      info = await stat(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`, { hint: 'check its permissions' });
      const glob = /[*?[]/.test(file);
      throw new ConfigError(`${file}: no such file${glob ? ' (a shell pattern that matched nothing is passed on as is)' : ''}; nothing was added`, {
        hint: glob ? 'build the wheels first (e.g. `python -m build --wheel`), or check the directory' : 'check the path',
      });
    }
    if (info.isDirectory()) {
      throw new ConfigError(`${file} is a directory, not a wheel file; nothing was added`, { hint: `name the wheels in it, e.g. \`vdeploy add-wheel ${join(file, '*.whl')}\`` });
    }
  }
}

/** Said as it happens, so a wait on another add-wheel's lock is never silent. */
export function describeEvent(event: AddWheelEvent): string {
  if (event.kind === 'temp-removed') return `removed ${event.file}, a temporary file left by add-wheel (pid ${event.pid}) stopped mid-copy`;
  const { holder, holderGone, staleAt, lockfile } = event.wait;
  if (!holder) return `waiting for the repository lock ${lockfile}, held by another vdeploy process`;
  const where = holder.hostname === hostname() ? '' : ` on ${holder.hostname}`;
  const gone = holderGone && staleAt ? ` (that process is gone; its lock is taken over at ${clock(staleAt)})` : '';
  return `waiting for the repository lock held by pid ${holder.pid}${where} since ${clock(holder.since)}${gone}`;
}

/** `14:03:07`, local time: the waits are seconds long. */
function clock(iso: string): string {
  return new Date(iso).toTimeString().slice(0, 8);
}

// Functions, not strings: chalk's level is set when the CLI starts (colour.ts), after this module loads.
const STATUS_LABEL: Record<AddWheelResult['status'], () => string> = {
  added: () => chalk.green('added'),
  replaced: () => chalk.yellow('replaced'),
  'already-present': () => chalk.dim('present'),
  refused: () => chalk.red('refused'),
};

function renderResults(output: Output, results: AddWheelResult[]): void {
  const rows = results
    .filter((r) => r.status !== 'refused')
    .map((r) => [STATUS_LABEL[r.status](), `${r.name}==${r.version}`, r.filename ?? r.file]);
  for (const line of formatTable(rows)) output.out(line);
  for (const r of results) {
    for (const warning of r.warnings) output.err(`${chalk.yellow('warning:')} ${r.file}: ${warning}`);
    if (r.status === 'refused') {
      output.err(`${chalk.red('refused:')} ${r.reason ?? r.file}`);
      if (r.hint) output.err(`  ${chalk.dim('hint:')} ${r.hint}`);
    }
  }
  const count = (s: AddWheelResult['status']) => results.filter((r) => r.status === s).length;
  const parts = [`${count('added')} added`];
  if (count('replaced')) parts.push(`${count('replaced')} replaced`);
  parts.push(`${count('already-present')} already present`, `${count('refused')} refused`);
  output.out(`${plural(results.length, 'wheel')}: ${parts.join(', ')}`);
}
