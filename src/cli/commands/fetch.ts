/** `vdeploy fetch`: flags, one fetchWheels call, progress lines on stderr and the final table. */
import { resolve } from 'node:path';
import chalk from 'chalk';
import type { CommandModule } from 'yargs';
import { findDeployfile } from '../../config/load-deployfile.js';
import { ConfigError, InterruptedError } from '../../errors.js';
import { defaultInterpreterCache } from '../../facts/interpreter-cache.js';
import { fetchWheels, type FetchEvent, type FetchResult, type WheelStatus } from '../../fetch/fetch.js';
import { explicitTarget, targetsFromCache, type FetchTarget } from '../../fetch/targets.js';
import { readSshConfig } from '../../remote/ssh-config.js';
import { selectVenvs } from '../../selectors/select-venvs.js';
import { onInterrupt } from '../interrupt.js';
import { describeEvent } from './add-wheel.js';
import { loadConfig } from '../context.js';
import { formatTable, plural, type Output } from '../output.js';
import { EXIT } from '../report-error.js';
import { repoOption, type RepoArgs } from '../wheel-repo.js';

interface FetchArgs extends RepoArgs {
  specs: string[];
  requirement: string[];
  select: string[];
  role: string[];
  python?: string;
  'python-version'?: string;
  platform: string[];
  implementation?: string;
  abi: string[];
  'index-url'?: string;
  'extra-index-url': string[];
  'find-links': string[];
  /** false with --no-index (yargs reads --no-X as X = false). */
  index: boolean;
  upgrade: boolean;
  'dry-run': boolean;
  json: boolean;
  'ssh-config'?: string;
}

/**
 * A repeatable flag taking one value each time. Not yargs' `array`, which would also swallow the
 * requirements after it (`--find-links DIR django` would make django a second DIR).
 */
const REPEATABLE = { type: 'string', requiresArg: true, default: [] as string[], coerce: (v: string | string[]) => [v].flat() } as const;

export function fetchCommand(output: Output, setExit: (code: number) => void): CommandModule<RepoArgs, FetchArgs> {
  return {
    command: 'fetch [specs..]',
    describe: "Download the wheels the fleet's Pythons need (with your pip and index) into the repository",
    builder: (y) =>
      y
        .positional('specs', { type: 'string', array: true, default: [] as string[], describe: 'Requirements to fetch, as pip writes them (default: the venvs\' requirements files)' })
        .option('requirement', { alias: 'r', ...REPEATABLE, describe: 'Requirements FILE to fetch (repeatable)' })
        .option('select', { ...REPEATABLE, describe: 'Only the Pythons of the venvs this selector matches (host, user@host:/path, …; repeatable)' })
        .option('role', { ...REPEATABLE, describe: 'Only the Pythons of hosts with this role (repeatable)' })
        .option('repo', repoOption)
        .option('python', { type: 'string', requiresArg: true, describe: 'Local Python whose pip downloads (default: python3 on PATH)' })
        .option('python-version', { type: 'string', requiresArg: true, describe: 'Fetch for this Python version (e.g. 3.12) instead of the venvs\' known interpreters; needs --platform' })
        .option('platform', { ...REPEATABLE, describe: 'Wheel platform tag for --python-version (repeatable, most preferred first)' })
        .option('implementation', { type: 'string', requiresArg: true, describe: 'With --python-version: cp (default), pp, …' })
        .option('abi', { ...REPEATABLE, describe: 'With --python-version: ABI tag (default cp<version> for cp; repeatable)' })
        .option('index-url', { type: 'string', requiresArg: true, describe: 'Passed to pip' })
        .option('extra-index-url', { ...REPEATABLE, describe: 'Passed to pip (repeatable)' })
        .option('find-links', { ...REPEATABLE, describe: 'Passed to pip (repeatable)' })
        .option('index', { type: 'boolean', default: true, describe: '--no-index: passed to pip (only --find-links and the repository are searched)' })
        .option('upgrade', { type: 'boolean', default: false, describe: 'Newest versions the index offers, instead of the versions already in the repository' })
        .option('dry-run', { type: 'boolean', default: false, describe: 'Only list what would be downloaded (needs pip 22.2+); the repository is not touched' })
        .option('json', { type: 'boolean', default: false, describe: 'Print the result as JSON on stdout' })
        .option('ssh-config', { type: 'string', requiresArg: true, describe: 'The ssh_config FILE plan used, if not ~/.ssh/config (host names only: fetch never connects)' }),
    handler: async (args) => {
      const { repo, targets } = await chooseTargets(args);
      const interrupted = new AbortController();
      // The reason is the error: without one, the message would quote pip's whole argv (the wrapper script).
      const restore = onInterrupt(() =>
        interrupted.abort(new InterruptedError('interrupted: pip was stopped; wheels of the targets done before are in the repository, none of the one pip was working on')),
      );
      let result: FetchResult;
      try {
        result = await fetchWheels({
          repoDir: repo,
          targets,
          requirementFiles: args.requirement.map((f) => resolve(f)),
          specs: args.specs,
          index: {
            ...(args['index-url'] !== undefined ? { indexUrl: args['index-url'] } : {}),
            extraIndexUrls: args['extra-index-url'],
            findLinks: args['find-links'].map((f) => (/^[a-z][a-z0-9+.-]*:/i.test(f) ? f : resolve(f))),
            noIndex: !args.index,
          },
          ...(args.python !== undefined ? { python: args.python } : {}),
          upgrade: args.upgrade,
          dryRun: args['dry-run'],
          signal: interrupted.signal,
          onEvent: (event) => {
            const line = describeFetchEvent(event);
            if (line !== undefined) output.err(line);
          },
        });
      } finally {
        restore();
      }
      if (args.json) output.json(result);
      else renderResult(output, result);
      if (result.failed) setExit(EXIT.targetFailed);
    },
  };
}

/** The repository and the targets: from the flags, else from the deployfile's venvs and the interpreter cache. */
async function chooseTargets(args: FetchArgs): Promise<{ repo: string; targets: FetchTarget[] }> {
  const explicit = args['python-version'] !== undefined;
  if (!explicit && (args.platform.length > 0 || args.abi.length > 0 || args.implementation !== undefined)) {
    throw new ConfigError('--platform, --abi and --implementation describe a target only with --python-version', { hint: 'add --python-version (e.g. 3.12), or leave them out to fetch for the venvs\' known Pythons' });
  }
  if (explicit && (args.select.length > 0 || args.role.length > 0)) {
    throw new ConfigError('--python-version names the target itself: --select and --role have nothing to choose', { hint: 'leave out either --python-version/--platform or --select/--role' });
  }
  if (explicit && args.platform.length === 0) {
    throw new ConfigError('--python-version needs --platform (the hosts\' platform tag)', { hint: 'e.g. --python-version 3.12 --platform manylinux_2_17_x86_64' });
  }
  const target = explicit
    ? explicitTarget({
        pythonVersion: args['python-version']!,
        platforms: args.platform,
        ...(args.implementation !== undefined ? { implementation: args.implementation } : {}),
        abis: args.abi,
      })
    : undefined;
  // With an explicit target a deployfile is optional: it only names the repository.
  if (target && (args.repo || (!args.deployfile && !findDeployfile(process.cwd())))) {
    return { repo: resolve(args.repo ?? 'wheels'), targets: [target] };
  }
  const config = await loadConfig(args);
  const repo = args.repo ? resolve(args.repo) : config.wheels;
  if (target) return { repo, targets: [target] };
  const venvs = selectVenvs(config, { selectors: args.select, roles: args.role });
  return { repo, targets: targetsFromCache(config, venvs, defaultInterpreterCache(), readSshConfig(args['ssh-config'] ? resolve(args['ssh-config']) : undefined)) };
}

/** Progress, one line per event that matters, on stderr. */
export function describeFetchEvent(e: FetchEvent): string | undefined {
  switch (e.kind) {
    case 'pip':
      return `using pip ${e.pip.pipVersion} of ${e.pip.python} (Python ${e.pip.pythonVersion})`;
    case 'target-start': {
      const who = e.venvs.length > 0 ? ` for ${plural(e.venvs.length, 'venv')}` : '';
      const held = e.pinned > 0 ? `, ${plural(e.pinned, 'project')} held at the repository's versions` : '';
      return `${chalk.bold(e.target)}${who}${held}`;
    }
    case 'collecting':
      return `  ${e.target}: ${e.requirement}`;
    case 'saved':
      return `  ${e.target}: ${chalk.dim('got')} ${e.filename}`;
    case 'retry':
      return `  ${e.target}: ${chalk.yellow('some requirement has no wheel here')}; trying the ${e.requirements} requirements one by one`;
    case 'target-done':
      return e.error !== undefined
        ? `  ${e.target}: ${chalk.red('failed')}`
        : `  ${e.target}: ${plural(e.wheels, 'wheel')}${e.missing > 0 ? `, ${chalk.red(`${e.missing} missing`)}` : ''}`;
    case 'warning':
      return `${chalk.yellow('warning:')} ${e.target}: ${e.message}`;
    case 'add-wheel':
      return describeEvent(e.event);
    default:
      return undefined;
  }
}

const STATUS: Record<WheelStatus, () => string> = {
  added: () => chalk.green('added'),
  replaced: () => chalk.yellow('replaced'),
  'already-present': () => chalk.dim('present'),
  refused: () => chalk.red('refused'),
  'would-add': () => chalk.cyan('would add'),
};

function renderResult(output: Output, result: FetchResult): void {
  const labels = result.targets.map((t) => t.target);
  const rows = result.packages.map((p) => [p.name, p.version, ...labels.map((l) => (p.targets[l] ? STATUS[p.targets[l]]() : chalk.dim('-')))]);
  if (rows.length > 0) for (const line of formatTable([['package', 'version', ...labels].map((h) => chalk.bold(h)), ...rows])) output.out(line);
  for (const t of result.targets) {
    for (const w of t.wheels) {
      for (const warning of w.warnings ?? []) output.err(`${chalk.yellow('warning:')} ${w.filename}: ${warning}`);
      if (w.status === 'refused') output.err(`${chalk.red('refused:')} ${w.reason ?? w.filename}${w.hint ? `\n  ${chalk.dim('hint:')} ${w.hint}` : ''}`);
    }
    for (const m of t.missing) {
      const from = m.neededBy ? ` (needed by ${m.neededBy})` : m.topLevel && m.topLevel !== m.requirement ? ` (needed by ${m.topLevel})` : '';
      const versions = m.versions.length > 0 ? `; versions seen: ${m.versions.join(', ')}` : '';
      output.err(`${chalk.red('missing:')} ${t.target}: ${m.requirement}${from}${versions}`);
      output.err(`  ${chalk.dim('hint:')} ${m.hint}`);
    }
    if (t.error) output.err(`${chalk.red('error:')} ${t.target}: ${t.error.message}\n  ${chalk.dim('hint:')} ${t.error.hint}`);
  }
  output.out(summary(result));
}

function summary(result: FetchResult): string {
  const count = (s: WheelStatus) => result.targets.reduce((n, t) => n + t.wheels.filter((w) => w.status === s).length, 0);
  const missing = result.targets.reduce((n, t) => n + t.missing.length, 0);
  const failed = result.targets.filter((t) => t.error).length;
  const parts = result.dryRun ? [`${count('would-add')} would be added`] : [`${count('added')} added`];
  if (count('replaced')) parts.push(`${count('replaced')} replaced`);
  parts.push(`${count('already-present')} already present`);
  if (count('refused')) parts.push(`${count('refused')} refused`);
  if (missing) parts.push(`${missing} missing`);
  if (failed) parts.push(`${plural(failed, 'target')} failed`);
  const tail = result.dryRun
    ? ' (dry run: nothing downloaded, the repository is unchanged)'
    : (missing || failed) && count('added') + count('replaced') > 0
      ? ' (the wheels that did download were added)'
      : '';
  return `${plural(result.targets.length, 'target')}: ${parts.join(', ')}${tail}`;
}
