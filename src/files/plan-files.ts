/**
 * A host's file plan (docs/files.md), pure: the desired files against what the host has. Each file
 * is created, updated (with a unified diff unless secret, binary or too big), has only its owner,
 * group or mode changed, is unchanged, or is blocked (something that is not a regular file is there).
 * Handlers: those an earlier run left pending first, then those a changed file triggers, each once,
 * in declared order. applyFilesRequest turns the plan into the request files.py applies.
 */
import { createTwoFilesPatch } from 'diff';
import type { ApplyFilesRequest, DesiredFile, FileChange, FileFact, FilesPlan, HostFileFacts, HostFiles } from './types.js';

/** Run before the other handlers when a unit file under systemd/system/ changed. */
export const DAEMON_RELOAD = 'systemctl daemon-reload';

/** Desired content larger than this is not diffed (the host sends its side only up to the same size). */
export const MAX_DIFF_BYTES = 256 * 1024;

const CHANGES: ReadonlySet<FileChange['action']> = new Set(['create', 'update', 'metadata']);

export function planHostFiles(desired: HostFiles, facts: HostFileFacts, opts: { prune: boolean }): FilesPlan {
  const factOf = new Map(facts.files.map((f) => [f.path, f]));
  const files = desired.files.map((d) => fileChange(d, factOf.get(d.dest) ?? { path: d.dest, state: 'missing' }));
  const wanted = new Set(desired.files.map((d) => d.dest));
  const orphans = Object.keys(facts.managed)
    .filter((p) => !wanted.has(p))
    .sort();
  const handlers = [...facts.pending];
  desired.files.forEach((d, i) => {
    if (!CHANGES.has(files[i]!.action)) return;
    for (const h of d.onChange) if (!handlers.includes(h)) handlers.push(h);
  });
  const isUnit = (p: string) => p.includes('/systemd/system/');
  const daemonReload =
    files.some((f) => (f.action === 'create' || f.action === 'update') && isUnit(f.dest)) || (opts.prune && orphans.some(isUnit));
  const blocked = files.filter((f) => f.action === 'blocked');
  return {
    sudo: desired.sudo,
    ...(desired.stateDir !== undefined ? { stateDir: desired.stateDir } : {}),
    files,
    orphans,
    prune: opts.prune,
    pending: [...facts.pending],
    handlers,
    daemonReload,
    ...(blocked.length > 0 ? { error: blockedError(blocked) } : {}),
  };
}

function fileChange(d: DesiredFile, fact: FileFact): FileChange {
  const base = {
    dest: d.dest,
    source: d.source,
    secret: d.secret,
    sha256: d.sha256,
    mode: octal(d.mode),
    ...(d.owner !== undefined ? { owner: d.owner } : {}),
    ...(d.group !== undefined ? { group: d.group } : {}),
  };
  if (fact.state === 'other') {
    return { ...base, action: 'blocked', message: `${d.dest} on the host is not a regular file (a directory, symlink or device): vdeploy does not write through or over it` };
  }
  if (fact.state === 'missing') return { ...base, action: 'create' };
  const meta = metaChanges(d, fact);
  if (fact.sha256 !== d.sha256) return { ...base, action: 'update', ...contentDiff(d, fact), ...(meta ? { meta } : {}) };
  return meta ? { ...base, action: 'metadata', meta } : { ...base, action: 'unchanged' };
}

/** Owner and group count only when the entry sets them (absent: not managed). */
function metaChanges(d: DesiredFile, fact: FileFact): FileChange['meta'] | undefined {
  const meta: NonNullable<FileChange['meta']> = {};
  if (fact.mode !== d.mode) meta.mode = [fact.mode === undefined ? '?' : octal(fact.mode), octal(d.mode)];
  if (d.owner !== undefined && fact.owner !== d.owner) meta.owner = [fact.owner ?? '?', d.owner];
  if (d.group !== undefined && fact.group !== d.group) meta.group = [fact.group ?? '?', d.group];
  return Object.keys(meta).length > 0 ? meta : undefined;
}

/** `0644` for 0o644. */
export function octal(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}

function contentDiff(d: DesiredFile, fact: FileFact): Pick<FileChange, 'diff' | 'noDiff'> {
  if (d.secret) return { noDiff: 'secret' };
  if (fact.content === undefined || d.content.length > MAX_DIFF_BYTES) return { noDiff: 'too big' };
  const now = Buffer.from(fact.content, 'base64');
  const before = text(now);
  const after = text(d.content);
  if (before === undefined || after === undefined) return { noDiff: 'binary' };
  const patch = createTwoFilesPatch(`${d.dest} (host)`, `${d.dest} (repository)`, before, after, undefined, undefined, { context: 3 });
  // The package starts with a line of '=' (a leftover of `Index:` headers); the diff starts at `---`.
  return { diff: patch.slice(patch.indexOf('--- ')) };
}

/** The content as text, or undefined when it is binary (a NUL byte, or not UTF-8). */
function text(bytes: Buffer): string | undefined {
  if (bytes.includes(0)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

function blockedError(blocked: FileChange[]): NonNullable<FilesPlan['error']> {
  const more = blocked.length > 1 ? ` (and ${blocked.length - 1} more: ${blocked.slice(1).map((f) => f.dest).join(', ')})` : '';
  return {
    message: `${blocked[0]!.message}${more}`,
    hint: 'remove or move what is there on the host, or change the dest in the deployfile',
  };
}

/**
 * The request files.py applies for this plan. Contents come from `desired` (kept beside the plan,
 * never in its JSON). `managed` is the record after the apply: every desired file, plus the orphans
 * that are kept (without --prune-files vdeploy still owns them, and lists them next time).
 */
export function applyFilesRequest(plan: FilesPlan, desired: HostFiles, facts: HostFileFacts): ApplyFilesRequest {
  if (plan.error !== undefined) throw new Error(`bug: applyFilesRequest on ${desired.host}, whose file plan has an error (${plan.error.message})`);
  const byDest = new Map(desired.files.map((d) => [d.dest, d]));
  const fileOf = (dest: string) => {
    const d = byDest.get(dest);
    if (d === undefined) throw new Error(`bug: the file plan of ${desired.host} has ${dest}, which is not a desired file`);
    return d;
  };
  const owned = (d: DesiredFile) => ({ ...(d.owner !== undefined ? { owner: d.owner } : {}), ...(d.group !== undefined ? { group: d.group } : {}) });
  const write = plan.files
    .filter((f) => f.action === 'create' || f.action === 'update')
    .map((f) => fileOf(f.dest))
    .map((d) => ({ path: d.dest, content: d.content.toString('base64'), sha256: d.sha256, mode: d.mode, ...owned(d), ...(d.validate !== undefined ? { validate: d.validate } : {}) }));
  const meta = plan.files
    .filter((f) => f.action === 'metadata')
    .map((f) => fileOf(f.dest))
    .map((d) => ({ path: d.dest, mode: d.mode, ...owned(d) }));
  const managed: Record<string, string> = {};
  if (!plan.prune) for (const p of plan.orphans) if (facts.managed[p] !== undefined) managed[p] = facts.managed[p];
  for (const d of desired.files) managed[d.dest] = d.sha256;
  return {
    op: 'apply',
    stateDir: plan.stateDir ?? null,
    host: desired.host,
    write,
    meta,
    remove: plan.prune ? [...plan.orphans] : [],
    handlers: plan.daemonReload ? [DAEMON_RELOAD, ...plan.handlers.filter((h) => h !== DAEMON_RELOAD)] : [...plan.handlers],
    managed,
  };
}
