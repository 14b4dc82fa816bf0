/**
 * Shipping a CPython prefix inside a package (`interpreter: { path }`, docs/packages.md): copied to
 * `<staging>/python` without what only building needs (tests, headers, the static library and
 * Makefile, pkg-config files, scripts with shebangs), its ELF run paths made relative to
 * themselves (`$ORIGIN/...`: a `--enable-shared` build such as pyenv's finds libpython through an
 * absolute RUNPATH of its build prefix), and the text files that name the build prefix (sysconfig
 * data) rewritten for `<prefix>/python`. Bytecode is compiled later, for the final path.
 */
import { chmod, copyFile, lstat, mkdir, readFile, readdir, readlink, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, posix, relative } from 'node:path';
import { ConfigError } from '../errors.js';
import type { Connection } from '../remote/connection.js';
import { readRunpaths, rewriteRunpaths } from './elf-runpath.js';

/** Paths (relative to the prefix) never shipped: build-time only, or the test suite. */
export function skipped(rel: string, xy: string): boolean {
  const parts = rel.split('/');
  const name = parts.at(-1)!;
  if (parts.includes('__pycache__')) return true;
  if (['include', 'share'].includes(parts[0]!) && parts.length >= 1) return true;
  if (parts[0] === 'bin') return parts.length === 2 && !/^python[0-9.]*$/.test(name);
  if (parts[0] !== 'lib') return parts.length === 1 && !['bin', 'lib'].includes(name);
  if (parts[1] === 'pkgconfig') return true;
  if (parts[1] !== `python${xy}`) return false;
  if (parts[2]?.startsWith('config-')) return true;
  if (parts[2] === 'site-packages' && parts.length > 3) return true;
  return parts.slice(2).some((p) => p === 'test' || p === 'tests' || p === 'idle_test');
}

export interface ShippedPython {
  /** Files whose run path was rewritten (relative to the prefix). */
  runpaths: string[];
  /** Text files in which the build prefix was replaced. */
  rewritten: string[];
}

/** Checks the prefix can be shipped: the interpreter's own sys.prefix, libpython found through a RUNPATH in it (or static). */
export async function checkShippable(local: Connection, source: string, what: string): Promise<void> {
  const r = await local.exec([join(source, 'bin', 'python3'), '-I', '-c', 'import sys, sysconfig; print(sys.prefix); print(sysconfig.get_config_var("Py_ENABLE_SHARED") or 0)'], { nothrow: true });
  const [prefix, shared] = r.stdout.trim().split('\n');
  if (r.exitCode !== 0 || prefix !== source) {
    throw new ConfigError(`${what}: ${source} is not the prefix of the CPython in it (its sys.prefix is ${prefix ?? 'unknown'})`, { hint: 'give the directory CPython was installed into with `./configure --prefix=DIR` (e.g. /root/.pyenv/versions/3.12.1), not a symlink or a venv' });
  }
  if (shared === '1') {
    const elf = await readFile(join(source, 'bin', `python3`)).catch(() => Buffer.alloc(0));
    const paths = readRunpaths(elf) ?? [];
    if (!paths.some((p) => p.value.split(':').some((d) => d === join(source, 'lib')))) {
      throw new ConfigError(`${what}: ${source} is a shared-libpython build (--enable-shared) that finds libpython without a RUNPATH into its prefix, so it cannot run from another place`, {
        hint: 'build it with `LDFLAGS=-Wl,-rpath,PREFIX/lib` (pyenv does), or without --enable-shared, or with --prefix=<package prefix>/python',
      });
    }
  }
}

/** Copies the prefix to `dest`; `final` is where it will be installed (`<prefix>/python`). */
export async function copyPython(source: string, dest: string, final: string, xy: string): Promise<ShippedPython> {
  const done: ShippedPython = { runpaths: [], rewritten: [] };
  const walk = async (rel: string): Promise<void> => {
    const from = rel ? join(source, rel) : source;
    const to = rel ? join(dest, rel) : dest;
    const st = await lstat(from);
    if (st.isDirectory()) {
      await mkdir(to, { recursive: true });
      for (const name of (await readdir(from)).sort()) {
        const child = rel ? `${rel}/${name}` : name;
        if (!skipped(child, xy)) await walk(child);
      }
    } else if (st.isSymbolicLink()) {
      await symlink(await readlink(from), to);
    } else if (st.isFile()) {
      await copyOne(from, to, rel, st.mode & 0o7777);
    }
  };
  const copyOne = async (from: string, to: string, rel: string, mode: number): Promise<void> => {
    const data = await readFile(from);
    const paths = readRunpaths(data);
    if (paths && paths.length > 0) {
      const out = rewriteRunpaths(data, (old) => old.split(':').map((d) => (d === source || d.startsWith(`${source}/`) ? originPath(rel, posix.relative(source, d)) : d)).join(':'));
      if (out !== data) done.runpaths.push(rel);
      await writeFile(to, out, { mode });
    } else if (!paths && isText(data) && data.includes(source)) {
      await writeFile(to, data.toString('utf8').split(source).join(final), { mode });
      done.rewritten.push(rel);
    } else {
      await copyFile(from, to);
    }
    await chmod(to, mode);
  };
  await walk('');
  return done;
}

/** `$ORIGIN/../lib` for bin/python3.12 and target `lib`. */
function originPath(fileRel: string, targetRel: string): string {
  const rel = relative(dirname(`/${fileRel}`), `/${targetRel}`);
  return rel === '' ? '$ORIGIN' : `$ORIGIN/${rel}`;
}

function isText(data: Buffer): boolean {
  return !data.subarray(0, 8192).includes(0);
}
