/** `vdeploy build`: the app's wheel from a git commit (or a directory as it is), into the repository. */
import chalk from 'chalk';
import type { CommandModule } from 'yargs';
import { buildWheel, label, type BuildEvent, type BuildResult } from '../../build/build-wheel.js';
import type { BuildSource } from '../../build/git-source.js';
import { onInterrupt } from '../interrupt.js';
import type { Output } from '../output.js';
import { repoOption, resolveRepoDir, type RepoArgs } from '../wheel-repo.js';
import { describeEvent } from './add-wheel.js';

interface BuildArgs extends RepoArgs {
  source?: string;
  ref?: string;
  python?: string;
  'build-isolation': boolean;
  force: boolean;
  verbose: boolean;
  json: boolean;
}

export function buildCommand(output: Output): CommandModule<RepoArgs, BuildArgs> {
  return {
    command: 'build [source]',
    describe: "Build the app's wheel (PEP 517) from a git commit or a directory, and add it to the repository",
    builder: (y) =>
      y
        .positional('source', {
          type: 'string',
          describe: 'A git URL, or a directory (built as it is, unless --ref); none: the HEAD commit of the repository here',
        })
        .option('ref', { type: 'string', describe: 'The branch, tag or commit to build (default HEAD); always a clean checkout' })
        .option('python', { type: 'string', describe: 'The local Python whose pip builds the wheel (default: python3 on PATH)' })
        .option('build-isolation', {
          type: 'boolean',
          default: true,
          describe: "Install the build backend in an isolated environment from your pip index; --no-build-isolation: use the one installed for --python (offline)",
        })
        .option('repo', repoOption)
        .option('force', { type: 'boolean', default: false, describe: 'Replace a wheel of the same filename whose bytes differ (as add-wheel --force)' })
        .option('verbose', { type: 'boolean', default: false, describe: "Show pip's output as it builds" })
        .option('json', { type: 'boolean', default: false, describe: 'Print the result as JSON' }),
    handler: async (args) => {
      const repo = await resolveRepoDir(args);
      const interrupted = new AbortController();
      const restore = onInterrupt(() => interrupted.abort());
      try {
        const result = await buildWheel({
          ...(args.source === undefined ? {} : { source: args.source }),
          ...(args.ref === undefined ? {} : { ref: args.ref }),
          ...(args.python === undefined ? {} : { python: args.python }),
          isolation: args['build-isolation'],
          repo,
          force: args.force,
          signal: interrupted.signal,
          onEvent: (e) => renderEvent(output, e, args.verbose),
        });
        if (args.json) output.json({ repo, ...result });
        else for (const line of renderResult(result, repo)) output.out(line);
      } finally {
        restore();
      }
    },
  };
}

/** Progress, on stderr as it happens. */
function renderEvent(output: Output, e: BuildEvent, verbose: boolean): void {
  if (e.kind === 'source') {
    output.err(describeSource(e.source));
    if (e.source.leftOut)
      output.err(`note: ${e.source.location} has uncommitted changes; they are not in this build (a clean checkout of the commit)`);
    if (e.source.uncommitted)
      output.err(
        `${chalk.yellow('warning:')} ${e.source.location} has uncommitted changes (HEAD is ${e.source.head!.slice(0, 12)}): they are in this wheel, and its release line records no commit; --ref HEAD builds the commit instead`,
      );
  } else if (e.kind === 'building') {
    const epoch = e.sourceDateEpoch === undefined ? '' : `, SOURCE_DATE_EPOCH=${e.sourceDateEpoch}`;
    output.err(`building with ${e.python.command} (Python ${e.python.pythonVersion}, pip ${e.python.pipVersion}), ${isolationText(e.isolation)}${epoch}`);
  } else if (e.kind === 'pip-output') {
    if (verbose) output.err(chalk.dim(`  ${e.line}`));
  } else output.err(describeEvent(e.event));
}

function describeSource(s: BuildSource): string {
  if (s.kind === 'git') return `checked out ${label(s)} (committed ${s.committedAt}) into a temporary directory`;
  return `building the directory ${s.location} as it is${s.commit ? ` (a clean work tree at ${s.commit.slice(0, 12)})` : ''}`;
}

function isolationText(isolation: boolean): string {
  return isolation ? 'with build isolation (the build backend is installed from your pip index)' : "without build isolation (the backend installed for this Python builds it)";
}

const STATUS: Record<string, () => string> = {
  added: () => chalk.green('added'),
  replaced: () => chalk.yellow('replaced'),
  'already-present': () => chalk.dim('present'),
};

export function renderResult(r: BuildResult, repo: string): string[] {
  const a = r.added;
  const lines = [`${STATUS[a.status]?.() ?? a.status}  ${a.name}==${a.version}  ${a.filename}  in ${repo}`];
  if (a.status === 'already-present') lines.push(chalk.dim('  the same bytes were already there (a reproducible build of the same source)'));
  const from = r.source.commit ? `commit ${r.source.commit}` : r.source.uncommitted ? 'uncommitted changes (no commit recorded)' : 'a directory outside git (no commit recorded)';
  lines.push(`  built from ${from}, ${isolationText(r.isolation)}`);
  if (a.status === 'already-present' && a.commit && a.commit !== r.source.commit) lines.push(chalk.dim(`  its release line names commit ${a.commit}, which built the same bytes first`));
  if (!r.normalize.normalized) lines.push(`  ${chalk.yellow('warning:')} the wheel's zip was left as built (${r.normalize.reason}): it may not be byte-reproducible`);
  for (const w of a.warnings) lines.push(`  ${chalk.yellow('warning:')} ${w}`);
  return lines;
}
