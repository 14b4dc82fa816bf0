/**
 * Relocating a virtualenv: rewrite a venv that was built at one path (and maybe on another machine)
 * so that it works at another path, with this machine's interpreter. One core call, the same on this
 * machine (LocalConnection) and on a host (SSH): a fixed Python script
 * (src/remote/python/vdeploy_remote/relocate.py, started as every remote script is: remote-python.ts)
 * does the work where the venv is, and answers with one JSON line (its contract: relocate-contract.ts).
 * docs/relocate.md says what is rewritten. relocate-fleet.ts runs it on a deployfile's venvs.
 */
import { hostname, userInfo } from 'node:os';
import { posix } from 'node:path';
import { ConfigError, lastLines, VdeployError } from '../errors.js';
import type { CommandResult, Connection } from '../remote/connection.js';
import { readAnswer } from '../remote/contracts.js';
import { pythonArgv, pythonStdin } from '../remote/remote-python.js';
import { sudoRefusal } from '../remote/sudo.js';
import { contracts, type RelocateResult, type RelocateScriptRequest } from './relocate-contract.js';

export type { RelocateChange, RelocateChangeKind, RelocateLeftover, RelocateResult } from './relocate-contract.js';

/** Test hook: the script kills itself (SIGKILL) after this many writes. Never set it otherwise. */
export const KILL_AFTER_ENV = 'VDEPLOY_RELOCATE_KILL_AFTER';

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
  /** For the error when sudo refuses: the host's name and the login user (default: the connection's target, "the login user"). */
  host?: string;
  login?: string;
  signal?: AbortSignal;
  /** Default 30 minutes (recompiling a large venv's bytecode on a slow host takes a while). */
  timeoutMs?: number;
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

/** The argv that runs the relocate script for `venv` (stdin: pythonStdin('relocate', request)). */
export function relocateArgv(venv: string, runAs?: string): string[] {
  return pythonArgv('relocate', { venv, ...(runAs ? { runAs } : {}) });
}

/** Rewrites the venv (see RelocateRequest) over `conn`; resolves with what was done, rejects with a VdeployError. */
export async function relocateVenv(conn: Connection, request: RelocateRequest, options: RelocateOptions = {}): Promise<RelocateResult> {
  const args = scriptRequest(request);
  const result = await conn.exec(relocateArgv(request.venv, options.runAs), {
    stdin: pythonStdin('relocate', args),
    nothrow: true,
    timeoutMs: options.timeoutMs ?? 30 * 60_000,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const where = conn.target === 'local' ? request.venv : `${conn.target}:${request.venv}`;
  // The answer is the last line; without one the script never got to answer (no python3, sudo
  // refused, killed, a traceback).
  const last = result.stdout.trimEnd().split('\n').at(-1)!.trim();
  if (!last.startsWith('{')) throw scriptDied(where, result, options, conn.target);
  const { v: _v, fatal, ...done } = readAnswer(contracts['relocate.answer'], result.stdout, { host: conn.target, script: 'relocate' });
  if (fatal) throw new RelocateError(`${where}: ${fatal.message}`, fatal.kind, fatal.hint ? { hint: fatal.hint } : {});
  return done;
}

/** The script's request, after checking what can be checked here (ConfigError: nothing was run). */
function scriptRequest(request: RelocateRequest): Omit<RelocateScriptRequest, 'v'> {
  if (!posix.isAbsolute(request.venv)) {
    throw new ConfigError(`the venv path ${JSON.stringify(request.venv)} is not absolute`, { hint: 'give an absolute path' });
  }
  if (request.newPath === undefined && !request.reinitialize) {
    throw new ConfigError('nothing to do: relocate needs --update-path NEW (or auto), --reinitialize, or both', {
      hint: 'e.g. `vdeploy relocate /srv/app/venv --update-path auto`',
    });
  }
  const newPath = request.newPath === undefined ? null : checkNewPath(request.newPath);
  if (request.oldPath !== undefined && !posix.isAbsolute(request.oldPath)) {
    throw new ConfigError(`--old-path ${JSON.stringify(request.oldPath)} is not absolute`, { hint: 'give the absolute path the venv was built at' });
  }
  return {
    venv: request.venv,
    newPath,
    oldPath: request.oldPath ?? null,
    reinitialize: request.reinitialize ?? false,
    dryRun: request.dryRun ?? false,
    // Written into <venv>/.vdeploy/lock while relocate holds it, as deploy does.
    holder: { user: userInfo().username, host: hostname(), pid: process.pid, startedAt: new Date().toISOString(), command: 'relocate' },
  };
}

function scriptDied(where: string, result: CommandResult, options: RelocateOptions, target: string): VdeployError {
  const { runAs } = options;
  const refused = runAs ? sudoRefusal(result.stderr, { host: options.host ?? target, login: options.login ?? 'the login user', owner: runAs, what: 'the relocate script' }) : undefined;
  if (refused) return new VdeployError(`relocating ${where}: ${refused.message}`, { hint: refused.hint });
  const how = result.signal ? `was killed by ${result.signal}` : `exited with ${result.exitCode}`;
  const tail = lastLines(result.stderr, 5);
  let hint = 'run the same command again: relocate continues where it stopped';
  if (result.exitCode === 127) hint = 'install python3 on that machine (relocate runs a Python script there)';
  return new VdeployError(`relocating ${where}: the relocate script ${how}${tail ? `: ${tail}` : ''}`, { hint });
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
