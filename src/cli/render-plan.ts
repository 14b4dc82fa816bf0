/** The plan as a compact coloured table grouped by venv, and the end-of-deploy summary. */
import chalk from 'chalk';
import { formatDuration } from '../remote/connection.js';
import type { Report } from '../deploy/apply-plan.js';
import { hasChanges, type PackageChange, type Plan, type RollbackPlan, type VenvPlan } from '../deploy/plan.js';
import { formatTable, plural } from './output.js';

const MARK: Record<PackageChange['kind'], string> = {
  install: chalk.green('+'),
  upgrade: chalk.cyan('↑'),
  downgrade: chalk.yellow('↓'),
  remove: chalk.red('-'),
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
        continue;
      }
      listedUnder.set(signature, v.id);
    }
    lines.push(...renderVenv(plan, v));
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
    lines.push(`${chalk.bold(v.id)}  ${chalk.dim(`up to date (${plural(v.unchanged.length, 'package')})`)}`);
  } else {
    lines.push(`${chalk.bold(v.id)}  ${changesHead(v)}`);
    const rows = v.changes.map((c) => [
      `  ${MARK[c.kind]}`,
      c.name,
      c.kind === 'install' ? chalk.green(c.to!) : c.kind === 'remove' ? chalk.red(c.from!) : `${c.from} → ${c.kind === 'upgrade' ? chalk.cyan(c.to!) : chalk.yellow(c.to!)}`,
      chalk.dim(c.kind),
    ]);
    lines.push(...formatTable(rows));
    if (v.unchanged.length > 0) lines.push(chalk.dim(`    ${plural(v.unchanged.length, 'package')} unchanged`));
  }
  if (v.rollback) lines.push(...renderRollbackNotes(v.rollback));
  if (v.restore && 'error' in v.restore) lines.push(chalk.yellow(`    no automatic rollback possible: ${v.restore.error}`));
  if (v.unneeded.length > 0 && !plan.prune) {
    const names = v.unneeded.map((p) => `${p.name} ${p.version}`).join(', ');
    lines.push(chalk.dim(`    not required by anything: ${names} (kept; --prune removes them)`));
  }
  return lines;
}

function changesHead(v: Extract<VenvPlan, { status: 'ok' }>): string {
  return v.create !== null ? chalk.green(`create with ${v.create}, ${summarizeChanges(v.changes)}`) : summarizeChanges(v.changes);
}

/** Applies a host finished that no run recorded, written to release_log by this run's plan. */
export function renderRecovered(plan: Plan): string[] {
  return plan.recovered.map((r) => {
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
  unchanged: chalk.dim,
  declined: chalk.yellow,
  skipped: chalk.yellow,
  failed: chalk.red,
  locked: chalk.red,
  interrupted: chalk.red,
  'rolled-back': chalk.red,
};

export function renderSummary(report: Report): string[] {
  const header = ['VENV', 'OUTCOME', 'CHANGES', 'TIME'].map((h) => chalk.dim(h));
  const rows = report.venvs.map((r) => [
    r.id,
    (OUTCOME_COLOUR[r.outcome] ?? String)(r.outcome),
    r.outcome === 'unchanged' ? '-' : r.created ? `created, ${r.changes.length}` : String(r.changes.length),
    r.ms > 0 ? formatDuration(r.ms) : '-',
  ]);
  const lines = formatTable([header, ...rows]);
  for (const r of report.venvs) {
    if (r.message && r.outcome !== 'unchanged') {
      lines.push(`${chalk.red('✗')} ${r.message}`);
      if (r.hint) lines.push(`  ${chalk.dim('hint:')} ${r.hint}`);
    }
    if (r.rolledBack) {
      lines.push(
        r.rolledBack.ok
          ? `  ${chalk.yellow('↩')} rolled back to the previous set (${r.rolledBack.reason})`
          : `  ${chalk.red('✗')} automatic rollback failed: ${r.rolledBack.message ?? r.rolledBack.reason}`,
      );
    }
  }
  for (const h of report.hosts) {
    if (h.reload && !h.reload.ok) lines.push(`${chalk.red('✗')} ${h.reload.message}`);
  }
  return lines;
}
