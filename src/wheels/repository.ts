/**
 * The wheel repository: a directory of validated wheels plus its release_log. Adding validates first,
 * then copies and logs under the repository lock; listing and resolution read the release lines.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compare } from '@renovatebot/pep440';
import { VdeployError } from '../errors.js';
import {
  appendReleaseLog,
  formatReleaseLine,
  readReleaseLog,
  releaseLogPath,
  type AppendResult,
  type ReleaseLogEntry,
} from './release-log.js';
import { withRepoLock, type RepoLockWait } from './repo-lock.js';
import { removeStaleTemps, tempFileName } from './temp-files.js';
import { hashFile, validateWheel, type ValidatedWheel } from './validate-wheel.js';
import { normalizeName, parseWheelFilename, type WheelFilename } from './wheel-filename.js';

export interface AddWheelResult {
  file: string;
  status: 'added' | 'already-present' | 'replaced' | 'refused';
  filename?: string;
  name?: string;
  version?: string;
  sha256?: string;
  /** The git commit recorded in its release line (AddWheelOptions.commit), when added. */
  commit?: string;
  /** Why it was refused: one line naming the file. */
  reason?: string;
  hint?: string;
  warnings: string[];
}

export interface AddWheelOptions {
  /** Replace a wheel of the same filename whose bytes differ. */
  force?: boolean;
  /**
   * The git commit the wheels were built from (`vdeploy build`), recorded in their release lines.
   * A wheel already present keeps its line (and so the commit that first brought these bytes).
   */
  commit?: string;
  /** Clock for the release lines (tests). */
  now?: () => Date;
  /** What add-wheel waits for, and what it cleaned up: for the CLI to say. */
  onEvent?: (event: AddWheelEvent) => void;
}

export type AddWheelEvent =
  /** Another process holds the repository lock: this one waits for it. */
  | { kind: 'lock-wait'; wait: RepoLockWait }
  /** A temporary file left by an add-wheel that was killed mid-copy, removed. */
  | { kind: 'temp-removed'; file: string; pid: number };

export interface ReleasedWheel {
  /** As the release line spells it. */
  name: string;
  normalizedName: string;
  version: string;
  filename: string;
  sha256?: string;
  /** The git commit it was built from (release lines written by `vdeploy build`). */
  commit?: string;
  addedAt: string;
  lineNumber: number;
  wheel: WheelFilename;
}

export interface WheelVersion {
  version: string;
  filename: string;
  addedAt: string;
  sha256?: string;
  /** The git commit it was built from, when `vdeploy build` added it. */
  commit?: string;
  /** The wheel file is in the repository directory. */
  present: boolean;
}

export interface PackageListing {
  name: string;
  /** The newest version (versions[0].version). */
  newest: string;
  /** Newest first (PEP 440 order). */
  versions: WheelVersion[];
}

export interface WheelListing {
  packages: PackageListing[];
  warnings: string[];
}

export async function addWheels(repoDir: string, files: readonly string[], options: AddWheelOptions = {}): Promise<AddWheelResult[]> {
  const now = options.now ?? (() => new Date());
  // Validate everything before touching the repository: a bad wheel must leave no trace.
  const results: AddWheelResult[] = [];
  const valid: Array<{ result: AddWheelResult; wheel: ValidatedWheel }> = [];
  for (const file of files) {
    try {
      const wheel = await validateWheel(file);
      const result: AddWheelResult = { file, status: 'refused', ...describe(wheel), warnings: [] };
      results.push(result);
      valid.push({ result, wheel });
    } catch (err) {
      results.push(refusal(file, err));
    }
  }
  if (valid.length === 0) return results;

  await createRepository(repoDir);
  const onWait = options.onEvent && ((wait: RepoLockWait) => options.onEvent?.({ kind: 'lock-wait', wait }));
  await withRepoLock(repoDir, async () => {
    await removeStaleTemps(repoDir, (file, pid) => options.onEvent?.({ kind: 'temp-removed', file, pid }));
    const state = await loadState(repoDir);
    for (const { result, wheel } of valid) {
      Object.assign(result, await addOne(repoDir, wheel, state, options, now));
    }
  }, onWait ? { onWait } : {});
  return results;
}

export async function listWheels(repoDir: string): Promise<WheelListing> {
  const warnings: string[] = [];
  const log = await readReleaseLog(repoDir);
  if (log.tornTail)
    warnings.push(
      `${releaseLogPath(repoDir)}:${log.tornTail.lineNumber}: torn last line (an interrupted write), ignored; the next add-wheel moves it aside`,
    );
  const wheels = latestReleases(log.entries);
  const names = await readdir(repoDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[]; // no repository yet: an empty listing
    throw new VdeployError(`${repoDir}: cannot list the wheel repository (${err.message})`, { hint: 'Check the repository permissions.' });
  });
  const onDisk = new Set(names.filter((f) => f.endsWith('.whl')));
  const packages = new Map<string, PackageListing>();
  for (const w of wheels) {
    const pkg = packages.get(w.normalizedName) ?? { name: w.name, newest: '', versions: [] };
    pkg.name = w.name; // the latest release line's spelling
    pkg.versions.push({
      version: w.version,
      filename: w.filename,
      addedAt: w.addedAt,
      ...(w.sha256 === undefined ? {} : { sha256: w.sha256 }),
      ...(w.commit === undefined ? {} : { commit: w.commit }),
      present: onDisk.has(w.filename),
    });
    packages.set(w.normalizedName, pkg);
  }
  for (const pkg of packages.values()) {
    pkg.versions.sort((a, b) => compare(b.version, a.version) || a.filename.localeCompare(b.filename));
    pkg.newest = pkg.versions[0]!.version;
  }
  const logged = new Set(wheels.map((w) => w.filename));
  for (const f of [...onDisk].sort())
    if (!logged.has(f)) warnings.push(`${join(repoDir, f)} has no release line in release_log; add it with add-wheel to record it`);
  return {
    packages: [...packages.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, pkg]) => pkg),
    warnings,
  };
}

/** Every released wheel (the latest release line per filename wins), in log order. */
export async function releasedWheels(repoDir: string): Promise<ReleasedWheel[]> {
  return latestReleases((await readReleaseLog(repoDir)).entries);
}

// ---- internals ----

interface RepoState {
  byFilename: Map<string, ReleasedWheel>;
}

async function loadState(repoDir: string): Promise<RepoState> {
  return { byFilename: new Map(latestReleases((await readReleaseLog(repoDir)).entries).map((w) => [w.filename, w])) };
}

function latestReleases(entries: readonly ReleaseLogEntry[]): ReleasedWheel[] {
  const byFilename = new Map<string, ReleasedWheel>();
  for (const e of entries) {
    if (e.kind !== 'release') continue;
    byFilename.delete(e.filename); // re-insert so a superseding line moves to its place in the log
    byFilename.set(e.filename, {
      name: e.name,
      normalizedName: normalizeName(e.name),
      version: e.version,
      filename: e.filename,
      ...(e.sha256 === undefined ? {} : { sha256: e.sha256 }),
      ...(e.commit === undefined ? {} : { commit: e.commit }),
      addedAt: e.time,
      lineNumber: e.lineNumber,
      wheel: parseWheelFilename(e.filename),
    });
  }
  return [...byFilename.values()];
}

async function addOne(
  repoDir: string,
  wheel: ValidatedWheel,
  state: RepoState,
  options: AddWheelOptions,
  now: () => Date,
): Promise<Partial<AddWheelResult>> {
  const { force = false, commit } = options;
  const dest = join(repoDir, wheel.filename);
  const onDisk = await hashFile(dest).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new VdeployError(`${dest}: cannot read (${err.message})`, { hint: 'Check the repository permissions.' });
  });
  const logged = state.byFilename.get(wheel.filename);
  // What the repository says this filename is: the file's bytes, else the last release line's hash.
  const knownSha = onDisk?.sha256 ?? logged?.sha256;
  const loggedMatches = logged !== undefined && (logged.sha256 === undefined || logged.sha256 === wheel.sha256);

  if (onDisk?.sha256 === wheel.sha256 && loggedMatches) return { status: 'already-present', ...(logged.commit ? { commit: logged.commit } : {}) };
  if (knownSha !== undefined && knownSha !== wheel.sha256 && !force) {
    return {
      status: 'refused',
      reason: `${wheel.path}: differs from the wheel already in the repository as ${wheel.filename}; pass --force to replace it`,
      hint: 'A rebuilt wheel should get a new version; use --force only if the one in the repository is wrong.',
    };
  }
  const warnings = olderVersionWarning(wheel, state);
  // A file that already has these bytes is only missing its release line (a crash between copy and log).
  if (onDisk?.sha256 !== wheel.sha256 && !(await copyIntoRepository(wheel, dest))) {
    return {
      status: 'refused',
      reason: `${wheel.path}: changed while it was being added`,
      hint: 'Wait for whatever writes it to finish, then add it again.',
    };
  }
  const time = now().toISOString();
  const line = formatReleaseLine({ name: wheel.name, version: wheel.version, filename: wheel.filename, time, sha256: wheel.sha256, ...(commit ? { commit } : {}) });
  warnings.push(...tornTailWarning(await appendReleaseLog(repoDir, [line])));
  state.byFilename.delete(wheel.filename);
  state.byFilename.set(wheel.filename, {
    name: wheel.name,
    normalizedName: normalizeName(wheel.name),
    version: wheel.version,
    filename: wheel.filename,
    sha256: wheel.sha256,
    ...(commit ? { commit } : {}),
    addedAt: time,
    lineNumber: 0, // not re-read; nothing in addWheels needs it
    wheel: wheel.wheel,
  });
  const replaced = [onDisk?.sha256, logged?.sha256].some((sha) => sha !== undefined && sha !== wheel.sha256);
  return { status: replaced ? 'replaced' : 'added', ...(commit ? { commit } : {}), warnings };
}

/** Older than what is already released: allowed (rollbacks need old versions) but worth a word. */
function olderVersionWarning(wheel: ValidatedWheel, state: RepoState): string[] {
  const name = normalizeName(wheel.name);
  const versions = [...state.byFilename.values()].filter((w) => w.normalizedName === name).map((w) => w.version);
  const newest = versions.sort((a, b) => compare(b, a))[0];
  if (newest === undefined || compare(wheel.version, newest) >= 0) return [];
  return [`${wheel.name} ${wheel.version} is older than ${newest}, already in the repository (kept: rollbacks need old versions)`];
}

function tornTailWarning(appended: AppendResult): string[] {
  if (!appended.repairedTornTail) return [];
  return [`release_log ended in a torn line (an interrupted write); moved it to ${appended.repairedTornTail.savedTo}`];
}

/**
 * Copies through a temp file (fsynced, then renamed) so a wheel never exists half-written under its
 * final name. The bytes are re-hashed on the way: false if the source changed since validation.
 */
async function copyIntoRepository(wheel: ValidatedWheel, dest: string): Promise<boolean> {
  const temp = join(dirname(dest), tempFileName(wheel.filename));
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(createReadStream(wheel.path), tap, createWriteStream(temp, { flags: 'wx', mode: 0o644 }));
    if (hash.digest('hex') !== wheel.sha256) {
      await unlink(temp);
      return false;
    }
    await syncPath(temp);
    await rename(temp, dest);
  } catch (err) {
    await unlink(temp).catch(() => {});
    throw err;
  }
  await syncPath(dirname(dest)); // make the rename itself durable
  return true;
}

async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function createRepository(repoDir: string): Promise<void> {
  try {
    await mkdir(repoDir, { recursive: true });
    if (!(await stat(repoDir)).isDirectory()) throw new Error('not a directory');
    // 'a' creates an empty log without touching an existing one.
    await (await open(releaseLogPath(repoDir), 'a')).close();
  } catch (err) {
    throw new VdeployError(`${repoDir}: cannot create the wheel repository (${(err as Error).message})`, {
      hint: 'Pass --repo with a writable directory, or fix the `wheels` path in the deployfile.',
    });
  }
}

function describe(wheel: ValidatedWheel): Pick<AddWheelResult, 'filename' | 'name' | 'version' | 'sha256'> {
  return { filename: wheel.filename, name: wheel.name, version: wheel.version, sha256: wheel.sha256 };
}

function refusal(file: string, err: unknown): AddWheelResult {
  if (err instanceof VdeployError)
    return { file, status: 'refused', reason: err.message, ...(err.hint ? { hint: err.hint } : {}), warnings: [] };
  return { file, status: 'refused', reason: `${file}: ${(err as Error).message}`, warnings: [] };
}
