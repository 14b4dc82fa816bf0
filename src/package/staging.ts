/** The staging directory a package is built in: re-pointing a venv at a shipped interpreter, and the leftover scan. */
import { lstat, readFile, readdir, readlink, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A venv made by `<staging>/python/bin/python3.X -m venv`: relocate.py rewrote the venv's own path;
 * its `home`, `executable`, `command` and its bin/python symlinks still name the staged interpreter.
 */
export async function fixShippedVenv(venv: string, staged: string, final: string): Promise<void> {
  const cfg = join(venv, 'pyvenv.cfg');
  await writeFile(cfg, (await readFile(cfg, 'utf8')).split(staged).join(final));
  const bin = join(venv, 'bin');
  for (const name of await readdir(bin)) {
    const path = join(bin, name);
    if (!(await lstat(path)).isSymbolicLink()) continue;
    const target = await readlink(path);
    if (!target.startsWith(`${staged}/`)) continue;
    await unlink(path);
    await symlink(final + target.slice(staged.length), path);
  }
}

/** Files (and symlinks) under `dir` whose bytes or target contain one of `needles`, relative to dir. */
export async function scanForPaths(dir: string, needles: string[]): Promise<string[]> {
  const found: string[] = [];
  const wanted = needles.map((n) => Buffer.from(n));
  const walk = async (rel: string): Promise<void> => {
    const path = rel ? join(dir, rel) : dir;
    const st = await lstat(path);
    if (st.isDirectory()) {
      for (const name of (await readdir(path)).sort()) await walk(rel ? `${rel}/${name}` : name);
    } else if (st.isSymbolicLink()) {
      const target = await readlink(path);
      if (needles.some((n) => target.includes(n))) found.push(rel);
    } else if (st.isFile()) {
      const data = await readFile(path);
      if (wanted.some((n) => data.includes(n))) found.push(rel);
    }
  };
  await walk('');
  return found;
}
