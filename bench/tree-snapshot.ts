/**
 * Cheap, exact snapshots of directory trees (venvs, wheel caches) for the benchmark's untimed resets.
 *
 * A snapshot is a tree of HARD LINKS to the original files, so taking one and restoring one cost a
 * link per file instead of a copy: here, copying a Django venv (9,000 files, 78 MB) takes 2–5 s;
 * linking it, about one. Restoring makes the target equal to the snapshot: what the snapshot lacks is
 * removed, and every file that is not the snapshot's own inode is linked back.
 *
 * Two rules keep that sound:
 * - Nobody may write INTO an existing file of a snapshotted tree. pip never does (it unlinks a file
 *   before writing its replacement; Python writes .pyc files by rename), but vdeploy appends to
 *   `.vdeploy/history.jsonl` and rewrites its lock file in place: files under a directory named in
 *   `copyDirs` are copied, never linked. As a guard, each linked file's size and mtime are recorded,
 *   and a restore that finds one changed fails loudly.
 * - A restore skips the file-by-file comparison of a directory whose ctime is what it was when that
 *   directory was last made equal to this same snapshot: creating, removing or renaming an entry
 *   changes the ctime, and nothing else can make it differ (rule one). That makes restoring a venv
 *   after a small upgrade cost one lstat per directory instead of one per file.
 */
import { chmodSync, copyFileSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';

interface Entry {
  name: string;
  kind: 'dir' | 'file' | 'copy' | 'symlink';
  /** file: inode identity and "size mtimeMs" when snapshotted. */
  ino?: number;
  dev?: number;
  fingerprint?: string;
  /** symlink: its target. */
  link?: string;
  /** file or copy: where its content is, when not at the same place in the snapshot's directory. */
  path?: string;
  /** dir: its entries. */
  children?: Map<string, Entry>;
}

export interface TreeSnapshot {
  /** The directory that holds the links. */
  readonly dir: string;
  readonly copyDirs: ReadonlySet<string>;
  readonly root: Entry;
  /** Target directory → its ctime right after a restore made it equal to this snapshot's. */
  readonly clean: Map<string, number>;
}

const DEFAULT_COPY_DIRS: ReadonlySet<string> = new Set(['.vdeploy']);

/** Snapshot `source` into `dir` (created; must not hold anything yet). */
export function snapshotTree(source: string, dir: string, copyDirs: ReadonlySet<string> = DEFAULT_COPY_DIRS): TreeSnapshot {
  return { dir, copyDirs, root: linkDir(source, dir, '', false, copyDirs), clean: new Map() };
}

/** Make `target` exactly equal to the snapshot (it may not exist yet). Returns how many entries changed. */
export function restoreTree(snapshot: TreeSnapshot, target: string): number {
  return restoreDir(snapshot, snapshot.root, snapshot.dir, target, false);
}

/**
 * A snapshot equal to `source` except for some files' contents (relative path → new content), for
 * another target: it shares the source's links and entries, and only the replaced files are written,
 * into `dir`. Taking one costs as many writes as there are replacements, not a link per file.
 */
export function deriveSnapshot(source: TreeSnapshot, dir: string, replacements: ReadonlyMap<string, string | Buffer>): TreeSnapshot {
  mkdirSync(dir, { recursive: true });
  const root = { ...source.root, children: new Map(source.root.children) };
  let n = 0;
  for (const [rel, content] of replacements) {
    const parts = rel.split('/');
    let parent = root;
    for (const part of parts.slice(0, -1)) {
      const next = parent.children!.get(part);
      if (next?.kind !== 'dir') throw new Error(`${rel} is not in the snapshot ${source.dir}`);
      // Copy each directory entry on the way down, so the source's stays as it was.
      const copy = { ...next, children: new Map(next.children) };
      parent.children!.set(part, copy);
      parent = copy;
    }
    const name = parts.at(-1)!;
    const old = parent.children!.get(name);
    if (old?.kind !== 'file' && old?.kind !== 'copy') throw new Error(`${rel} is not a file in the snapshot ${source.dir}`);
    const file = join(dir, String(n++));
    writeFileSync(file, content);
    chmodSync(file, lstatSync(join(source.dir, rel)).mode & 0o7777);
    parent.children!.set(name, { ...old, ...(old.kind === 'file' ? identity(lstatSync(file)) : {}), path: file });
  }
  return { dir: source.dir, copyDirs: source.copyDirs, root, clean: new Map() };
}

function linkDir(from: string, to: string, name: string, copying: boolean, copyDirs: ReadonlySet<string>): Entry {
  mkdirSync(to, { recursive: true });
  const children = new Map<string, Entry>();
  for (const d of readdirSync(from, { withFileTypes: true })) {
    const src = join(from, d.name);
    const dst = join(to, d.name);
    if (d.isDirectory()) {
      children.set(d.name, linkDir(src, dst, d.name, copying || copyDirs.has(d.name), copyDirs));
    } else if (d.isSymbolicLink()) {
      const link = readlinkSync(src);
      symlinkSync(link, dst);
      children.set(d.name, { name: d.name, kind: 'symlink', link });
    } else if (copying) {
      copyFileSync(src, dst);
      children.set(d.name, { name: d.name, kind: 'copy' });
    } else {
      linkSync(src, dst);
      children.set(d.name, { name: d.name, kind: 'file', ...identity(lstatSync(dst)) });
    }
  }
  return { name, kind: 'dir', children };
}

function restoreDir(snapshot: TreeSnapshot, entry: Entry, from: string, to: string, copying: boolean): number {
  let changed = 0;
  let have = lstatOrUndefined(to);
  if (have && !have.isDirectory()) {
    rmSync(to, { force: true });
    have = undefined;
  }
  const fresh = !have;
  if (fresh) {
    mkdirSync(to);
    changed++;
  }
  const children = entry.children!;
  if (!fresh && !copying && snapshot.clean.get(to) === have!.ctimeMs) {
    for (const child of children.values()) {
      if (child.kind === 'dir') changed += restoreDir(snapshot, child, join(from, child.name), join(to, child.name), copying || snapshot.copyDirs.has(child.name));
    }
    return changed;
  }

  for (const child of children.values()) {
    const src = child.path ?? join(from, child.name);
    const dst = join(to, child.name);
    if (child.kind === 'dir') {
      changed += restoreDir(snapshot, child, src, dst, copying || snapshot.copyDirs.has(child.name));
      continue;
    }
    const existing = fresh ? undefined : lstatOrUndefined(dst);
    if (child.kind === 'symlink') {
      if (existing?.isSymbolicLink() && readlinkSync(dst) === child.link) continue;
      if (existing) rmSync(dst, { recursive: true, force: true });
      symlinkSync(child.link!, dst);
    } else if (child.kind === 'copy') {
      // Small bookkeeping files written in place: compared by content, copied back when they differ.
      if (existing?.isFile() && existing.size === lstatSync(src).size && readFileSync(dst).equals(readFileSync(src))) continue;
      if (existing) rmSync(dst, { recursive: true, force: true });
      copyFileSync(src, dst);
    } else {
      if (existing && existing.ino === child.ino && existing.dev === child.dev) {
        checkUnchanged(snapshot, child, existing, dst);
        continue;
      }
      const source = lstatSync(src);
      checkUnchanged(snapshot, child, source, src);
      if (existing) rmSync(dst, { recursive: true, force: true });
      linkSync(src, dst);
    }
    changed++;
  }
  if (!fresh) {
    for (const name of readdirSync(to)) {
      if (children.has(name)) continue;
      rmSync(join(to, name), { recursive: true, force: true });
      changed++;
    }
  }
  if (!copying) snapshot.clean.set(to, lstatSync(to).ctimeMs);
  return changed;
}

function checkUnchanged(snapshot: TreeSnapshot, entry: Entry, stats: Stats, path: string): void {
  const now = identity(stats).fingerprint;
  if (now !== entry.fingerprint) {
    throw new Error(`snapshot ${snapshot.dir} is damaged: ${path} was ${entry.fingerprint}, is ${now} (something wrote into a linked file)`);
  }
}

function identity(s: Stats): { ino: number; dev: number; fingerprint: string } {
  return { ino: s.ino, dev: s.dev, fingerprint: `${s.size} ${s.mtimeMs}` };
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
