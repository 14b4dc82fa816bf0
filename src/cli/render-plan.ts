/** The plan as a compact coloured table grouped by venv, and the end-of-deploy summary. */
import chalk from 'chalk';
import { formatDuration } from '../remote/connection.js';
import type { Report } from '../deploy/apply-plan.js';
import type { ReleaseAnswer } from '../deploy/apply-contract.js';
import { hasChanges, type PackageChange, type Plan, type ReleasePlan, type RollbackPlan, type ShipGroup, type ShipPlan, type VenvPlan } from '../deploy/plan.js';
import { SHORT_BASE, SHORT_KEY } from '../deploy/ship-plan.js';
import { formatTable, plural } from './output.js';
import { formatBytes } from './render-events.js';
import { renderShipSummary } from './render-ship.js';
import { renderFilesSummary, renderPlanFiles } from './render-files-report.js';

// Functions, not strings: chalk's level is set when the CLI starts (colour.ts), after this module loads.
const MARK: Record<PackageChange['kind'], () => string> = {
  install: () => chalk.green('+'),
  upgrade: () => chalk.cyan('↑'),
  downgrade: () => chalk.yellow('↓'),
  remove: () => chalk.red('-'),
};

export function renderPlan(plan: Plan): string[] {
  const lines: string[] = [];
  // A fleet usually gets the same changes everywhere: list them once, under the first venv that has them.
  const listedUnder = new Map<string, string>();
  for (const v of plan.venvs) {
    if (v.status === 'ok' && hasChanges(v)) {
      const signature = JSON.stringify(v.changes);
      const first = listedUnder.get(signature);
      if (first !== undefined) {
        lines.push(`${chalk.bold(v.id)}  ${changesHead(v)}${chalk.dim(`  (the same changes as ${first})`)}`);
        lines.push(...venvNotes(plan, v));
        continue;
      }
      listedUnder.set(signature, v.id);
    }
    lines.push(...renderVenv(plan, v));
  }
  for (const g of plan.groups ?? []) lines.push(groupLine(plan, g));
  lines.push(...renderPlanFiles(plan));
  return lines;
}

/** `host1:/srv/app`: a venv's place without its user (host and path name one venv). */
function place(plan: Plan, id: string): string {
  const v = plan.venvs.find((x) => x.id === id);
  return v ? `${v.host}:${v.path}` : id;
}

/** What a shipping venv does instead of (or besides) its own pip run. */
export function shipNote(plan: Plan, ship: ShipPlan): string {
  const group = ship.group.slice(0, SHORT_KEY);
  if (ship.role === 'builder') return `build here with pip, then ship to ${plural(ship.members - 1, 'venv')} (group ${group})`;
  const kind = ship.kind === 'delta' && ship.base !== undefined ? `delta from ${ship.base.slice(0, SHORT_BASE)}` : 'full';
  return ship.from === 'cache' ? `receive from the local artifact cache (${kind})` : `receive the release built for ${place(plan, ship.from)} (${kind})`;
}

/** One line per shipping group: who builds it (or the cache), and how far it goes. */
export function groupLine(plan: Plan, g: ShipGroup): string {
  const receivers = g.builder === 'cache' ? g.members : g.members.filter((id) => id !== g.builder);
  const hosts = new Set(receivers.map((id) => plan.venvs.find((v) => v.id === id)?.host ?? id));
  const source = g.builder === 'cache' ? 'from the local artifact cache' : `built on ${place(plan, g.builder)}`;
  return `${chalk.cyan(`group ${g.key.slice(0, SHORT_KEY)}`)}: ${source}, shipped to ${plural(receivers.length, 'venv')} on ${plural(hosts.size, 'host')}`;
}

/** `~jango, ~equests` from their paths. */
function stashNames(paths: readonly string[]): string {
  return paths.map((p) => p.slice(p.lastIndexOf('/') + 1)).join(', ');
}

/** What is particular to one venv even when its changes are the same as another's. */
function venvNotes(plan: Plan, v: Extract<VenvPlan, { status: 'ok' }>): string[] {
  const lines: string[] = [];
  if (v.releases && hasChanges(v)) lines.push(chalk.cyan(`    ${releaseNote(v.releases, v.changes.length)}`));
  if (v.ship) lines.push(chalk.cyan(`    ${shipNote(plan, v.ship)}`));
  if (v.stashes?.length) lines.push(chalk.yellow(`    removes pip's leftover stash folders (a pip that died mid-way): ${stashNames(v.stashes)}`));
  if (hasChanges(v)) lines.push(...renderDjangoNotes(v));
  return lines;
}

/**
 * What follows the install on a Django venv, and a warning when the deploy brings back what a rollback
 * took off. Which migrations migrate applies is only known once the new code is installed: the
 * summary (and --json) lists them.
 */
function renderDjangoNotes(v: Extract<VenvPlan, { status: 'ok' }>): string[] {
  const lines: string[] = [];
  if (v.migrate === true) lines.push(chalk.dim('    then Django migrate (the migrations it applies are listed when done)'));
  else if (v.migrate === false && !v.desired.some((p) => p.key === 'django')) lines.push(chalk.dim('    no Django migrate: Django is not in the planned set'));
  if (v.reinstalls) {
    const what = v.reinstalls.packages.map((p) => `${p.name} ${p.version}`).join(', ');
    const pins = v.reinstalls.packages.map((p) => (p.now ? `${p.name}==${p.now}` : `${p.name}<${p.version}`)).join(', ');
    lines.push(chalk.yellow(`    reinstalls ${what}, which rollback #${v.reinstalls.entry} took off (a deploy takes the newest release); to hold back, pin ${pins} in the requirements file`));
  }
  return lines;
}

/** One venv's part of the plan in full (what the confirmation prompt's `d` shows). */
export function renderVenv(plan: Plan, v: VenvPlan): string[] {
  if (v.status === 'error') {
    const lines = [`${chalk.bold(v.id)}  ${chalk.red(`error (${v.stage})`)}: ${v.message}`];
    if (v.hint) lines.push(`  ${chalk.dim('hint:')} ${v.hint}`);
    return lines;
  }
  const lines: string[] = [];
  if (!hasChanges(v)) {
    const migrate = v.migrate ? `; ${chalk.cyan('Django migrate (--migrate always)')}` : '';
    const live = v.releases?.live ? `, release ${v.releases.live} live` : '';
    lines.push(`${chalk.bold(v.id)}  ${chalk.dim(`up to date (${plural(v.unchanged.length, 'package')}${live})`)}${migrate}`);
  } else {
    lines.push(`${chalk.bold(v.id)}  ${changesHead(v)}`);
    const rows = v.changes.map((c) => [
      `  ${MARK[c.kind]()}`,
      c.name,
      c.kind === 'install' ? chalk.green(c.to!) : c.kind === 'remove' ? chalk.red(c.from!) : `${c.from} → ${c.kind === 'upgrade' ? chalk.cyan(c.to!) : chalk.yellow(c.to!)}`,
      chalk.dim(c.kind),
    ]);
    lines.push(...formatTable(rows));
    if (v.unchanged.length > 0) lines.push(chalk.dim(`    ${plural(v.unchanged.length, 'package')} unchanged`));
  }
  if (v.rollback) lines.push(...renderRollbackNotes(v.rollback));
  lines.push(...venvNotes(plan, v));
  if (v.restore && 'error' in v.restore) lines.push(chalk.yellow(`    no automatic rollback possible: ${v.restore.error}`));
  if (v.unneeded.length > 0 && !plan.prune) {
    const names = v.unneeded.map((p) => `${p.name} ${p.version}`).join(', ');
    lines.push(chalk.dim(`    not required by anything: ${names} (kept; --prune removes them)`));
  }
  return lines;
}

/** How the release an apply makes live comes to be (releases layout). */
export function releaseNote(r: ReleasePlan, changes: number): string {
  if (r.build === 'switch') return `rollback: switch current to ${r.switchTo} (no pip)`;
  if (r.cleanedUp !== undefined) return `release ${r.cleanedUp} was cleaned up: rebuilding it from the release log${r.live ? ` (a clone of ${r.live} + ${plural(changes, 'change')})` : ''}`;
  if (r.build === 'clone' && r.live !== null) return `new release: clone of ${r.live} + ${plural(changes, 'change')}`;
  return r.live === null && r.onHost.length === 0 ? 'first release (new venv)' : 'new release (new venv: no release is live)';
}

function changesHead(v: Extract<VenvPlan, { status: 'ok' }>): string {
  const create = v.halfMade ? 'create anew (an earlier deploy left it half-made)' : 'create';
  return v.create !== null ? chalk.green(`${create} with ${v.create}, ${summarizeChanges(v.changes)}`) : summarizeChanges(v.changes);
}

/** Applies a host finished that no run recorded, written to release_log by this run's plan. */
export function renderRecovered(recovered: Plan['recovered']): string[] {
  return recovered.map((r) => {
    const when = r.finishedAt ? ` finished ${r.finishedAt}` : '';
    const what = `${r.venv} history #${r.history} (${r.action}${when}; the run that applied it never recorded it): ${r.wheels.join(', ')}`;
    return r.notRecorded === undefined ? `${chalk.yellow('recovered into release_log:')} ${what}` : `${chalk.red('not recorded in release_log')} (${r.notRecorded}): ${what}`;
  });
}

function renderRollbackNotes(r: RollbackPlan): string[] {
  const lines = [chalk.dim(r.undoes !== undefined ? `    undoes history #${r.undoes}` : `    back to the set of history #${r.restores}`)];
  for (const m of r.migrations) {
    const what = `${m.app}: ${m.unapplies.join(', ')}`;
    if (r.unapplyMigrations) lines.push(chalk.yellow(`    unapplies migrations ${what} (migrate ${m.app} ${m.to}) before installing`));
    else lines.push(chalk.yellow(`    warning: migrations applied since then stay applied (${what}); --unapply-migrations reverses them`));
  }
  return lines;
}

function summarizeChanges(changes: readonly PackageChange[]): string {
  const count = (kind: PackageChange['kind']) => changes.filter((c) => c.kind === kind).length;
  const parts = [
    [count('install'), 'install'],
    [count('upgrade'), 'upgrade'],
    [count('downgrade'), 'downgrade'],
    [count('remove'), 'remove'],
  ]
    .filter(([n]) => (n as number) > 0)
    .map(([n, what]) => `${n} to ${what}`);
  return chalk.cyan(parts.join(', '));
}

const OUTCOME_COLOUR: Record<string, (s: string) => string> = {
  deployed: chalk.green,
  'rolled back': chalk.green,
  migrated: chalk.green,
  unchanged: chalk.dim,
  declined: chalk.yellow,
  skipped: chalk.yellow,
  failed: chalk.red,
  locked: chalk.red,
  interrupted: chalk.red,
  'restored': chalk.red,
};

export function renderSummary(report: Report): string[] {
  const header = ['VENV', 'OUTCOME', 'CHANGES', 'TIME'].map((h) => chalk.dim(h));
  const rows = report.venvs.map((r) => [
    r.id,
    (OUTCOME_COLOUR[r.outcome] ?? String)(r.outcome),
    r.outcome === 'unchanged' || r.outcome === 'migrated' ? '-' : r.created ? `created, ${r.changes.length}` : String(r.changes.length),
    r.ms > 0 ? formatDuration(r.ms) : '-',
  ]);
  // A deploy of config files only has no venv to list.
  const lines = report.venvs.length > 0 ? formatTable([header, ...rows]) : [];
  for (const r of report.venvs) {
    if (r.message && r.outcome !== 'unchanged') {
      lines.push(`${chalk.red('✗')} ${r.message}`);
      if (r.hint) lines.push(`  ${chalk.dim('hint:')} ${r.hint}`);
    }
    if (r.migrations) lines.push(...renderMigrations(r.id, r.migrations));
    if (r.rolledBack) {
      lines.push(
        r.rolledBack.ok
          ? `  ${chalk.yellow('↩')} ${r.release ? switchedBackTo(r.release) : 'rolled back to the previous set'} (${r.rolledBack.reason})`
          : `  ${chalk.red('✗')} automatic rollback failed: ${r.rolledBack.message ?? r.rolledBack.reason}`,
      );
    }
    if (r.release) lines.push(...renderRelease(r.id, r.release));
  }
  for (const h of report.hosts) {
    if (h.reload && !h.reload.ok) lines.push(`${chalk.red('✗')} ${h.reload.message}`);
  }
  lines.push(...renderFilesSummary(report));
  lines.push(...renderShipSummary(report));
  return lines;
}

function switchedBackTo(release: ReleaseAnswer): string {
  return release.previous ? `switched current back to ${release.previous}` : 'removed current: the first release failed, so no release is live';
}

/** `12.3 MiB` or `12.3 MiB, 180.0 KiB its own`: hardlinked releases share the rest. */
export function releaseSize(bytes: number | undefined, ownBytes: number | undefined): string {
  if (bytes === undefined) return '';
  return ownBytes === undefined || ownBytes === bytes ? formatBytes(bytes) : `${formatBytes(bytes)}, ${formatBytes(ownBytes)} its own`;
}

/** The release that went live, and what cleanup removed. */
export function renderRelease(id: string, release: ReleaseAnswer): string[] {
  const lines: string[] = [];
  if (release.live !== null && release.live !== release.previous) {
    const size = releaseSize(release.bytes, release.ownBytes);
    lines.push(`  ${id}: release ${chalk.green(release.live)} is live${size ? ` (${size})` : ''}`);
  }
  if (release.removed.length > 0) {
    const what = release.removed.map((r) => `${r.id} (${r.why}, ${formatBytes(r.bytes)})`).join(', ');
    const freed = release.freedBytes !== undefined ? `; freed ${formatBytes(release.freedBytes)}` : '';
    lines.push(chalk.dim(`  ${id}: removed ${plural(release.removed.length, 'release')}: ${what}${freed}`));
  }
  return lines;
}

/** The migrations an apply ran, per venv: what the plan could not know before the install. */
function renderMigrations(id: string, m: NonNullable<Report['venvs'][number]['migrations']>): string[] {
  const lines: string[] = [];
  if (m.unapplied.length > 0) lines.push(`  ${id}: unapplied ${plural(m.unapplied.length, 'migration')}: ${m.unapplied.join(', ')}`);
  if (m.applied.length > 0) lines.push(`  ${id}: applied ${plural(m.applied.length, 'migration')}: ${m.applied.join(', ')}`);
  return lines;
}
