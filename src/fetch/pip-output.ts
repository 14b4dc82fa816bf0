/**
 * Reading pip's human output, line by line, for progress and for why a download failed. pip has no
 * machine-readable download log; these are the lines it has printed the same way since pip 20
 * (checked against 21–24 in test/unit/fetch-pip-output.test.ts). A line that matches nothing is kept
 * for the error message and otherwise ignored.
 */
import { basename } from 'node:path';

export type PipLine =
  /** pip starts on a requirement (top-level or a dependency). */
  | { kind: 'collecting'; requirement: string }
  /** A file is now in the download directory (downloaded, copied from --find-links, or already there). */
  | { kind: 'saved'; filename: string }
  /** No candidate at all for a requirement: no wheel for the target's platform, or none of that version. */
  | { kind: 'no-version'; requirement: string; name: string; neededBy?: string; versions: string[] }
  /** Versions pip skipped for Requires-Python: "5.2.17 Requires-Python >=3.10; …". */
  | { kind: 'python-mismatch'; detail: string }
  /** pip's `WARNING:` lines: an index it cannot read, retries after network errors, … */
  | { kind: 'warning'; message: string }
  /** Any other `ERROR:` line. */
  | { kind: 'error'; message: string }
  /** The wrapper could not set the target's marker environment (pip-command.ts). */
  | { kind: 'markers-not-set'; why: string };

const NO_VERSION = /^ERROR: Could not find a version that satisfies the requirement (.+?)(?: \(from ([^()]*)\))? \(from versions: ([^)]*)\)\s*$/;
const NO_MATCH = /^ERROR: No matching distribution found for /;
const PYTHON_MISMATCH = /^ERROR: Ignored the following versions that require a different python version: (.*)$/;
const COLLECTING = /^Collecting (.+?)(?: \(from .*\))?\s*$/;
/** pip takes a file from --find-links (or a file: URL) without "Collecting" first. */
const PROCESSING = /^Processing (\S+\.whl)\s*$/;
const SAVED = /^(?:Saved|File was already downloaded) (.+?)\s*$/;
/**
 * Warnings about pip itself, not about this download; and a project's page missing from a file://
 * index, which is only that index not having the project (an HTTP index's 404, which pip keeps quiet).
 */
const NOISE = /^WARNING: (You are using pip version|There was an error checking the latest version|The directory .* is not owned|Location 'file:[^']*\/' is ignored: it is neither a file nor a directory)/;
const MARKERS = /^vdeploy-fetch: markers not set: (.*)$/;

/** What one line of pip's stdout or stderr means to fetch; null for the rest. */
export function parsePipLine(raw: string): PipLine | null {
  const line = raw.trimEnd();
  let m: RegExpMatchArray | null;
  if ((m = line.match(COLLECTING))) return { kind: 'collecting', requirement: m[1]! };
  if ((m = line.match(PROCESSING))) return { kind: 'collecting', requirement: wheelNameVersion(basename(m[1]!)) };
  if ((m = line.match(SAVED))) return { kind: 'saved', filename: basename(m[1]!) };
  if ((m = line.match(NO_VERSION))) {
    const versions = m[3] === 'none' ? [] : m[3]!.split(',').map((v) => v.trim()).filter(Boolean);
    return { kind: 'no-version', requirement: m[1]!, name: requirementName(m[1]!), ...(m[2] ? { neededBy: m[2] } : {}), versions };
  }
  if ((m = line.match(PYTHON_MISMATCH))) return { kind: 'python-mismatch', detail: m[1]! };
  if (NO_MATCH.test(line)) return null; // always follows NO_VERSION, which says it all
  if ((m = line.match(MARKERS))) return { kind: 'markers-not-set', why: m[1]! };
  if (line.startsWith('WARNING: ') && !NOISE.test(line)) return { kind: 'warning', message: line.slice('WARNING: '.length) };
  if (line.startsWith('ERROR: ')) return { kind: 'error', message: line.slice('ERROR: '.length) };
  return null;
}

/** The project name a requirement starts with (`Django[argon2]>=4; …` → `Django`). */
export function requirementName(requirement: string): string {
  return requirement.match(/^\s*([A-Za-z0-9][A-Za-z0-9._-]*)/)?.[1] ?? requirement.trim();
}

/** `Django-5.2.17-py3-none-any.whl` → `Django==5.2.17`: what a Processing line is about. */
function wheelNameVersion(filename: string): string {
  const [name, version] = filename.split('-');
  return version === undefined ? filename : `${name}==${version}`;
}

/** Splits a stream of chunks into lines for `onLine`; call the result with no argument at the end. */
export function lineSplitter(onLine: (line: string) => void): (chunk?: string) => void {
  let rest = '';
  return (chunk) => {
    if (chunk === undefined) {
      if (rest) onLine(rest);
      rest = '';
      return;
    }
    const parts = (rest + chunk).split(/\r?\n|\r/);
    rest = parts.pop()!;
    for (const part of parts) onLine(part);
  };
}

/** One package pip resolved in a `--dry-run --report` run. */
export interface ReportedWheel {
  name: string;
  version: string;
  /** The file pip would download (the URL's last segment). */
  filename: string;
  url: string;
  sha256?: string;
}

/** The `install` list of pip's installation report (format version 0 and 1); throws on anything else. */
export function parsePipReport(text: string): ReportedWheel[] {
  const report = JSON.parse(text) as { install?: unknown };
  if (!Array.isArray(report.install)) throw new Error('no "install" list in pip\'s report');
  return report.install.map((item: unknown, i: number): ReportedWheel => {
    const entry = item as {
      metadata?: { name?: unknown; version?: unknown };
      download_info?: { url?: unknown; archive_info?: { hash?: unknown; hashes?: { sha256?: unknown } } };
    };
    const name = entry.metadata?.name;
    const version = entry.metadata?.version;
    const url = entry.download_info?.url;
    if (typeof name !== 'string' || typeof version !== 'string' || typeof url !== 'string') {
      throw new Error(`install[${i}] of pip's report has no metadata name/version or download URL`);
    }
    const archive = entry.download_info?.archive_info;
    const legacy = typeof archive?.hash === 'string' && archive.hash.startsWith('sha256=') ? archive.hash.slice(7) : undefined;
    const sha256 = typeof archive?.hashes?.sha256 === 'string' ? archive.hashes.sha256 : legacy;
    const filename = decodeURIComponent(new URL(url).pathname.split('/').pop() ?? '');
    return { name, version, filename, url, ...(sha256 !== undefined ? { sha256 } : {}) };
  });
}
