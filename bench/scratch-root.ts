/**
 * Where the benchmark's fleet, venvs and projects live. Every contender writes the same files (a
 * fresh Django install is 9,000 files), so the storage under them must not change speed while the
 * benchmark runs. On the 2-core VM this was built on, the virtual disk's write speed fell sevenfold
 * after a few cycles of writing and deleting a few hundred MB (copying four Django venvs: 2.2 s, then
 * 5, 9, 12, 15 s; the same on tmpfs: 1.1 s every time), so whichever contender ran later lost. A
 * tmpfs (/dev/shm) holds steady, and a server's page cache absorbs pip's writes the same way.
 */
import { accessSync, constants, readFileSync, statfsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';

export interface ScratchRoot {
  dir: string;
  /** For the results: "tmpfs (/dev/shm)" or "disk (/tmp)". */
  description: string;
}

const SHM = '/dev/shm';

/**
 * `requested` (--tmpdir) if given; else /dev/shm when it is a writable, exec-allowed tmpfs with
 * `neededBytes` and `neededInodes` free; else the system's temporary directory. Inodes too: a tmpfs
 * has a fixed number (half the RAM's pages by default, 3.1 million here), and the 128 × 2 scale
 * fleet with its saved states takes 2.4 million of them; a second run beside it ran out (ENOSPC)
 * with 24 GiB of space free.
 */
export function chooseScratchRoot(requested: string | undefined, neededBytes: number, neededInodes = 0): ScratchRoot {
  if (requested) return { dir: requested, description: `${isTmpfs(requested) ? 'tmpfs' : 'disk'} (${requested}, --tmpdir)` };
  if (usableShm(neededBytes, neededInodes)) return { dir: SHM, description: `tmpfs (${SHM})` };
  return { dir: tmpdir(), description: `${isTmpfs(tmpdir()) ? 'tmpfs' : 'disk'} (${tmpdir()})` };
}

function usableShm(neededBytes: number, neededInodes: number): boolean {
  try {
    if (!statSync(SHM).isDirectory()) return false;
    accessSync(SHM, constants.W_OK);
    const mount = mountOf(SHM);
    if (mount?.type !== 'tmpfs' || mount.options.includes('noexec')) return false;
    const fs = statfsSync(SHM);
    return fs.bavail * fs.bsize >= neededBytes && fs.ffree >= neededInodes;
  } catch {
    return false;
  }
}

function isTmpfs(dir: string): boolean {
  return mountOf(dir)?.type === 'tmpfs';
}

/** The /proc/mounts entry with the longest mount point that contains `dir`. */
function mountOf(dir: string): { type: string; options: string[] } | undefined {
  let best: { point: string; type: string; options: string[] } | undefined;
  let mounts: string;
  try {
    mounts = readFileSync('/proc/mounts', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of mounts.split('\n')) {
    const [, point, type, options] = line.split(' ');
    if (!point || !type || !options) continue;
    const inside = dir === point || dir.startsWith(point.endsWith('/') ? point : `${point}/`);
    if (inside && (!best || point.length > best.point.length)) best = { point, type, options: options.split(',') };
  }
  return best;
}
