/**
 * `<repo>/release_log`: the append-only history of the wheel repository, one record a line, in the
 * format of the tool vdeploy replaces (kept byte-compatible so old logs keep working):
 *
 *   release: <name>==<version> <wheel-filename> at <ISO-8601 time>[ sha256=<hex>][ commit=<hex>]
 *   install: <host>:<path>: <wheel-filename> at <time>[ (recovered from history #<n>)]
 *   error: <free text>
 *   aborting: <free text>
 *
 * `commit=` (the git commit `vdeploy build` built the wheel from) is vdeploy's addition, like
 * `sha256=`: optional when reading, so old logs parse unchanged.
 *
 * Callers hold the repository lock (repo-lock.ts) around read-modify-append.
 */
import { constants } from 'node:fs';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { valid } from '@renovatebot/pep440';
import { VdeployError } from '../errors.js';
import { parseWheelFilename } from './wheel-filename.js';

export const RELEASE_LOG = 'release_log';

export type ReleaseLogEntry =
  | {
      kind: 'release';
      lineNumber: number;
      name: string;
      version: string;
      filename: string;
      time: string;
      sha256?: string;
      /** The git commit the wheel was built from (`vdeploy build`): full hex object name. */
      commit?: string;
    }
  | {
      kind: 'install';
      lineNumber: number;
      host: string;
      path: string;
      filename: string;
      time: string;
      /** Written by a later run from the venv's history entry #n (the run that applied it did not record it). */
      recovered?: number;
    }
  | { kind: 'error'; lineNumber: number; text: string }
  | { kind: 'aborting'; lineNumber: number; text: string };

export interface ReleaseLog {
  entries: ReleaseLogEntry[];
  /** A last line without its '\n': a writer died mid-line. Not an entry, not an error. */
  tornTail?: { lineNumber: number; text: string };
}

export interface AppendResult {
  /** Set when a torn last line had to be moved aside before appending. */
  repairedTornTail?: { text: string; savedTo: string };
}

/** Loose ISO-8601: the old tool's Python isoformat() and our toISOString() both fit. */
const TIME_RE = /^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?$/;
const RELEASE_RE = /^release: (\S+)==(\S+) (\S+) at (.+?)(?: sha256=(\S*))?(?: commit=(\S*))?$/;
/** A full git object name: SHA-1 (40 hex) or SHA-256 (64 hex) repositories. */
export const COMMIT_RE = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
const INSTALL_RE = /^install: ([^\s:]+):(.*): (\S+) at (.+?)(?: \(recovered from history #([1-9]\d*)\))?$/;

export function releaseLogPath(repoDir: string): string {
  return join(repoDir, RELEASE_LOG);
}

/** Parses one line (without its '\n'); undefined if it is not a well-formed record. */
export function parseReleaseLogLine(line: string, lineNumber: number): ReleaseLogEntry | undefined {
  let m: RegExpExecArray | null;
  if ((m = RELEASE_RE.exec(line))) {
    const [, name, version, filename, time, sha256, commit] = m as unknown as [string, string, string, string, string, string?, string?];
    if (valid(version) === null || !isWheelFilename(filename) || !TIME_RE.test(time)) return undefined;
    if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) return undefined;
    if (commit !== undefined && !COMMIT_RE.test(commit)) return undefined;
    return {
      kind: 'release',
      lineNumber,
      name,
      version,
      filename,
      time,
      ...(sha256 === undefined ? {} : { sha256 }),
      ...(commit === undefined ? {} : { commit }),
    };
  }
  if ((m = INSTALL_RE.exec(line))) {
    const [, host, path, filename, time, recovered] = m as unknown as [string, string, string, string, string, string?];
    if (path === '' || !isWheelFilename(filename) || !TIME_RE.test(time)) return undefined;
    return { kind: 'install', lineNumber, host, path, filename, time, ...(recovered === undefined ? {} : { recovered: Number(recovered) }) };
  }
  for (const kind of ['error', 'aborting'] as const) {
    if (line === `${kind}:` || line.startsWith(`${kind}: `)) return { kind, lineNumber, text: line.slice(kind.length + 2) };
  }
  return undefined;
}

/** Parses the whole log text; `label` names the file in errors. */
export function parseReleaseLog(text: string, label: string): ReleaseLog {
  const lines = text.split('\n');
  // After the last '\n' there is '' for a complete log, or the torn remains of an interrupted write.
  const tail = lines.pop()!;
  const entries: ReleaseLogEntry[] = [];
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '') continue; // harmless, e.g. a hand edit
    const entry = parseReleaseLogLine(line, i + 1);
    if (!entry) {
      const shown = line.length > 100 ? `${line.slice(0, 100)}…` : line;
      throw new VdeployError(`${label}:${i + 1}: unrecognised line ${JSON.stringify(shown)}`, {
        hint: `Fix or delete line ${i + 1} of ${label} by hand (records are release:, install:, error: or aborting: lines).`,
      });
    }
    entries.push(entry);
  }
  return { entries, ...(tail === '' ? {} : { tornTail: { lineNumber: lines.length + 1, text: tail } }) };
}

/** Reads `<repo>/release_log`; a missing file is an empty log. */
export async function readReleaseLog(repoDir: string): Promise<ReleaseLog> {
  const path = releaseLogPath(repoDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [] };
    throw new VdeployError(`${path}: cannot read (${(err as Error).message})`, { hint: 'Check the repository permissions.' });
  }
  return parseReleaseLog(text, path);
}

/**
 * Appends whole lines (given without '\n'). Each line goes out in ONE write on an O_APPEND fd, so
 * concurrent writers can't interleave inside a line, and a crash leaves at most one torn last line,
 * which the next append first moves aside to `release_log.torn-<time>` (nothing is lost).
 */
export async function appendReleaseLog(repoDir: string, lines: readonly string[]): Promise<AppendResult> {
  const path = releaseLogPath(repoDir);
  for (const [i, line] of lines.entries()) {
    // Refuse to write what readReleaseLog would later reject: that would break every later read.
    if (line.includes('\n') || !parseReleaseLogLine(line, i + 1))
      throw new VdeployError(`refusing to append a malformed release_log line ${JSON.stringify(line.slice(0, 100))}`, {
        hint: 'This is a bug in vdeploy: build lines with the format* functions of release-log.ts.',
      });
  }
  const fd = await open(path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT, 0o644);
  try {
    const result = await repairTornTail(fd, path);
    for (const line of lines) await fd.write(`${line}\n`);
    await fd.sync();
    return result;
  } finally {
    await fd.close();
  }
}

/** If the log doesn't end in '\n', saves the bytes after the last '\n' aside and truncates them off. */
async function repairTornTail(fd: FileHandle, path: string): Promise<AppendResult> {
  const { size } = await fd.stat();
  if (size === 0) return {};
  const keep = await findEndOfLastLine(fd, size);
  if (keep === size) return {};
  const torn = Buffer.alloc(size - keep);
  await fd.read(torn, 0, torn.length, keep);
  const savedTo = `${path}.torn-${new Date().toISOString().replace(/[:.]/g, '')}-${process.pid}`;
  const aside = await open(savedTo, 'wx', 0o644);
  try {
    await aside.write(torn);
    await aside.sync();
  } finally {
    await aside.close();
  }
  await fd.truncate(keep);
  return { repairedTornTail: { text: torn.toString('utf8'), savedTo } };
}

/** Offset just past the last '\n' (0 if none), reading backwards in chunks: the log only grows. */
async function findEndOfLastLine(fd: FileHandle, size: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024);
  for (let end = size; end > 0; ) {
    const start = Math.max(0, end - chunk.length);
    const { bytesRead } = await fd.read(chunk, 0, end - start, start);
    const nl = chunk.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (nl !== -1) return start + nl + 1;
    end = start;
  }
  return 0;
}

// ---- formatters: the only way vdeploy builds lines ----

export function formatReleaseLine(r: { name: string; version: string; filename: string; time: Date | string; sha256?: string; commit?: string }): string {
  const line = `release: ${r.name}==${r.version} ${r.filename} at ${formatTime(r.time)}`;
  const withSha = r.sha256 === undefined ? line : `${line} sha256=${r.sha256}`;
  return r.commit === undefined ? withSha : `${withSha} commit=${r.commit}`;
}

export function formatInstallLine(r: { host: string; path: string; filename: string; time: Date | string; recovered?: number }): string {
  const line = `install: ${r.host}:${r.path}: ${r.filename} at ${formatTime(r.time)}`;
  return r.recovered === undefined ? line : `${line} (recovered from history #${r.recovered})`;
}

export function formatErrorLine(text: string): string {
  return `error: ${oneLine(text)}`;
}

export function formatAbortingLine(text: string): string {
  return `aborting: ${oneLine(text)}`;
}

function formatTime(time: Date | string): string {
  return typeof time === 'string' ? time : time.toISOString();
}

/** Free text must not be able to forge or tear records. */
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

function isWheelFilename(filename: string): boolean {
  try {
    parseWheelFilename(filename);
    return true;
  } catch {
    return false;
  }
}
