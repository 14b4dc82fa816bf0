/**
 * Config files (issue 17, docs/files.md) in plan and deploy: reading a host's facts beside its probe,
 * the host's FilesPlan, and what its apply sends. The desired contents never go into the plan (its
 * --json is printed and may be saved): they stay beside it in a WeakMap keyed by the FilesPlan, so
 * only the plan object the user saw can be applied, with exactly the contents that were compared.
 */
import { hintOf } from '../errors.js';
import type { Connection } from '../remote/connection.js';
import { planHostFiles, applyFilesRequest } from '../files/plan-files.js';
import { readFileFacts } from '../files/read-file-facts.js';
import { filesNeedApply, type ApplyFilesRequest, type FilesPlan, type HostFileFacts, type HostFiles } from '../files/types.js';
import type { HostPlan } from './plan.js';
import type { FilesReport } from './report.js';

interface Kept {
  desired: HostFiles;
  /** What the host had when planned (its record of managed files: the apply's new record starts from it). */
  facts: HostFileFacts;
}

const kept = new WeakMap<FilesPlan, Kept>();

/** The desired files a FilesPlan was made from (undefined for a plan not made by planDeploy, e.g. parsed JSON). */
export function desiredOf(plan: FilesPlan): HostFiles | undefined {
  return kept.get(plan)?.desired;
}

/** The confirmation id of a host's files (`files:host1`), beside the venv ids. */
export function filesId(host: string): string {
  return `files:${host}`;
}

/** Hosts whose file work the user confirmed (or --yes took). */
export function confirmedFiles(host: HostPlan, confirmed: ReadonlySet<string>): boolean {
  return filesNeedApply(host.files) && confirmed.has(filesId(host.name));
}

/** Whether a deployfile's files concern this host at all: read its facts (and its record's orphans). */
export function wantsFacts(desired: HostFiles | undefined, filesInUse: boolean): desired is HostFiles {
  return desired !== undefined && (desired.files.length > 0 || filesInUse);
}

/** Read the host's facts and compare: a FilesPlan, with the error in it when the facts could not be read. */
export async function planFilesOn(conn: Connection, desired: HostFiles, opts: { prune: boolean; signal?: AbortSignal }): Promise<FilesPlan> {
  let facts;
  try {
    facts = await readFileFacts(
      conn,
      {
        ...(desired.stateDir !== undefined ? { stateDir: desired.stateDir } : {}),
        host: desired.host,
        // Secret files: compared by sha256 only, their content never leaves the host.
        files: desired.files.map((f) => ({ path: f.dest, sha256: f.sha256, content: !f.secret })),
      },
      { sudo: desired.sudo, ...(opts.signal ? { signal: opts.signal } : {}) },
    );
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    return failedFilesPlan(desired, opts.prune, `${desired.host}: cannot read its files: ${err instanceof Error ? err.message : String(err)}`, hintOf(err).hint);
  }
  const plan = planHostFiles(desired, facts, { prune: opts.prune });
  kept.set(plan, { desired, facts });
  return plan;
}

/** The FilesPlan of a host whose files could not be planned (not connected, facts unreadable). */
export function failedFilesPlan(desired: HostFiles, prune: boolean, message: string, hint?: string): FilesPlan {
  return {
    sudo: desired.sudo,
    ...(desired.stateDir !== undefined ? { stateDir: desired.stateDir } : {}),
    files: [],
    orphans: [],
    prune,
    pending: [],
    handlers: [],
    daemonReload: false,
    error: { message, ...(hint !== undefined ? { hint } : {}) },
  };
}

/** A host's confirmed file work: its plan, and what host_apply gets for it (its request's `files`). */
export interface FilesWork {
  plan: FilesPlan;
  input: { sudo: boolean; request: ApplyFilesRequest };
}

/** The host's file work (undefined: nothing to do there, or a plan not made by this run's planDeploy). */
export function filesWorkFor(plan: FilesPlan | undefined): FilesWork | undefined {
  if (plan === undefined || !filesNeedApply(plan)) return undefined;
  const k = kept.get(plan);
  if (!k) return undefined;
  return { plan, input: { sudo: plan.sudo, request: applyFilesRequest(plan, k.desired, k.facts) } };
}

/** The `{"files": …}` line of host_apply, as this module reads it (its contract: apply-contract.ts). */
export interface FilesLine {
  files: {
    ok: boolean;
    written: string[];
    meta: string[];
    removed: string[];
    failed: { path?: string | undefined; stage: string; message: string; output?: string | undefined } | null;
    handlers: Array<{ command: string; ok: boolean; exitCode: number | null; ms: number; tail: string }>;
    pending: string[];
    stopped: boolean;
  } | null;
  exitCode: number | null;
  stderrTail?: string | undefined;
  ms: number;
}

/** The host report's `files` from host_apply's answer; a failure's message names the host, the file or handler, and why. */
export function filesReport(host: string, work: FilesWork, line: FilesLine): FilesReport {
  const unchanged = work.plan.files.filter((f) => f.action === 'unchanged').length;
  const r = line.files;
  if (r === null) {
    const why = line.stderrTail?.trim() || `exit code ${line.exitCode}`;
    return { ...notApplied(work, `${host}: the files apply gave no answer: ${why}`), ms: line.ms, ...hintFor(work, line.stderrTail ?? '') };
  }
  const report: FilesReport = {
    ok: r.ok,
    written: r.written,
    meta: r.meta,
    removed: r.removed,
    unchanged,
    handlers: r.handlers,
    pending: r.pending,
    ...(r.stopped ? { stopped: true } : {}),
    ms: line.ms,
  };
  if (r.failed) {
    report.failed = { ...(r.failed.path !== undefined ? { path: r.failed.path } : {}), stage: r.failed.stage, message: r.failed.message, ...(r.failed.output ? { output: r.failed.output } : {}) };
    const where = r.failed.path !== undefined ? `${r.failed.path}: ` : '';
    const output = r.failed.output?.trim() ? `: ${lastLine(r.failed.output)}` : '';
    report.message = `${host}: ${where}${r.failed.stage} failed: ${r.failed.message}${output}`;
    if (r.pending.length > 0) report.hint = `the next deploy runs the pending handlers (${r.pending.join(', ')}) even if no file changes`;
  } else if (r.stopped) {
    report.message = `${host}: files written, then stopped (interrupted) before ${r.pending.length > 0 ? `the handlers ${r.pending.join(', ')}: the next deploy runs them` : 'their handlers'}`;
  } else if (!r.ok) {
    report.message = `${host}: the files apply failed`;
  }
  return report;
}

/** A files apply that never ran (interrupted, --fail-fast, the connection lost): the host's files stand as they were. */
export function notApplied(work: FilesWork, message: string): FilesReport {
  const unchanged = work.plan.files.filter((f) => f.action === 'unchanged').length;
  return { ok: false, written: [], meta: [], removed: [], unchanged, handlers: [], pending: work.plan.pending, message };
}

function hintFor(work: FilesWork, stderr: string): { hint?: string } {
  if (work.input.sudo && /sudo:/.test(stderr)) return { hint: 'let the login user run commands as root without a password: a NOPASSWD rule in /etc/sudoers.d/vdeploy (edit it with visudo -f)' };
  return {};
}

function lastLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).at(-1) ?? '';
}
