/**
 * The files the repository says each host should have (docs/files.md): every `files` entry that
 * applies to the host, its tree walked, templates rendered for that host, modes and sha256 computed.
 * Runs before any connection, so a missing source, a template error or two entries writing one path
 * stop the command with a ConfigError (exit 2) and nothing is changed anywhere.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join, posix, relative, sep } from 'node:path';
import type { ResolvedConfig, ResolvedFileEntry, ResolvedHost, ResolvedTopFileEntry } from '../config/resolve-config.js';
import { ConfigError } from '../errors.js';
import { renderTemplate, TemplateError, templateText } from './templates.js';
import type { DesiredFile, HostFiles } from './types.js';

/** One regular file of an entry's source, read once and shared by every host. */
interface SourceFile {
  /** Absolute local path. */
  path: string;
  /** Path below the entry's src ('' for a single-file entry), with '/' separators. */
  rel: string;
  executable: boolean;
  bytes: Buffer;
}

/** Sources read so far, by entry: rendering for many hosts reads each tree once. */
type SourceCache = Map<ResolvedFileEntry, Promise<SourceFile[]>>;

export async function desiredFiles(config: ResolvedConfig, host: ResolvedHost, cache: SourceCache = new Map()): Promise<HostFiles> {
  const entries = entriesFor(config, host);
  const byDest = new Map<string, DesiredFile>();
  for (const entry of entries) {
    for (const file of await entryFiles(config, host, entry, cache)) {
      const first = byDest.get(file.dest);
      if (first !== undefined) {
        throw new ConfigError(`${first.entry} (${first.source}) and ${file.entry} (${file.source}) both write ${file.dest} on ${host.name}`, {
          hint:
            first.entry === file.entry
              ? 'a template loses its .j2 in dest: keep only one of the two files'
              : 'a path on a host can come from one entry only: change one dest, or narrow the hosts/roles of one entry',
        });
      }
      byDest.set(file.dest, file);
    }
  }
  return {
    host: host.name,
    sudo: (host.sudo || entries.some((e) => e.sudo)) && host.user !== 'root',
    ...(host.stateDir !== undefined ? { stateDir: host.stateDir } : {}),
    files: [...byDest.values()],
  };
}

/** desiredFiles for each host (by name), every source tree read once. */
export async function desiredFilesForHosts(config: ResolvedConfig, hosts: readonly ResolvedHost[]): Promise<Map<string, HostFiles>> {
  const cache: SourceCache = new Map();
  const out = new Map<string, HostFiles>();
  for (const host of hosts) out.set(host.name, await desiredFiles(config, host, cache));
  return out;
}

/** The top-level entries for this host (named in `hosts`, or having one of `roles`; every host when neither is given), then its own. */
export function entriesFor(config: ResolvedConfig, host: ResolvedHost): ResolvedFileEntry[] {
  const applies = (e: ResolvedTopFileEntry) =>
    (e.hosts === undefined && e.roles === undefined) || (e.hosts?.includes(host.name) ?? false) || (e.roles?.some((r) => host.roles.includes(r)) ?? false);
  return [...config.files.filter(applies), ...host.files];
}

async function entryFiles(config: ResolvedConfig, host: ResolvedHost, entry: ResolvedFileEntry, cache: SourceCache): Promise<DesiredFile[]> {
  let sources = cache.get(entry);
  if (sources === undefined) {
    sources = readSources(config, entry);
    cache.set(entry, sources);
  }
  const context = templateContext(config, host, entry);
  const out: DesiredFile[] = [];
  // One at a time: the first bad template in tree order is the one reported.
  for (const source of await sources) out.push(await desiredFile(config, entry, source, context));
  return out;
}

async function desiredFile(config: ResolvedConfig, entry: ResolvedFileEntry, source: SourceFile, context: Record<string, unknown>): Promise<DesiredFile> {
  const template = entry.template ?? source.path.endsWith('.j2');
  const content = template ? Buffer.from(await render(config, entry, source, context), 'utf8') : source.bytes;
  let mode = parseInt(entry.mode, 8);
  // An executable source (a script) stays executable wherever it is readable: 0644 -> 0755, 0640 -> 0750.
  if (source.executable) mode |= (mode & 0o444) >> 2;
  return {
    dest: destOf(entry, source, template),
    source: show(config, source.path),
    entry: entry.entry,
    content,
    sha256: createHash('sha256').update(content).digest('hex'),
    mode,
    ...(entry.owner !== undefined ? { owner: entry.owner } : {}),
    ...(entry.group !== undefined ? { group: entry.group } : {}),
    ...(entry.validate !== undefined ? { validate: entry.validate } : {}),
    onChange: entry.onChange,
    secret: entry.secret,
  };
}

/** Tree: dest/<path below src>; one file: dest, or dest/<name> when dest ends with '/'. A template loses its .j2. */
function destOf(entry: ResolvedFileEntry, source: SourceFile, template: boolean): string {
  const strip = (name: string) => (template && name.endsWith('.j2') && !name.endsWith('/.j2') && name !== '.j2' ? name.slice(0, -3) : name);
  if (source.rel !== '') return posix.join(entry.dest, strip(source.rel));
  return entry.dest.endsWith('/') ? posix.join(entry.dest, strip(basename(source.path))) : entry.dest;
}

/** What a template sees: the deployfile's vars, the entry's (winning), the host, and the venvs on it. */
function templateContext(config: ResolvedConfig, host: ResolvedHost, entry: ResolvedFileEntry): Record<string, unknown> {
  const venvs = config.venvs
    .filter((v) => v.host.name === host.name)
    .map((v) => ({ path: v.path, user: v.user, current: v.releases ? posix.join(v.path, 'current') : v.path }));
  return { ...config.vars, ...entry.vars, host: { name: host.name, address: host.address, roles: host.roles }, venvs };
}

async function render(config: ResolvedConfig, entry: ResolvedFileEntry, source: SourceFile, context: Record<string, unknown>): Promise<string> {
  const root = source.rel === '' ? dirname(entry.src) : entry.src;
  try {
    return await renderTemplate({ file: source.path, root, show: (p) => show(config, p) }, templateText(source.path, source.bytes), context);
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    const line = err.line !== undefined ? ` line ${err.line}` : '';
    const included = err.file !== source.path ? ` (included from ${show(config, source.path)})` : '';
    const hint =
      err.undefinedName !== undefined
        ? `define it in the entry's vars or the deployfile's top-level vars (a null value counts as undefined); templates see: ${Object.keys(context).sort().join(', ')}`
        : 'fix the template: Jinja syntax, rendered by Nunjucks (docs/files.md); `template: false` copies the file as it is';
    throw new ConfigError(`${entry.entry}: ${show(config, err.file)}${line}: ${err.message}${included}`, { hint });
  }
}

/** The regular files of an entry's src: the file itself, or every file under the directory (sorted). */
async function readSources(config: ResolvedConfig, entry: ResolvedFileEntry): Promise<SourceFile[]> {
  const stat = await lstat(entry.src).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') {
      throw new ConfigError(`${entry.entry}.src: ${show(config, entry.src)} does not exist`, {
        hint: `src is relative to the deployfile's directory (${config.dir})`,
      });
    }
    throw err;
  });
  if (stat.isFile()) return [{ path: entry.src, rel: '', executable: (stat.mode & 0o111) !== 0, bytes: await readFile(entry.src) }];
  if (!stat.isDirectory()) throw notRegular(config, entry, entry.src, stat);
  const out: SourceFile[] = [];
  await walk(config, entry, entry.src, out);
  return out;
}

async function walk(config: ResolvedConfig, entry: ResolvedFileEntry, dir: string, out: SourceFile[]): Promise<void> {
  const names = (await readdir(dir)).sort();
  for (const name of names) {
    const path = join(dir, name);
    const stat = await lstat(path);
    if (stat.isDirectory()) {
      await walk(config, entry, path, out);
    } else if (stat.isFile()) {
      if (/[\u0000-\u001f\u007f]/.test(name)) {
        throw new ConfigError(`${entry.entry}: ${JSON.stringify(show(config, path))} has a control character in its name`, { hint: 'rename the file' });
      }
      out.push({ path, rel: relative(entry.src, path).split(sep).join('/'), executable: (stat.mode & 0o111) !== 0, bytes: await readFile(path) });
    } else {
      throw notRegular(config, entry, path, stat);
    }
  }
}

function notRegular(config: ResolvedConfig, entry: ResolvedFileEntry, path: string, stat: { isSymbolicLink(): boolean }): ConfigError {
  const what = stat.isSymbolicLink() ? 'a symlink' : 'not a regular file (a socket, FIFO or device)';
  return new ConfigError(`${entry.entry}: ${show(config, path)} is ${what}; vdeploy copies regular files only`, {
    hint: stat.isSymbolicLink() ? 'replace the link with a copy of the file it points to, or move it out of the source tree' : 'move it out of the source tree',
  });
}

/** A local path as messages and the plan name it: relative to the deployfile's directory when inside it. */
function show(config: ResolvedConfig, path: string): string {
  const rel = relative(config.dir, path);
  return rel === '' ? '.' : rel.startsWith('..') ? path : rel.split(sep).join('/');
}
