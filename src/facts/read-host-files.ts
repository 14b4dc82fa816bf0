/**
 * The probe without a command: a host's facts read over SFTP, for the common case of a fleet vdeploy
 * has probed before. A command costs the host a login shell (130 ms of CPU on our test hosts, for
 * root's rc files) plus a Python start; at 32 hosts on 2 cores that was 3 of a no-op deploy's 4.3 s.
 * An `internal-sftp` session starts neither.
 *
 * It reads what the probe script's venv reader (vdeploy_remote/venv_facts.py) reads, the same way
 * (site-packages as the venv's pyvenv.cfg names it, `.pth` directories, METADATA headers, the
 * history file, the wheel cache listing), and takes the interpreter facts from vdeploy's cache when
 * their quick identity (quick-identity.ts) still matches.
 * It answers only what it can answer exactly like the script: anything unusual (a missing venv,
 * something that is not a venv, a half-made venv (`.vdeploy/creating`), `.egg-info`, pip's `~name`
 * stash folders, an unreadable file, an interpreter not in the cache) gives null, and the caller runs the probe script, which also words the errors.
 */
import { posix } from 'node:path';
import { normalizeName } from '../requirements/names.js';
import { isDirectory, isRegularFile, isSymlink, RemoteFileError, type RemoteFiles } from '../remote/remote-files.js';
import type { LearnedInterpreter } from './probe-output.js';
import { readQuickIdentity, readQuickSystem } from './quick-identity.js';
import type { HostFacts, InstalledPackage, InterpreterFacts, VenvFacts } from './types.js';

export interface HostFilesRequest {
  cacheDir: string;
  /** releases: the path is an app root of the releases layout (venv_facts.inspect_root). */
  venvs: Array<{ path: string; releases?: boolean }>;
}

/** Thrown inside to give up: the probe script answers instead. */
class NeedsScript extends Error {}

/** The host's facts, or null when only the probe script can tell. Never throws for what it finds on the host. */
export async function readHostFiles(files: RemoteFiles, request: HostFilesRequest, known: readonly LearnedInterpreter[]): Promise<HostFacts | null> {
  const started = performance.now();
  try {
    const interpreters = interpreterReader(files, known);
    const [cache, venvs] = await Promise.all([
      readCache(files, request.cacheDir),
      Promise.all(request.venvs.map((v) => (v.releases ? readRoot(files, v.path, interpreters) : readVenv(files, v.path, interpreters)))),
    ]);
    return { ...cache, venvs, readBy: 'files', interpretersRun: 0, probeMs: Math.round(performance.now() - started) };
  } catch (err) {
    if (err instanceof NeedsScript || err instanceof RemoteFileError) return null;
    throw err;
  }
}

/** Facts by interpreter realpath, each checked once per host. */
function interpreterReader(files: RemoteFiles, known: readonly LearnedInterpreter[]): (real: string) => Promise<InterpreterFacts> {
  let system: Promise<unknown[]> | undefined;
  const checked = new Map<string, Promise<InterpreterFacts>>();
  return (real) => {
    let facts = checked.get(real);
    if (facts === undefined) {
      facts = (async () => {
        const entry = known.find((k) => k.python === real && k.quick !== undefined);
        if (entry === undefined) throw new NeedsScript();
        const quick = await readQuickIdentity(files, real, entry.files, await (system ??= readQuickSystem(files)));
        if (quick !== entry.quick) throw new NeedsScript();
        return entry.facts;
      })();
      checked.set(real, facts);
    }
    return facts;
  };
}

/**
 * list_cache. `~` is the login user's home, where an SFTP session starts; SFTP gives it with symlinks
 * resolved, where the script takes $HOME as it is: the same directory, perhaps spelled differently.
 */
async function readCache(files: RemoteFiles, configured: string): Promise<{ cacheDir: string; cachedWheels: string[] }> {
  let cacheDir: string;
  if (configured === '~' || configured.startsWith('~/')) cacheDir = posix.join(await files.realpath('.'), configured.slice(1));
  else if (configured.startsWith('/')) cacheDir = posix.normalize(configured);
  else throw new NeedsScript();
  cacheDir = cacheDir.length > 1 ? cacheDir.replace(/\/+$/, '') : cacheDir;
  // SFTP says "no such file" also when a directory on the way is a file, an error for the script.
  const entries = await files.readdir(cacheDir);
  const wheels = await Promise.all(
    entries.map(async ({ name, attrs }) => {
      if (!name.endsWith('.whl') || name.startsWith('.')) return null;
      const target = isSymlink(attrs) ? await orMissing(files.stat(posix.join(cacheDir, name))) : attrs;
      return target !== null && isRegularFile(target) ? name : null;
    }),
  );
  return { cacheDir, cachedWheels: sortNames(wheels.filter((w): w is string => w !== null)) };
}

/** inspect_venv, for a healthy venv only. */
async function readVenv(files: RemoteFiles, path: string, interpreterOf: (real: string) => Promise<InterpreterFacts>): Promise<VenvFacts> {
  const [dir, cfg, python, creating] = await Promise.all([
    files.stat(path),
    files.stat(posix.join(path, 'pyvenv.cfg')),
    files.stat(posix.join(path, 'bin', 'python')),
    orMissing(files.stat(posix.join(path, '.vdeploy', 'creating'))),
  ]);
  if (!isDirectory(dir) || !isRegularFile(cfg) || isDirectory(python) || creating !== null) throw new NeedsScript();
  const [config, real, history] = await Promise.all([
    files.readFile(posix.join(path, 'pyvenv.cfg')).then(parseConfig),
    files.realpath(posix.join(path, 'bin', 'python')),
    readHistory(files, path),
  ]);
  const [interpreter, installed] = await Promise.all([interpreterOf(real), readInstalled(files, path, config)]);
  return { path, state: 'venv', interpreter, installed, history };
}

/** A release id (releases.py ID): a UTC time and the history number. */
const RELEASE_ID = /^\d{8}T\d{6}Z-(\d+)$/;

/**
 * inspect_root, for an app root with a live release only: `current` a symlink to releases/<id> as
 * written by a switch, every entry of releases/ named like a release a directory (not a symlink).
 */
async function readRoot(files: RemoteFiles, root: string, interpreterOf: (real: string) => Promise<InterpreterFacts>): Promise<VenvFacts> {
  const [dir, cfg, link, entries, history] = await Promise.all([
    files.stat(root),
    orMissing(files.stat(posix.join(root, 'pyvenv.cfg'))),
    files.readlink(posix.join(root, 'current')),
    files.readdir(posix.join(root, 'releases')),
    readHistory(files, root),
  ]);
  if (!isDirectory(dir) || cfg !== null) throw new NeedsScript();
  const named = entries.filter((e) => RELEASE_ID.test(e.name));
  if (named.some((e) => !isDirectory(e.attrs))) throw new NeedsScript();
  const list = sortNames(named.map((e) => e.name)).sort((a, b) => releaseNumber(a) - releaseNumber(b));
  const parts = posix.normalize(link).split('/');
  const live = parts.length === 2 && parts[0] === 'releases' && list.includes(parts[1]!) ? parts[1]! : null;
  if (live === null) throw new NeedsScript();
  const venv = await readVenv(files, posix.join(root, 'current'), interpreterOf);
  if (venv.state !== 'venv') throw new NeedsScript();
  return { ...venv, path: root, history, releases: { live, list: list.map((id) => ({ id })) } };
}

const releaseNumber = (id: string): number => Number(RELEASE_ID.exec(id)![1]);

async function readHistory(files: RemoteFiles, venv: string): Promise<Array<Record<string, unknown>>> {
  const content = await orMissing(files.readFile(posix.join(venv, '.vdeploy', 'history.jsonl')));
  if (content === null) return [];
  const entries: Array<Record<string, unknown>> = [];
  for (const raw of splitBuffer(content)) {
    let entry: unknown;
    try {
      // ignoreBOM keeps a BOM, which json.loads refuses too.
      entry = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw));
    } catch {
      continue; // a torn or foreign line, skipped as the script skips it
    }
    if (typeof entry === 'object' && entry !== null && !Array.isArray(entry)) entries.push(entry as Record<string, unknown>);
  }
  return entries;
}

/** site_packages + pth_paths + read_installed. */
async function readInstalled(files: RemoteFiles, venv: string, config: Map<string, string>): Promise<InstalledPackage[]> {
  const sites = await sitePackages(files, venv, config);
  const pths = (await Promise.all(sites.map(({ dir }) => pthPaths(files, dir)))).flat();
  const pthReals = await Promise.all(pths.map((d) => files.realpath(d)));
  const directories = [...sites, ...pths.map((dir, i) => ({ dir, real: pthReals[i]! }))];
  const scanned = new Set<string>();
  const listings = await Promise.all(
    directories.map(async ({ dir: directory, real }) => {
      if (scanned.has(real)) return [];
      scanned.add(real);
      const entries = await orMissing(files.readdir(directory));
      if (entries === null) return [];
      const names = sortNames(entries.map((e) => e.name));
      if (names.some((n) => n.endsWith('.egg-info') || n.startsWith('~'))) throw new NeedsScript();
      const metadata = names.filter((n) => n.endsWith('.dist-info'));
      return Promise.all(metadata.map(async (n) => readHeaders(await orMissing(files.readFile(posix.join(directory, n, 'METADATA'))))));
    }),
  );
  const installed: InstalledPackage[] = [];
  const seen = new Set<string>();
  for (const { name, version } of listings.flat()) {
    if (!name || !version) continue;
    const key = normalizeName(name);
    if (seen.has(key)) continue;
    seen.add(key);
    installed.push({ name, key, version });
  }
  return installed;
}

/** The site-packages directories, each with its realpath (read_installed needs it again), first of a realpath only. */
async function sitePackages(files: RemoteFiles, venv: string, config: Map<string, string>): Promise<Array<{ dir: string; real: string }>> {
  const version = config.get('version_info') || config.get('version') || '';
  const wanted = version.split('.').slice(0, 2).join('.');
  const found: string[] = [];
  for (const lib of ['lib64', 'lib']) {
    const base = posix.join(venv, lib);
    const entries = await orMissing(files.readdir(base));
    if (entries === null) continue;
    const names = sortNames(entries.map((e) => e.name).filter((n) => n.startsWith('python') || n.startsWith('pypy')));
    const matching = wanted ? names.filter((n) => [`python${wanted}`, `python${wanted}t`, `pypy${wanted}`].includes(n)) : [];
    const candidates = (matching.length > 0 ? matching : names).map((n) => posix.join(base, n, 'site-packages'));
    const dirs = await Promise.all(candidates.map(async (d) => ((await isDir(files, d)) ? d : null)));
    found.push(...dirs.filter((d): d is string => d !== null));
  }
  const reals = await Promise.all(found.map((d) => files.realpath(d)));
  return found.map((dir, i) => ({ dir, real: reals[i]! })).filter(({ real }, i) => reals.indexOf(real) === i);
}

async function pthPaths(files: RemoteFiles, site: string): Promise<string[]> {
  const names = sortNames((await files.readdir(site)).map((e) => e.name).filter((n) => n.endsWith('.pth') && !n.startsWith('.')));
  const perFile = await Promise.all(
    names.map(async (name) => {
      const content = await orMissing(files.readFile(posix.join(site, name)));
      if (content === null) return [];
      const lines = content.toString('utf-8').split(/\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/);
      const candidates = lines
        .filter((line) => pyStrip(line) !== '' && !line.startsWith('#') && !line.startsWith('import ') && !line.startsWith('import\t'))
        .map((line) => posix.resolve(site, line.replace(PY_SPACE_END, '')));
      const dirs = await Promise.all(candidates.map(async (d) => ((await isDir(files, d)) ? d : null)));
      return dirs.filter((d): d is string => d !== null);
    }),
  );
  return perFile.flat();
}

/** read_headers: the first Name and Version of the header block. */
export function readHeaders(content: Buffer | null): { name: string | null; version: string | null } {
  let name: string | null = null;
  let version: string | null = null;
  if (content === null) return { name, version };
  for (const raw of splitBuffer(content)) {
    const line = raw.toString('utf-8').replace(/[\r\n]+$/, '');
    if (pyStrip(line) === '') break;
    if (line[0] === ' ' || line[0] === '\t') continue;
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = pyStrip(line.slice(0, colon)).toLowerCase();
    const value = pyStrip(line.slice(colon + 1));
    if (key === 'name' && name === null) name = value;
    else if (key === 'version' && version === null) version = value;
    if (name !== null && version !== null) break;
  }
  return { name, version };
}

/** read_config: pyvenv.cfg's `key = value` lines, keys lower-cased. */
export function parseConfig(content: Buffer): Map<string, string> {
  const config = new Map<string, string>();
  for (const raw of splitBuffer(content)) {
    const line = raw.toString('utf-8');
    const eq = line.indexOf('=');
    if (eq >= 0) config.set(pyStrip(line.slice(0, eq)).toLowerCase(), pyStrip(line.slice(eq + 1)));
  }
  return config;
}

/** Python's str.isspace() set, which differs from JS's trim() (U+001C–U+001F and U+0085 yes, U+FEFF no). */
const PY_SPACE = '[\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const PY_SPACE_START = new RegExp(`^${PY_SPACE}+`);
const PY_SPACE_END = new RegExp(`${PY_SPACE}+$`);
const pyStrip = (text: string): string => text.replace(PY_SPACE_START, '').replace(PY_SPACE_END, '');

/** Lines as Python iterates a binary file: split after each b'\n'. */
function splitBuffer(content: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  while (start < content.length) {
    const nl = content.indexOf(0x0a, start);
    const end = nl < 0 ? content.length : nl + 1;
    lines.push(content.subarray(start, end));
    start = end;
  }
  return lines;
}

/**
 * Python's sorted() orders by code point, JS's sort by UTF-16 unit: they agree below U+10000. Names
 * beyond that are left to the script rather than risk another order (which decides the first of two
 * distributions with one name).
 */
function sortNames(names: string[]): string[] {
  if (names.some((n) => /[\uD800-\uDFFF]/.test(n))) throw new NeedsScript();
  return names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

async function isDir(files: RemoteFiles, path: string): Promise<boolean> {
  const attrs = await orMissing(files.stat(path));
  return attrs !== null && isDirectory(attrs);
}

/** The value, or null when the path does not exist; other failures propagate (and send the caller to the script). */
async function orMissing<T>(work: Promise<T>): Promise<T | null> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof RemoteFileError && err.missing) return null;
    throw err;
  }
}
