/**
 * Relocating a virtualenv: rewrite a venv that was built at one path (and maybe on another machine)
 * so that it works at another path, with this machine's interpreter. One core call, the same on this
 * machine (LocalConnection) and on a host (SSH): a fixed Python script (relocate-script.ts) does the
 * work where the venv is, and answers with one JSON object. docs/relocate.md says what is rewritten.
 */
import { hostname, userInfo } from 'node:os';
import { posix } from 'node:path';
import { ConfigError, lastLines, VdeployError } from '../errors.js';
import type { Connection } from '../remote/connection.js';
import { BOOTSTRAP_PY, PICK_PYTHON_SH, RELOCATE_SCRIPT } from './relocate-script.js';

export interface RelocateRequest {
  /** Where the venv is now (absolute). */
  venv: string;
  /** Rewrite the venv to work at this absolute path; 'auto' = where it is now; undefined = no path update. */
  newPath?: string | 'auto';
  /** Where the venv was built; default: read from the venv (bin/activate's VIRTUAL_ENV, the marker). */
  oldPath?: string;
  /** Re-link the venv to this machine's interpreter of the same X.Y first (as `python -m venv --upgrade`). */
  reinitialize?: boolean;
  /** Report what would change, change nothing. */
  dryRun?: boolean;
}

export interface RelocateOptions {
  /** Run the script as this user (`sudo -n -u USER`), for a venv owned by someone else than the login user. */
  runAs?: string;
  signal?: AbortSignal;
  /** Default 30 minutes (recompiling a large venv's bytecode on a slow host takes a while). */
  timeoutMs?: number;
}

export type RelocateChangeKind =
  | 'activate'
  | 'script'
  | 'pyvenv.cfg'
  | 'pth'
  | 'egg-link'
  | 'editable-finder'
  | 'direct-url'
  | 'bytecode'
  | 'symlink'
  | 'interpreter'
  | 'temporary';

export interface RelocateChange {
  /** Relative to the venv (a `__pycache__` directory for kind 'bytecode'). */
  path: string;
  kind: RelocateChangeKind;
  reason: string;
  /** For 'bytecode': how many .pyc files in that directory. */
  files?: number;
}

export interface RelocateLeftover {
  /** Relative to the venv. */
  path: string;
  reason: string;
}

export interface RelocateResult {
  /** The venv's absolute path where it is now. */
  venv: string;
  /** Where it was built (null when the path was not updated). */
  oldPath: string | null;
  newPath: string | null;
  /** Which file the old path was read from ('bin/activate', …); null when given as oldPath. */
  markerSource: string | null;
  /** The venv already said it lives at newPath: nothing was changed. */
  alreadyRelocated: boolean;
  dryRun: boolean;
  /** The interpreter that ran the script, and its version. */
  python: string;
  pythonVersion: string;
  /** With reinitialize: the local interpreter the venv is now linked to, and whether anything changed. */
  reinitialize: { python: string; version: string; xy: string; changed: boolean } | null;
  /** In the order they were (or would be) made. */
  changes: RelocateChange[];
  /** Files that still name the old path and that relocate does not rewrite. */
  leftovers: RelocateLeftover[];
  warnings: string[];
  /** Files that could not be written; when any, the marker was left as it was and a re-run finishes. */
  errors: Array<{ path: string | null; message: string }>;
  /** Everything asked for was done (always true for a dry run without errors). */
  complete: boolean;
}

/** The relocate script refused or could not start (not a venv, no local Python X.Y, bad path). */
export class RelocateError extends VdeployError {
  override readonly exitCode: number;
  readonly kind: 'usage' | 'refused' | 'failed';
  constructor(message: string, kind: 'usage' | 'refused' | 'failed', options: { hint?: string; cause?: unknown } = {}) {
    super(message, options);
    this.kind = kind;
    this.exitCode = kind === 'usage' ? 2 : 1;
  }
}

// Characters the script refuses in a new path (they cannot be quoted into every file that names it).
const UNSAFE_PATH = /['"$`\\\u0000-\u001f\u007f]/;

/** Checks and normalizes the new path; throws ConfigError. 'auto' passes through. */
export function checkNewPath(path: string): string {
  if (path === 'auto') return path;
  if (!posix.isAbsolute(path)) {
    throw new ConfigError(`--update-path ${JSON.stringify(path)} is not an absolute path`, {
      hint: 'give the absolute path the venv will live at, or `auto` for where it is now',
    });
  }
  const bad = UNSAFE_PATH.exec(path);
  if (bad) {
    throw new ConfigError(`--update-path ${JSON.stringify(path)} contains ${JSON.stringify(bad[0])}, which cannot be written safely into activate scripts, shebangs and .pth files`, {
      hint: 'choose a path without quotes, $, backquotes, backslashes or control characters (spaces are fine)',
    });
  }
  const normal = posix.normalize(path).replace(/\/+$/, '');
  if (normal === '') throw new ConfigError('--update-path cannot be /', { hint: 'give the directory the venv will live in' });
  return normal;
}

/** The argv that runs the relocate script for `venv` (stdin carries the arguments and the script). */
export function relocateArgv(venv: string, runAs?: string): string[] {
  return [...(runAs ? ['sudo', '-n', '-u', runAs] : []), 'sh', '-c', PICK_PYTHON_SH, 'vdeploy-relocate', venv, BOOTSTRAP_PY];
}

/** Rewrites the venv (see RelocateRequest) over `conn`; resolves with what was done, rejects with a VdeployError. */
export async function relocateVenv(conn: Connection, request: RelocateRequest, options: RelocateOptions = {}): Promise<RelocateResult> {
  if (!posix.isAbsolute(request.venv)) {
    throw new ConfigError(`the venv path ${JSON.stringify(request.venv)} is not absolute`, { hint: 'give an absolute path' });
  }
  if (request.newPath === undefined && !request.reinitialize) {
    throw new ConfigError('nothing to do: relocate needs --update-path NEW (or auto), --reinitialize, or both', {
      hint: 'e.g. `vdeploy relocate /srv/app/venv --update-path auto`',
    });
  }
  const args = {
    venv: request.venv,
    newPath: request.newPath === undefined ? null : checkNewPath(request.newPath),
    oldPath: request.oldPath ?? null,
    reinitialize: request.reinitialize ?? false,
    dryRun: request.dryRun ?? false,
    // Written into <venv>/.vdeploy/lock while relocate holds it, as deploy does.
    holder: { user: userInfo().username, host: hostname(), pid: process.pid, startedAt: new Date().toISOString(), command: 'relocate' },
  };
  if (args.oldPath !== null && !posix.isAbsolute(args.oldPath)) {
    throw new ConfigError(`--old-path ${JSON.stringify(args.oldPath)} is not absolute`, { hint: 'give the absolute path the venv was built at' });
  }
  const argv = relocateArgv(request.venv, options.runAs);
  const result = await conn.exec(argv, {
    stdin: `${JSON.stringify(args)}\n${RELOCATE_SCRIPT}`,
    nothrow: true,
    timeoutMs: options.timeoutMs ?? 30 * 60_000,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const where = conn.target === 'local' ? request.venv : `${conn.target}:${request.venv}`;
  const parsed = parseOutput(result.stdout);
  if (!parsed) {
    const how = result.signal ? `was killed by ${result.signal}` : `exited with ${result.exitCode}`;
    const tail = lastLines(result.stderr, 5);
    let hint = 'run the same command again: relocate continues where it stopped';
    if (result.exitCode === 127) hint = 'install python3 on that machine (relocate runs a Python script there)';
    else if (options.runAs && /sudo/.test(result.stderr)) {
      hint = `check that the login user may run \`sudo -n -u ${options.runAs} sh\` without a password`;
    }
    throw new VdeployError(`relocating ${where}: the relocate script ${how}${tail ? `: ${tail}` : ''}`, { hint });
  }
  const fatal = (parsed as { fatal?: { message: string; hint: string | null; kind: string } | null }).fatal;
  if (fatal) {
    const kind = fatal.kind === 'usage' || fatal.kind === 'refused' ? fatal.kind : 'failed';
    throw new RelocateError(`${where}: ${fatal.message}`, kind, fatal.hint ? { hint: fatal.hint } : {});
  }
  const { fatal: _fatal, ...rest } = parsed as RelocateResult & { fatal?: unknown };
  return rest;
}

// The script's answer is its last line of output; anything before it is not ours (e.g. a login banner).
function parseOutput(stdout: string): (RelocateResult & { fatal?: unknown }) | undefined {
  const line = stdout.trimEnd().split('\n').at(-1);
  if (!line?.startsWith('{')) return undefined;
  try {
    const value = JSON.parse(line) as unknown;
    if (value && typeof value === 'object' && 'changes' in value && 'leftovers' in value) return value as RelocateResult & { fatal?: unknown };
  } catch {
    // not our JSON
  }
  return undefined;
}

/** Counts for summaries: files rewritten (bytecode counted by .pyc file) and directories of bytecode. */
export function summarize(result: RelocateResult): { files: number; bytecodeFiles: number; bytecodeDirs: number } {
  let files = 0;
  let bytecodeFiles = 0;
  let bytecodeDirs = 0;
  for (const c of result.changes) {
    if (c.kind === 'bytecode') {
      bytecodeFiles += c.files ?? 0;
      bytecodeDirs += 1;
    } else files += 1;
  }
  return { files, bytecodeFiles, bytecodeDirs };
}
