/**
 * A host's file plan as plan lines (docs/files.md): each file that would be created, changed (with
 * its unified diff) or get a new owner/group/mode, orphans, and the handlers that would run. Secrets
 * show no diff (the plan holds none for them). Text from the host (the diff) may hold anything: control
 * characters are shown in caret notation, so a file cannot move the cursor or recolour the terminal.
 */
import chalk, { Chalk, type ChalkInstance } from 'chalk';
import { DAEMON_RELOAD } from '../files/plan-files.js';
import type { FileChange, FilesPlan } from '../files/types.js';

export function renderFilesPlan(host: string, plan: FilesPlan, colour: boolean): string[] {
  // chalk's level is set when the CLI starts (colour.ts); `colour` says whether these lines may use it at all.
  const c = new Chalk({ level: colour ? Math.max(1, chalk.level) as ChalkInstance['level'] : 0 });
  const head = `files on ${c.bold(host)}${plan.sudo ? c.dim(' (through sudo)') : ''}:`;
  if (plan.error !== undefined) {
    const lines = [`${head} ${c.red('error')}: ${plan.error.message}`];
    if (plan.error.hint) lines.push(`  ${c.dim('hint:')} ${plan.error.hint}`);
    return lines;
  }
  const lines = [head];
  for (const f of plan.files) lines.push(...fileLines(f, c));
  const unchanged = plan.files.filter((f) => f.action === 'unchanged').length;
  if (unchanged > 0) lines.push(c.dim(`  ${unchanged} ${unchanged === 1 ? 'file' : 'files'} unchanged`));
  for (const o of plan.orphans) {
    lines.push(`  ${c.red('-')} ${o} ${c.dim(plan.prune ? '(not in the repository; removed: --prune-files)' : '(not in the repository; kept — --prune-files removes it)')}`);
  }
  const handlers = plan.daemonReload ? [`${DAEMON_RELOAD} (a unit changed)`, ...plan.handlers.filter((h) => h !== DAEMON_RELOAD)] : plan.handlers;
  if (handlers.length > 0) lines.push(`  ${c.cyan('handlers:')} ${handlers.map(visible).join(', ')}`);
  if (plan.pending.length > 0) lines.push(c.yellow(`  pending from an earlier run: ${plan.pending.map(visible).join(', ')}`));
  if (lines.length === 1) lines[0] = `${head} ${c.dim('nothing')}`;
  return lines;
}

function fileLines(f: FileChange, c: ChalkInstance): string[] {
  switch (f.action) {
    case 'unchanged':
      return [];
    case 'create': {
      const what = ['create', ...(f.secret ? ['secret'] : []), [f.mode, ownership(f)].filter(Boolean).join(' ')].filter(Boolean);
      return [`  ${c.green('+')} ${f.dest} ${c.dim(`(${what.join(', ')})`)}`];
    }
    case 'metadata':
      return [`  ${c.yellow('=')} ${f.dest} ${c.dim(`(${metaText(f)})`)}`];
    case 'blocked':
      return [`  ${c.red('!')} ${f.dest} ${c.red(`(blocked: ${f.message ?? 'not a regular file on the host'})`)}`];
    case 'update': {
      const notes = [f.noDiff ? `${f.noDiff}: no diff shown` : '', f.meta ? metaText(f) : ''].filter(Boolean).join('; ');
      const lines = [`  ${c.cyan('~')} ${f.dest}${notes ? ` ${c.dim(`(${notes})`)}` : ''}`];
      if (f.diff !== undefined && !f.secret) lines.push(...diffLines(f.diff, c));
      return lines;
    }
  }
}

/** `root:root`, `root`, `:adm` or '' (owner/group not managed). */
function ownership(f: FileChange): string {
  if (f.owner === undefined && f.group === undefined) return '';
  return `${f.owner ?? ''}${f.group !== undefined ? `:${f.group}` : ''}`;
}

function metaText(f: FileChange): string {
  const m = f.meta ?? {};
  const parts: string[] = [];
  if (m.mode) parts.push(`mode ${m.mode[0]} -> ${m.mode[1]}`);
  if (m.owner) parts.push(`owner ${m.owner[0]} -> ${m.owner[1]}`);
  if (m.group) parts.push(`group ${m.group[0]} -> ${m.group[1]}`);
  return parts.join(', ');
}

function diffLines(diff: string, c: ChalkInstance): string[] {
  const lines = diff.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map((raw) => {
    const l = visible(raw);
    const coloured = l.startsWith('---') || l.startsWith('+++') ? c.bold(l) : l.startsWith('@@') ? c.cyan(l) : l.startsWith('+') ? c.green(l) : l.startsWith('-') ? c.red(l) : l.startsWith('\\') ? c.dim(l) : l;
    return `    ${coloured}`;
  });
}

/** Control characters (ESC, CR, ...) in caret notation (^[, ^M); tabs kept. */
function visible(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, (ch) => (ch === '\u007f' ? '^?' : `^${String.fromCharCode(ch.charCodeAt(0) + 64)}`));
}
