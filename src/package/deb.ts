/**
 * The .deb writer (issue 19, docs/packages.md "The .deb"): a `PackageTree` becomes an ar archive of
 * `debian-binary` ("2.0\n"), `control.tar.gz` (control, md5sums, conffiles, maintainer scripts) and
 * `data.tar.gz` (the files, as `./`-prefixed paths). Written with tar-stream, node:zlib and ar.ts so
 * it builds on any controller without dpkg-deb, and reproducibly: entries sorted by path, every mtime
 * the tree's, owner root:root, gzip headers without name or time.
 */
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { extract } from 'tar-stream';
import { ConfigError, VdeployError } from '../errors.js';
import { readAr, writeAr } from './ar.js';
import { tarGz, type TarItem } from './deb-tar.js';
import type { MaintainerScripts, PackageMeta, PackageTree, TreeEntry } from './tree.js';

/** What a maintainer script starts with: dpkg runs it directly, and `set -e` makes a failing step fail the install. */
export const SCRIPT_PREAMBLE = '#!/bin/sh\nset -e\n';

/** The Debian version: `version-iteration` (upstream version, then the Debian revision). */
export function debVersion(meta: PackageMeta): string {
  return `${meta.version}-${meta.iteration}`;
}

/** `name_version-iteration_arch.deb`, the name dpkg-deb and apt use. A `:` epoch is left out of file names. */
export function debFileName(meta: PackageMeta): string {
  const version = debVersion(meta).replace(/^\d+:/, '');
  return `${meta.name}_${version}_${meta.architecture}.deb`;
}

/** The whole .deb of `tree`; the same tree always gives the same bytes. */
export async function writeDeb(tree: PackageTree): Promise<Buffer> {
  checkMeta(tree.meta);
  const entries = withParents(tree.entries);
  checkConffiles(tree, entries);
  const control = await tarGz(controlEntries(tree, entries), tree.mtime);
  const data = await tarGz(dataEntries(entries), tree.mtime);
  return writeAr([
    { name: 'debian-binary', data: Buffer.from('2.0\n', 'ascii'), mtime: tree.mtime },
    { name: 'control.tar.gz', data: control, mtime: tree.mtime },
    { name: 'data.tar.gz', data, mtime: tree.mtime },
  ]);
}

/** The `control` file's text (paragraph of `Field: value` lines, ending in a newline). */
export function controlText(tree: PackageTree, installedSizeKiB: number): string {
  const m = tree.meta;
  const fields: [string, string | undefined][] = [
    ['Package', m.name],
    ['Version', debVersion(m)],
    ['Architecture', m.architecture],
    ['Maintainer', m.maintainer],
    ['Installed-Size', String(installedSizeKiB)],
    ['Depends', m.depends.length > 0 ? m.depends.join(', ') : undefined],
    ['Section', 'misc'],
    ['Priority', 'optional'],
    ['Homepage', m.homepage],
    ['Description', descriptionValue(m)],
  ];
  return fields.filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => `${k}: ${v}\n`).join('');
}

/**
 * The Description field: the synopsis, then the long text with each line indented by one space and
 * blank lines written as " ." (Debian Policy 5.6.13). Without long text, one line naming the package
 * and vdeploy stands in: lintian rejects both an empty extended description and one repeating the synopsis.
 */
export function descriptionValue(meta: PackageMeta): string {
  const synopsis = meta.summary.split('\n')[0]!.trim();
  const long = meta.description.trim() === '' ? `${meta.name} ${debVersion(meta)}, packaged by vdeploy.` : meta.description.replace(/\s+$/, '');
  const lines = long.split('\n').map((line) => (line.trim() === '' ? ' .' : ` ${line.replace(/\s+$/, '')}`));
  return [synopsis, ...lines].join('\n');
}

/** Installed-Size as dpkg-gencontrol counts it: KiB rounded up per regular file, 1 per other entry. */
export function installedSizeKiB(entries: TreeEntry[]): number {
  return entries.reduce((sum, e) => sum + (e.kind === 'file' ? Math.ceil(e.content.length / 1024) : 1), 0);
}

function controlEntries(tree: PackageTree, entries: TreeEntry[]): TarItem[] {
  const conffiles = new Set(tree.conffiles);
  // dpkg keeps conffiles' checksums in its own database; md5sums lists the other files (as dh_md5sums does).
  const md5sums = entries
    .filter((e): e is Extract<TreeEntry, { kind: 'file' }> => e.kind === 'file' && !conffiles.has(e.path))
    .map((e) => `${createHash('md5').update(e.content).digest('hex')}  ${e.path.slice(1)}\n`)
    .join('');
  const items: TarItem[] = [
    { header: { name: './', type: 'directory', mode: 0o755 } },
    file('./control', controlText(tree, installedSizeKiB(entries)), 0o644),
    file('./md5sums', md5sums, 0o644),
  ];
  if (tree.conffiles.length > 0) items.push(file('./conffiles', [...tree.conffiles].sort(byBytes).map((p) => `${p}\n`).join(''), 0o644));
  for (const name of ['postinst', 'prerm', 'postrm'] as const satisfies (keyof MaintainerScripts)[]) {
    const body = tree.scripts[name];
    if (body !== undefined && body.trim() !== '') items.push(file(`./${name}`, scriptText(body), 0o755));
  }
  return items;
}

/** A maintainer script: the preamble, then the body (a body with its own `#!` line is kept as written). */
export function scriptText(body: string): string {
  const text = body.startsWith('#!') ? body : SCRIPT_PREAMBLE + body;
  return text.endsWith('\n') ? text : `${text}\n`;
}

function file(name: string, text: string, mode: number): TarItem {
  return { header: { name, type: 'file', mode }, content: Buffer.from(text, 'utf8') };
}

function dataEntries(entries: TreeEntry[]): TarItem[] {
  const items: TarItem[] = [{ header: { name: './', type: 'directory', mode: 0o755 } }];
  for (const e of entries) {
    const name = `.${e.path}`;
    if (e.kind === 'dir') items.push({ header: { name: `${name}/`, type: 'directory', mode: e.mode } });
    else if (e.kind === 'symlink') items.push({ header: { name, type: 'symlink', linkname: e.target, mode: 0o777 } });
    else items.push({ header: { name, type: 'file', mode: e.mode }, content: e.content });
  }
  return items;
}

/** The entries sorted by path, with any missing parent directory added (0755), so dpkg can always create the tree. */
function withParents(entries: TreeEntry[]): TreeEntry[] {
  const byPath = new Map<string, TreeEntry>();
  for (const e of entries) {
    if (!e.path.startsWith('/') || e.path === '/' || e.path.endsWith('/') || e.path.split('/').some((c, i) => i > 0 && (c === '' || c === '.' || c === '..'))) {
      throw new VdeployError(`package path "${e.path}" is not a normalized absolute path`, { hint: 'this is likely a vdeploy bug; please report it' });
    }
    if (byPath.has(e.path)) throw new VdeployError(`package path "${e.path}" appears twice in the package tree`, { hint: 'two sources install the same file: keep one' });
    byPath.set(e.path, e);
  }
  for (const e of entries) {
    for (let dir = parentOf(e.path); dir !== '/'; dir = parentOf(dir)) {
      const existing = byPath.get(dir);
      if (existing && existing.kind !== 'dir') throw new VdeployError(`package path "${dir}" is a ${existing.kind} but "${e.path}" is inside it`);
      if (!existing) byPath.set(dir, { kind: 'dir', path: dir, mode: 0o755 });
    }
  }
  return [...byPath.values()].sort((a, b) => byBytes(a.path, b.path));
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** Byte order (not locale order), so the package is the same whatever the controller's locale. */
function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Metadata from the deployfile and flags: a bad value is a usage error (exit 2), named with how to fix it. */
function checkMeta(meta: PackageMeta): void {
  if (!/^[a-z0-9][a-z0-9+.-]+$/.test(meta.name)) throw new ConfigError(`package name "${meta.name}" is not a valid Debian package name`, { hint: 'use lower-case letters, digits, "+", "-" and "." (at least two characters, starting with a letter or digit)' });
  if (!/^[0-9][A-Za-z0-9.+~]*$/.test(meta.version)) throw new ConfigError(`package version "${meta.version}" is not a valid Debian upstream version`, { hint: 'start with a digit and use letters, digits, ".", "+" and "~" (e.g. 1.4.2)' });
  if (!Number.isInteger(meta.iteration) || meta.iteration < 0) throw new ConfigError(`package iteration ${meta.iteration} must be a non-negative integer`);
  if (!/^[a-z0-9-]+$/.test(meta.architecture)) throw new ConfigError(`package architecture "${meta.architecture}" is not a Debian architecture name`, { hint: 'use amd64, arm64 or all' });
  for (const [field, value] of [['maintainer', meta.maintainer], ['summary', meta.summary], ['homepage', meta.homepage ?? '']] as const) {
    if (/\n/.test(value)) throw new ConfigError(`package ${field} must be one line`);
  }
  if (meta.summary.trim() === '') throw new ConfigError(`package ${meta.name} needs a one-line summary`, { hint: 'give the package a description: its first line is the summary' });
  if (meta.depends.some((d) => d.trim() === '' || /[\n,]/.test(d))) throw new ConfigError(`package ${meta.name} has an empty or multi-part dependency in depends`, { hint: 'give one dependency expression per list item, e.g. "libpq5" or "python3 (>= 3.11)"' });
}

function checkConffiles(tree: PackageTree, entries: TreeEntry[]): void {
  const files = new Set(entries.filter((e) => e.kind === 'file').map((e) => e.path));
  for (const c of tree.conffiles) {
    if (!files.has(c)) throw new VdeployError(`conffile ${c} is not a regular file of package ${tree.meta.name}`, { hint: 'a config file must be one of the files the package installs' });
  }
}

/** The `control` file of a .deb (control.tar.gz or an uncompressed control.tar). `what` names the file in errors. */
export async function readDebControl(deb: Buffer, what: string): Promise<string> {
  const members = readAr(deb, what);
  const member = members.find((m) => m.name.startsWith('control.tar'));
  if (!member) throw new VdeployError(`${what} has no control.tar member`, { hint: 'check that the file is a .deb package' });
  let tar: Buffer;
  if (member.name === 'control.tar') tar = member.data;
  else if (member.name === 'control.tar.gz') {
    try {
      tar = gunzipSync(member.data);
    } catch (err) {
      throw new VdeployError(`${what} has a damaged control.tar.gz (${(err as Error).message})`, { hint: 'remove the file, or rebuild it with `vdeploy package`', cause: err });
    }
  } else throw new VdeployError(`${what} has a ${member.name}, which vdeploy cannot read (it reads gzip or uncompressed control archives)`, { hint: 'remove the file, or rebuild it with `vdeploy package` (or `dpkg-deb -Zgzip --build`)' });
  const x = extract();
  const found = (async () => {
    let text: string | undefined;
    for await (const entry of x) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      if (entry.header.name === './control' || entry.header.name === 'control') text = Buffer.concat(chunks).toString('utf8');
    }
    return text;
  })();
  x.end(tar);
  const text = await found;
  if (text === undefined) throw new VdeployError(`${what} has no control file in its ${member.name}`, { hint: 'check that the file is a .deb package' });
  return text;
}
