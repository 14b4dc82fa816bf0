/**
 * Reading files on a target without running a command there: SFTP over SSH (ssh-connection.ts),
 * node:fs for the local target. A command costs a login shell on the host (on our test hosts 130 ms
 * of CPU for root's rc files alone); an SFTP session served by `internal-sftp` starts none, so facts
 * that are plain files (installed METADATA, history, the wheel cache listing) are cheapest read this
 * way (see src/facts/read-host-files.ts).
 *
 * Deliberately small: what the fact readers need, with SFTP's own limits (whole-second mtimes, no
 * inode numbers). Every method rejects with a RemoteFileError (`missing` is true when the path, or a
 * directory on it, does not exist: callers treat that as an answer rather than a failure), or with
 * the connection's own error once the connection is gone.
 */
import { lstat, readdir, readFile, readlink, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { SFTPWrapper, Stats } from 'ssh2';

/** What SFTP (version 3) tells about a file: enough to notice that it was replaced or rewritten. */
export interface FileAttrs {
  size: number;
  /** Seconds since the epoch (SFTP has no finer resolution). */
  mtime: number;
  /** st_mode: type and permission bits. */
  mode: number;
}

export interface DirEntry {
  name: string;
  /** Of the entry itself, not what a symlink points to. */
  attrs: FileAttrs;
}

export interface RemoteFiles {
  /** Follows symlinks. */
  stat(path: string): Promise<FileAttrs>;
  /** Every entry but . and .., unsorted. */
  readdir(path: string): Promise<DirEntry[]>;
  readFile(path: string): Promise<Buffer>;
  /** Absolute, symlinks resolved; '.' is the login user's home directory. */
  realpath(path: string): Promise<string>;
  /** A symlink's target as written (fails for anything else). */
  readlink(path: string): Promise<string>;
}

export class RemoteFileError extends Error {
  constructor(
    message: string,
    /** The path, or a directory on it, does not exist. */
    readonly missing: boolean,
  ) {
    super(message);
    this.name = 'RemoteFileError';
  }
}

export const S_IFMT = 0o170000;
export const isDirectory = (attrs: FileAttrs): boolean => (attrs.mode & S_IFMT) === 0o040000;
export const isRegularFile = (attrs: FileAttrs): boolean => (attrs.mode & S_IFMT) === 0o100000;
export const isSymlink = (attrs: FileAttrs): boolean => (attrs.mode & S_IFMT) === 0o120000;

/** SSH_FX_NO_SUCH_FILE: OpenSSH's sftp-server also answers it for ENOTDIR and ELOOP. */
const SFTP_NO_SUCH_FILE = 2;

/** RemoteFiles over an open SFTP session; `guard` makes a call fail when the connection goes away. */
export function sftpFiles(sftp: SFTPWrapper, guard: <T>(work: Promise<T>) => Promise<T>): RemoteFiles {
  const call = <T>(what: string, path: string, start: (cb: (err: Error | null | undefined, value: T) => void) => void): Promise<T> =>
    guard(
      new Promise<T>((resolve, reject) =>
        start((err, value) => {
          if (!err) return resolve(value);
          const code = (err as Error & { code?: unknown }).code;
          reject(new RemoteFileError(`${what} ${path}: ${err.message}`, code === SFTP_NO_SUCH_FILE));
        }),
      ),
    );
  return {
    stat: (path) => call<Stats>('stat', path, (cb) => sftp.stat(path, cb)).then(fromSftp),
    readdir: (path) =>
      call<Array<{ filename: string; attrs: Stats }>>('readdir', path, (cb) => sftp.readdir(path, cb as never)).then((list) =>
        list.filter((e) => e.filename !== '.' && e.filename !== '..').map((e) => ({ name: e.filename, attrs: fromSftp(e.attrs) })),
      ),
    readFile: (path) => call<Buffer>('read', path, (cb) => sftp.readFile(path, cb as never)),
    realpath: (path) => call<string>('realpath', path, (cb) => sftp.realpath(path, cb)),
    readlink: (path) => call<string>('readlink', path, (cb) => sftp.readlink(path, cb)),
  };
}

/** RemoteFiles on this machine, the same shape as over SFTP (whole-second mtimes). */
export function localFiles(home: string): RemoteFiles {
  const wrap = <T>(what: string, path: string, work: () => Promise<T>): Promise<T> =>
    work().catch((err: NodeJS.ErrnoException) => {
      throw new RemoteFileError(`${what} ${path}: ${err.message}`, ['ENOENT', 'ENOTDIR', 'ELOOP'].includes(err.code ?? ''));
    });
  const at = (path: string) => (path.startsWith('/') ? path : join(home, path));
  return {
    stat: (path) => wrap('stat', path, async () => fromNode(await stat(at(path)))),
    readdir: (path) =>
      wrap('readdir', path, async () => {
        const names = await readdir(at(path));
        return Promise.all(names.map(async (name) => ({ name, attrs: fromNode(await lstat(join(at(path), name))) })));
      }),
    readFile: (path) => wrap('read', path, () => readFile(at(path))),
    realpath: (path) => wrap('realpath', path, () => realpath(at(path))),
    readlink: (path) => wrap('readlink', path, () => readlink(at(path))),
  };
}

function fromSftp(s: Stats): FileAttrs {
  return { size: s.size, mtime: s.mtime, mode: s.mode };
}

function fromNode(s: { size: number; mtimeMs: number; mode: number }): FileAttrs {
  return { size: s.size, mtime: Math.floor(s.mtimeMs / 1000), mode: s.mode };
}
