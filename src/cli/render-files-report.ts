/**
 * Config files in the deploy's output (docs/files.md): each host's file plan under the venvs' plan
 * (render-files.ts draws one host's), and a line per host in the summary of what the apply did.
 */
import chalk from 'chalk';
import type { Plan } from '../deploy/plan.js';
import type { FilesReport, Report } from '../deploy/report.js';
import { renderFilesPlan } from './render-files.js';
import { plural } from './output.js';

/**
 * Every planned host's files, in deployfile order. A host without files shows nothing (its facts are
 * read only to find files an earlier deploy wrote there, orphans now, and handlers left pending).
 */
export function renderPlanFiles(plan: Plan): string[] {
  return plan.hosts.flatMap((h) => {
    const f = h.files;
    if (!f || (f.files.length === 0 && f.orphans.length === 0 && f.pending.length === 0 && !f.error)) return [];
    return renderFilesPlan(h.name, f, chalk.level > 0);
  });
}

/** One host's file plan, for the confirmation's `d`. */
export function renderHostFiles(plan: Plan, host: string): string[] {
  const h = plan.hosts.find((x) => x.name === host);
  return h?.files ? renderFilesPlan(h.name, h.files, chalk.level > 0) : [];
}

/** `host1: files 2 written, 1 unchanged; handlers ran: supervisorctl update`, then what failed and what is pending. */
export function renderFilesSummary(report: Report): string[] {
  const lines: string[] = [];
  for (const h of report.hosts) if (h.files) lines.push(...hostFilesLines(h.name, h.files));
  return lines;
}

function hostFilesLines(host: string, f: FilesReport): string[] {
  const done = [
    f.written.length > 0 || f.meta.length === 0 ? `${f.written.length} written` : '',
    f.meta.length > 0 ? `${f.meta.length} owner/mode set` : '',
    f.removed.length > 0 ? `${f.removed.length} removed` : '',
    `${f.unchanged} unchanged`,
  ].filter(Boolean);
  const ran = f.handlers.filter((r) => r.ok).map((r) => r.command);
  const head = `${host}: files ${done.join(', ')}${ran.length > 0 ? `; handlers ran: ${ran.join(', ')}` : ''}`;
  const lines = [f.ok ? head : `${chalk.red('✗')} ${f.message ?? `${host}: files failed`}`];
  if (!f.ok && (f.written.length > 0 || ran.length > 0)) lines.push(`  ${head}`);
  const output = f.failed?.output?.trim() ?? f.handlers.find((r) => !r.ok)?.tail.trim();
  if (!f.ok && output) for (const line of output.split('\n').slice(-8)) lines.push(chalk.dim(`    ${line}`));
  if (f.hint) lines.push(`  ${chalk.dim('hint:')} ${f.hint}`);
  if (f.pending.length > 0) lines.push(chalk.yellow(`  ${host}: ${plural(f.pending.length, 'handler')} pending (the next deploy runs them): ${f.pending.join(', ')}`));
  return lines;
}
