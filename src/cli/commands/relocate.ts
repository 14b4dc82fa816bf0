import chalk from 'chalk';
import type { CommandModule } from 'yargs';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { expandHome } from '../../config/resolve-config.js';
import { ConfigError } from '../../errors.js';
import { checkNewPath, summarize, type RelocateRequest } from '../../relocate/relocate.js';
import { relocateFleet, relocateHere, type RelocateEntry } from '../../relocate/relocate-fleet.js';
import { loadConfig, type GlobalArgs } from '../context.js';
import { formatTable, plural, type Output } from '../output.js';
import { hostConnectorOptions, sshOptions, type SshArgs } from '../ssh-options.js';
import { EXIT } from '../report-error.js';

export type { RelocateEntry } from '../../relocate/relocate-fleet.js';

interface RelocateArgs extends GlobalArgs, SshArgs {
  target: string;
  'update-path'?: string;
  reinitialize: boolean;
  'old-path'?: string;
  role: string[];
  'dry-run': boolean;
  json: boolean;
}

/**
 * How the TARGET argument is read: a local path when it starts with `/`, `.` or `~` (`/srv/venv`,
 * `./venv`, `../venv`, `~/venv`); anything else is a deployfile selector (`web1`, `app@web1`,
 * `web1:/srv/app/venv`, `:/srv/app/venv`, `deploy@`). No selector starts with those characters.
 */
export function isLocalTarget(target: string): boolean {
  return /^[/.~]/.test(target);
}

export function relocateCommand(output: Output, setExit: (code: number) => void): CommandModule<GlobalArgs, RelocateArgs> {
  return {
    command: 'relocate <target>',
    describe: 'Make a moved or copied venv work at its new path (a local PATH, or a SELECTOR of deployfile venvs)',
    builder: (y) =>
      sshOptions(y)
        .positional('target', {
          type: 'string',
          demandOption: true,
          describe: 'A local venv (starts with /, . or ~) or a selector: host, user@host, host:/path, :/path, user@',
        })
        .option('update-path', { type: 'string', describe: 'Rewrite the venv to work at this absolute path (`auto`: where it is now)' })
        .option('reinitialize', { type: 'boolean', default: false, describe: "Re-link the venv to this machine's Python of the same X.Y first" })
        .option('old-path', { type: 'string', describe: 'Where the venv was built (default: read from its bin/activate)' })
        .option('role', { type: 'string', array: true, default: [], describe: 'With a selector: only hosts with this role (repeatable)' })
        .option('dry-run', { type: 'boolean', default: false, describe: 'List every file that would change and why; change nothing' })
        .option('json', { type: 'boolean', default: false, describe: 'Print the results as JSON' }),
    handler: async (args) => {
      const updatePath = args['update-path'];
      if (updatePath === undefined && !args.reinitialize) {
        throw new ConfigError('nothing to do: give --update-path NEW (or auto), --reinitialize, or both', {
          hint: 'e.g. `vdeploy relocate ./venv --update-path auto` after moving ./venv',
        });
      }
      const local = isLocalTarget(args.target);
      const base: Omit<RelocateRequest, 'venv'> = {
        reinitialize: args.reinitialize,
        dryRun: args['dry-run'],
        ...(args['old-path'] !== undefined ? { oldPath: local ? resolve(expandHome(args['old-path'])) : args['old-path'] } : {}),
      };
      if (updatePath !== undefined) {
        base.newPath = checkNewPath(local && updatePath !== 'auto' ? resolve(expandHome(updatePath)) : updatePath);
      }

      const entries = local ? [await relocateHere({ ...base, venv: resolve(expandHome(args.target)) })] : await relocateRemote(args, base, output);
      // --json: an error's message and hint (its exit code is the command's).
      if (args.json) output.json(entries.map((e) => (e.error ? { target: e.target, error: { message: e.error.message, hint: e.error.hint } } : e)));
      else for (const entry of entries) render(output, entry);
      for (const entry of entries) {
        if (entry.error) setExit(entry.error.exitCode);
        else if (entry.result && entry.result.errors.length > 0) setExit(EXIT.targetFailed);
      }
    },
  };
}

/** The deployfile's venvs that TARGET selects, relocated over SSH. */
async function relocateRemote(args: RelocateArgs, base: Omit<RelocateRequest, 'venv'>, output: Output): Promise<RelocateEntry[]> {
  try {
    const config = await loadConfig(args);
    return await relocateFleet(config, { selectors: [args.target], roles: args.role }, base, { ssh: hostConnectorOptions(args, output) });
  } catch (err) {
    // A bare name is a selector: say how to name a local directory of that name.
    if (err instanceof ConfigError && existsSync(args.target)) {
      throw new ConfigError(err.message, { hint: `${err.hint ?? ''}; for the local directory ${args.target}, write ./${args.target}` });
    }
    throw err;
  }
}

const KIND_WIDTH = 12;

function render(output: Output, entry: RelocateEntry): void {
  if (entry.error) {
    output.err(`${chalk.red('error:')} ${entry.error.message}`);
    if (entry.error.hint) output.err(`${chalk.dim('hint:')} ${entry.error.hint}`);
    return;
  }
  const r = entry.result!;
  const dry = r.dryRun;
  if (r.reinitialize) {
    const ri = r.reinitialize;
    output.out(
      `${entry.target}: ${ri.changed ? (dry ? 'would re-link to' : 're-linked to') : 'already linked to'} ${ri.python} (Python ${ri.version})`,
    );
  }
  if (r.newPath !== null) {
    if (r.alreadyRelocated) output.out(`${entry.target}: already at ${r.newPath} (nothing to do)`);
    else {
      const from = r.markerSource ? ` (read from ${r.markerSource})` : '';
      output.out(`${entry.target}: ${dry ? 'would relocate' : 'relocated'} from ${r.oldPath}${from} to ${r.newPath}${dry ? ' (dry run: nothing changed)' : ''}`);
      if (r.venv !== r.newPath) output.out(`  the venv is still at ${r.venv}: it works once moved to ${r.newPath}`);
    }
  }
  const rows: string[][] = [];
  let bytecodeShown = false;
  for (const c of r.changes) {
    if (c.kind === 'bytecode' && !dry) {
      // One line for all of them: a venv has hundreds of __pycache__ directories (--dry-run lists each).
      if (bytecodeShown) continue;
      bytecodeShown = true;
      const { bytecodeFiles, bytecodeDirs } = summarize(r);
      rows.push([
        `  ${chalk.cyan('bytecode'.padEnd(KIND_WIDTH))}`,
        `${plural(bytecodeFiles, '.pyc file')} in ${plural(bytecodeDirs, '__pycache__ directory', '__pycache__ directories')}`,
        chalk.dim('compiled at the old path: rewritten'),
      ]);
      continue;
    }
    rows.push([`  ${chalk.cyan(c.kind.padEnd(KIND_WIDTH))}`, c.path, chalk.dim(c.reason)]);
  }
  for (const l of r.leftovers) rows.push([`  ${chalk.yellow('leftover'.padEnd(KIND_WIDTH))}`, l.path, l.reason]);
  for (const line of formatTable(rows)) output.out(line);
  for (const w of r.warnings) output.err(`${chalk.yellow('warning:')} ${entry.target}: ${w}`);
  for (const e of r.errors) output.err(`${chalk.red('error:')} ${entry.target}: ${e.path ? `${e.path}: ` : ''}${e.message}`);
  if (r.alreadyRelocated && r.changes.length === 0) return;
  const { files, bytecodeFiles } = summarize(r);
  const verb = dry ? 'would rewrite' : 'rewrote';
  output.out(
    `  ${verb} ${plural(files, 'file')} and ${plural(bytecodeFiles, '.pyc file')}; ` +
      `${plural(r.leftovers.length, 'leftover')}${r.errors.length ? `; ${plural(r.errors.length, 'error')}: run again to finish` : ''}`,
  );
}
