/** `vdeploy status` and `vdeploy history`: what runs where, and what each venv's deploys did. */
import chalk from 'chalk';
import { stripVTControlCharacters } from 'node:util';
import type { CommandModule } from 'yargs';

import { createHostConnector } from '../../remote/connect-host.js';
import { fleetStatus, safeCompare, type FleetStatus, type VenvStatus } from '../../status/fleet-status.js';
import { readHistories, type HistoryEntryWithCommits, type VenvHistory } from '../../status/venv-history.js';
import { shortCommits, type BuiltFrom } from '../../status/built-from.js';
import { loadConfig, type GlobalArgs } from '../context.js';
import { formatTable, type Output } from '../output.js';
import { hostConnectorOptions, sshOptions, type SshArgs } from '../ssh-options.js';
import { renderRecovered } from '../render-plan.js';
import { EXIT } from '../report-error.js';

interface StatusArgs extends GlobalArgs, SshArgs {
  selectors: string[];
  role: string[];
  all: boolean;
  json: boolean;
}

const SELECTORS = { type: 'string', array: true, default: [] as string[], describe: 'host, user@host, user@host:/path, host:/path, :/path or user@ (none = all)' } as const;

export function statusCommand(output: Output, setExit: (code: number) => void): CommandModule<GlobalArgs, StatusArgs> {
  return {
    command: 'status [selectors..]',
    describe: 'Show, live, whether each venv matches what a deploy would install, its last deploy, and a version matrix',
    builder: (y) =>
      sshOptions(y)
        .positional('selectors', SELECTORS)
        .option('role', { type: 'string', array: true, default: [] as string[], describe: 'Only hosts with this role (repeatable)' })
        .option('all', { type: 'boolean', default: false, describe: 'Every package in the matrix, not only those that differ' })
        .option('json', { type: 'boolean', default: false, describe: 'Print the status as JSON (schema in docs/status.md)' }),
    handler: async (args) => {
      const config = await loadConfig(args);
      const connector = createHostConnector(config, hostConnectorOptions(args, output));
      try {
        const status = await fleetStatus(config, { selectors: args.selectors, roles: args.role, connector });
        if (args.json) output.json(status);
        else for (const line of [...renderRecovered(status.recovered), ...renderStatus(status, args.all, process.stdout.columns || 80)]) output.out(line);
        if (status.venvs.some((v) => v.state === 'unreachable' || v.state === 'error') || status.hosts.some((h) => h.files.error !== undefined)) setExit(EXIT.targetFailed);
      } finally {
        await connector.closeAll();
      }
    },
  };
}

interface HistoryArgs extends GlobalArgs, SshArgs {
  selectors: string[];
  role: string[];
  json: boolean;
}

export function historyCommand(output: Output, setExit: (code: number) => void): CommandModule<GlobalArgs, HistoryArgs> {
  return {
    command: 'history [selectors..]',
    describe: "Show each venv's deploys, newest first: time, who, outcome, what changed",
    builder: (y) =>
      sshOptions(y)
        .positional('selectors', SELECTORS)
        .option('role', { type: 'string', array: true, default: [] as string[], describe: 'Only hosts with this role (repeatable)' })
        .option('json', { type: 'boolean', default: false, describe: 'Print the history as JSON (schema in docs/status.md)' }),
    handler: async (args) => {
      const config = await loadConfig(args);
      const connector = createHostConnector(config, hostConnectorOptions(args, output));
      try {
        const histories = await readHistories(config, { selectors: args.selectors, roles: args.role, connector });
        if (args.json) output.json(histories.map((h) => (h.ok ? { ...h, entries: [...h.entries].reverse() } : h)));
        else for (const line of renderHistories(histories)) output.out(line);
        if (histories.some((h) => !h.ok)) setExit(EXIT.targetFailed);
      } finally {
        await connector.closeAll();
      }
    },
  };
}

/** Each venv's history, newest first; a releases venv says which release is live and each entry's release. */
export function renderHistories(histories: readonly VenvHistory[]): string[] {
  const lines: string[] = [];
  for (const h of histories) {
    const live = h.ok && h.live !== undefined ? `  ${chalk.dim('live release:')} ${h.live ? chalk.green(h.live) : chalk.dim('none yet')}` : '';
    const runs = h.ok && h.builtFrom ? `  ${chalk.dim('runs')} ${h.builtFrom.map(describeBuilt).join(', ')}` : '';
    lines.push(`${chalk.bold(h.id)}${live}${runs}`);
    if (!h.ok) lines.push(`  ${chalk.red('unreachable')}: ${h.message}`);
    else if (h.entries.length === 0) lines.push(chalk.dim('  no deploys recorded'));
    else {
      const releases = h.live !== undefined;
      const commits = h.entries.some((e) => e.builtFrom);
      const rows = [...h.entries].reverse().map((e) => historyRow(e, releases ? h.live ?? null : undefined, commits));
      for (const line of formatTable(rows)) lines.push(`  ${line}`);
    }
  }
  return lines;
}

/** `myapp 1.1 from commit 3b18e512dba7` */
function describeBuilt(b: BuiltFrom): string {
  return `${b.name} ${b.version} from commit ${b.commit.slice(0, 12)}`;
}

/**
 * One entry; `live` (releases layout): the live release, to mark the entries that name it; `commits`:
 * a column for the commit(s) the entry's resulting set was built from.
 */
function historyRow(e: HistoryEntryWithCommits, live: string | null | undefined, commits: boolean): string[] {
  const changes = e.changes.map((c) => (c.kind === 'install' ? `+${c.name} ${c.to}` : c.kind === 'remove' ? `-${c.name}` : `${c.name} ${c.from}→${c.to}`));
  const shown = changes.length > 4 ? [...changes.slice(0, 4), `… ${changes.length - 4} more`] : changes;
  const outcome = e.outcome === 'deployed' ? chalk.green(e.outcome) : chalk.red(`${e.outcome}${e.failedStep ? ` at ${e.failedStep}` : ''}`);
  const what = e.action === 'deploy' ? '' : chalk.cyan(`${e.action}${e.undoes ? ` of #${e.undoes}` : e.restores ? ` to #${e.restores}` : ''}${e.reason ? ` (${e.reason})` : ''} `);
  const back = e.switchedBack === undefined ? '' : chalk.yellow(e.switchedBack ? `; switched back to ${e.previousRelease ?? 'no release'}` : '; switching back failed');
  const row = [`#${e.number}`, shortTime(e.time), `${e.localUser}@${e.localHost}`, outcome];
  if (live !== undefined) row.push(!e.release ? chalk.dim('-') : e.release === live ? chalk.green(`${e.release} (live)`) : e.release);
  if (commits) row.push(e.builtFrom ? shortCommits(e.builtFrom) : chalk.dim('-'));
  return [...row, `${what}${shown.join(', ') || chalk.dim('no package changes')}${back}`];
}

/** `2026-12-03 23:52Z` from an ISO time. */
export function shortTime(iso: string): string {
  return iso.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, 'Z');
}

const STATE: Record<VenvStatus['state'], (v: VenvStatus) => string> = {
  'in-sync': () => chalk.green('in sync'),
  drift: (v) => chalk.yellow(`drift (${v.differing})`),
  unreachable: () => chalk.red('unreachable'),
  error: () => chalk.red('error'),
};

export function renderStatus(status: FleetStatus, all: boolean, columns: number): string[] {
  // A deployfile of config files only: no venv table, no matrix.
  if (status.venvs.length === 0) return renderFilesStatus(status.hosts);
  return [...renderVenvStatus(status, all, columns), ...renderFilesStatus(status.hosts)];
}

/** After the matrix: `files drift on host1: /etc/a (content), /etc/b (mode 0600 -> 0644)`, pending handlers, orphans. */
export function renderFilesStatus(hosts: FleetStatus['hosts']): string[] {
  const lines: string[] = [];
  for (const h of hosts) {
    const f = h.files;
    if (f.error !== undefined) lines.push(`${chalk.red('files not read:')} ${f.error}`);
    if (f.drift.length > 0) lines.push(`${chalk.yellow(`files drift on ${h.host}:`)} ${f.drift.map(driftText).join(', ')}`);
    if (f.pending.length > 0) lines.push(`${chalk.yellow(`handlers pending on ${h.host}:`)} ${f.pending.join(', ')} (the next deploy runs them)`);
    if (f.orphans.length > 0) lines.push(chalk.dim(`files on ${h.host} no longer in the repository: ${f.orphans.join(', ')} (kept; deploy --prune-files removes them)`));
    if (f.error === undefined && f.drift.length === 0 && f.pending.length === 0) lines.push(chalk.dim(`files on ${h.host}: in sync`));
  }
  return lines.length > 0 ? ['', ...lines] : [];
}

function driftText(d: FleetStatus['hosts'][number]['files']['drift'][number]): string {
  const parts = d.what.map((w) => {
    const pair = w === 'mode' || w === 'owner' || w === 'group' ? d.meta?.[w] : undefined;
    return pair ? `${w} ${pair[0]} -> ${pair[1]}` : w;
  });
  return `${d.dest} (${parts.join(', ')})`;
}

function renderVenvStatus(status: FleetStatus, all: boolean, columns: number): string[] {
  const lastOf = (v: VenvStatus) =>
    v.last ? `${shortTime(v.last.time)} ${v.last.localUser} ${v.last.action === 'deploy' ? '' : `${v.last.action} `}${v.last.outcome}` : 'never deployed';
  const stateWidth = Math.max(...status.venvs.map((v) => stripVTControlCharacters(STATE[v.state](v)).length), 5);
  const lastWidth = Math.max(...status.venvs.map((v) => lastOf(v).length), 11);
  // The LIVE RELEASE column only when a selected venv uses the releases layout.
  const releases = status.venvs.some((v) => v.live !== undefined);
  const releaseWidth = releases ? Math.max(...status.venvs.map((v) => liveOf(v).length), 12) + 2 : 0;
  // The COMMIT column only when a venv runs a wheel `vdeploy build` built from a git commit.
  const commits = status.venvs.some((v) => v.builtFrom);
  const commitOf = (v: VenvStatus) => (v.builtFrom ? shortCommits(v.builtFrom) : '-');
  const commitWidth = commits ? Math.max(...status.venvs.map((v) => commitOf(v).length), 6) + 2 : 0;
  const idWidth = Math.max(20, columns - stateWidth - lastWidth - releaseWidth - commitWidth - 4);
  const rows = status.venvs.map((v) => [
    elide(v.id, idWidth),
    STATE[v.state](v),
    ...(releases ? [v.live ? chalk.green(liveOf(v)) : chalk.dim(liveOf(v))] : []),
    ...(commits ? [v.builtFrom ? commitOf(v) : chalk.dim('-')] : []),
    v.last ? lastOf(v) : chalk.dim(lastOf(v)),
  ]);
  const header = ['VENV', 'STATE', ...(releases ? ['LIVE RELEASE'] : []), ...(commits ? ['COMMIT'] : []), 'LAST DEPLOY'];
  const lines = formatTable([header.map((h) => chalk.dim(h)), ...rows]);
  for (const v of status.venvs) if (v.message && v.state !== 'in-sync') lines.push(chalk.dim(`  ${v.id}: ${v.message}`));

  const shown = status.matrix.filter((r) => all || r.differs);
  if (shown.length === 0) {
    lines.push('', chalk.dim(all ? 'No packages installed.' : 'Every venv has the same versions, and they are what a deploy would install.'));
    return lines;
  }
  const labels = abbreviate(status.venvs);
  const nameWidth = Math.max(7, ...shown.map((r) => r.name.length));
  const colWidth = (i: number) => Math.max(labels[i]!.length, ...shown.map((r) => (r.versions[i] ?? '-').length));
  // Fit the terminal: as many venv columns per block as the width allows.
  const blocks: number[][] = [];
  let block: number[] = [];
  let width = nameWidth + 2 + 10;
  for (let i = 0; i < labels.length; i++) {
    const w = colWidth(i) + 2;
    if (block.length > 0 && width + w > columns) {
      blocks.push(block);
      block = [];
      width = nameWidth + 2 + 10;
    }
    block.push(i);
    width += w;
  }
  if (block.length > 0) blocks.push(block);
  for (const cols of blocks) {
    lines.push('');
    const header = [chalk.dim('PACKAGE'), ...cols.map((i) => chalk.dim(labels[i]!)), chalk.dim('NEWEST')];
    const body = shown.map((r) => [r.name, ...cols.map((i) => colour(r.versions[i] ?? null, r.newest)), chalk.dim(r.newest ?? '-')]);
    lines.push(...formatTable([header, ...body]));
  }
  lines.push(chalk.dim(`${shown.length} of ${status.matrix.length} packages${all ? '' : ' (those that differ; --all shows every one)'}.`));
  lines.push(chalk.dim('Yellow: older than the newest release; magenta: newer; -: not installed.'));
  return lines;
}

/** The live release of a releases venv; `none yet` before its first, `in place` for an in-place venv. */
function liveOf(v: VenvStatus): string {
  return v.live === undefined ? (v.state === 'unreachable' || v.state === 'error' ? '?' : 'in place') : (v.live ?? 'none yet');
}

function colour(version: string | null, newest: string | undefined): string {
  if (version === null) return chalk.dim('-');
  if (!newest) return version;
  const order = safeCompare(version, newest);
  return order < 0 ? chalk.yellow(version) : order > 0 ? chalk.magenta(version) : chalk.green(version);
}

/** Shorten `user@host:/a/b/c/venv` to `columns` by eliding the middle of the path, keeping both ends. */
export function elide(id: string, columns: number): string {
  if (id.length <= columns) return id;
  const keepEnd = Math.ceil((columns - 1) * 0.6);
  return `${id.slice(0, columns - 1 - keepEnd)}…${id.slice(id.length - keepEnd)}`;
}

/** `host:venv-dir`, with more of the path only where two venvs would otherwise look alike. */
export function abbreviate(venvs: ReadonlyArray<{ host: string; path: string }>, max = 18): string[] {
  const labelAt = (v: { host: string; path: string }, depth: number) => `${v.host}:${v.path.split('/').filter(Boolean).slice(-depth).join('/') || '/'}`;
  let labels = venvs.map((v) => labelAt(v, 1));
  for (let depth = 2; depth < 6 && new Set(labels).size < labels.length; depth++) {
    labels = venvs.map((v, i) => (labels.filter((l) => l === labels[i]).length > 1 ? labelAt(v, depth) : labels[i]!));
  }
  return labels.map((l) => (l.length > max ? `${l.slice(0, max - 1)}…` : l)).map((l, i) => (labels.indexOf(labels[i]!) !== i ? `${l}#${i + 1}` : l));
}

