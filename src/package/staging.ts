/** The staging directory a package is built in: re-pointing a venv at a shipped interpreter, and the leftover scan. */
import { createHash } from 'node:crypto';
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

/**
 * Brings each installed distribution's RECORD in line with its files: pip hashed the console scripts
 * with the staging path in their shebangs, and relocation rewrote those. Stale hashes would make
 * `pip` checks fail and, naming the random staging path's length, make the package differ per build.
 */
export async function refreshRecords(venv: string): Promise<number> {
  let fixed = 0;
  for (const lib of ['lib']) {
    const libDir = join(venv, lib);
    for (const py of await readdir(libDir).catch(() => [] as string[])) {
      const site = join(libDir, py, 'site-packages');
      for (const info of (await readdir(site).catch(() => [] as string[])).filter((n) => n.endsWith('.dist-info'))) {
        fixed += await refreshRecord(site, join(site, info, 'RECORD'));
      }
    }
  }
  return fixed;
}

async function refreshRecord(site: string, record: string): Promise<number> {
  const text = await readFile(record, 'utf8').catch(() => undefined);
  if (text === undefined) return 0;
  let fixed = 0;
  const lines: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^([^",]+),sha256=([A-Za-z0-9_-]+),(\d+)\r?$/.exec(line);
    const data = m ? await readFile(join(site, m[1]!)).catch(() => undefined) : undefined;
    if (!m || data === undefined) {
      lines.push(line);
      continue;
    }
    const hash = createHash('sha256').update(data).digest('base64url');
    if (hash !== m[2] || data.length !== Number(m[3])) fixed++;
    lines.push(`${m[1]},sha256=${hash},${data.length}`);
  }
  if (fixed > 0) await writeFile(record, lines.join('\n'));
  return fixed;
}
