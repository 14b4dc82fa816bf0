/** `vdeploy releases`: the releases each selected app root holds on its host (releases layout). */
import chalk from 'chalk';
import type { CommandModule } from 'yargs';
import type { PackageChange } from '../../deploy/plan.js';
import { createHostConnector } from '../../remote/connect-host.js';
import { listReleases, type ReleaseRow, type ReleasesListing } from '../../status/list-releases.js';
import { loadConfig, type GlobalArgs } from '../context.js';
import { formatTable, plural, type Output } from '../output.js';
import { releaseSize } from '../render-plan.js';
import { EXIT } from '../report-error.js';
import { hostConnectorOptions, sshOptions, type SshArgs } from '../ssh-options.js';
import { shortTime } from './status.js';

interface ReleasesArgs extends GlobalArgs, SshArgs {
  selectors: string[];
  role: string[];
  json: boolean;
}

export function releasesCommand(output: Output, setExit: (code: number) => void): CommandModule<GlobalArgs, ReleasesArgs> {
  return {
    command: 'releases [selectors..]',
    describe: 'List the releases each app root holds (releases layout), newest first: id, live, size, what changed, the deploy that made it',
    builder: (y) =>
      sshOptions(y)
        .positional('selectors', { type: 'string', array: true, default: [] as string[], describe: 'host, user@host, user@host:/path, host:/path, :/path or user@ (none = all)' })
        .option('role', { type: 'string', array: true, default: [] as string[], describe: 'Only hosts with this role (repeatable)' })
        .option('json', { type: 'boolean', default: false, describe: 'Print the releases as JSON (schema in docs/cli.md)' }),
    handler: async (args) => {
      const config = await loadConfig(args);
      const connector = createHostConnector(config, hostConnectorOptions(args, output));
      try {
        const listing = await listReleases(config, { selectors: args.selectors, roles: args.role, connector });
        if (args.json) output.json(listing);
        else for (const line of renderReleases(listing)) output.out(line);
        if (listing.venvs.some((v) => !v.ok)) setExit(EXIT.targetFailed);
      } finally {
        await connector.closeAll();
      }
    },
  };
}

export function renderReleases(listing: ReleasesListing): string[] {
  const lines: string[] = [];
  for (const v of listing.venvs) {
    if (!v.ok) {
      lines.push(chalk.bold(v.id), `  ${chalk.red('unreachable')}: ${v.message}`);
      continue;
    }
    lines.push(`${chalk.bold(v.id)}  ${chalk.dim(`keep ${v.keep}; ${plural(v.releases.length, 'release')} on the host; live: `)}${v.live ? chalk.green(v.live) : chalk.dim('none yet')}`);
    if (v.releases.length === 0) {
      lines.push(chalk.dim('  no releases yet: the next deploy creates the first'));
      continue;
    }
    const header = ['RELEASE', '', 'SIZE', 'MADE BY', 'CHANGES (from the release before)'].map((h) => chalk.dim(h));
    for (const line of formatTable([header, ...v.releases.map(releaseRow)])) lines.push(`  ${line}`);
  }
  for (const id of listing.inPlace) lines.push(chalk.dim(`${id}: an in-place venv (no \`releases\` in the deployfile): no releases`));
  return lines;
}

function releaseRow(r: ReleaseRow): string[] {
  const mark = r.live ? chalk.green('live') : r.rollbackTarget ? chalk.cyan('rollback target') : '';
  const madeBy = r.madeBy ? `#${r.madeBy.number} ${shortTime(r.madeBy.time)} ${r.madeBy.localUser}@${r.madeBy.localHost}${r.madeBy.action === 'deploy' ? '' : ` ${r.madeBy.action}`}` : chalk.dim('not in the history');
  return [r.live ? chalk.green(r.id) : r.id, mark, releaseSize(r.bytes, r.ownBytes) || '-', madeBy, describeChanges(r)];
}

/** The packages that differ from the release before; the oldest on the host: how many it has. */
export function describeChanges(r: ReleaseRow): string {
  if (r.changes === null) return chalk.dim(`oldest here: ${plural(Object.keys(r.installed).length, 'package')}`);
  if (r.changes.length === 0) return chalk.dim('the same packages');
  const shown = r.changes.map(formatChange);
  return (shown.length > 5 ? [...shown.slice(0, 5), `… ${shown.length - 5} more`] : shown).join(', ');
}

function formatChange(c: PackageChange): string {
  return c.kind === 'install' ? `+${c.name} ${c.to}` : c.kind === 'remove' ? `-${c.name} ${c.from}` : `${c.name} ${c.from}→${c.to}`;
}
