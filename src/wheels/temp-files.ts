/**
 * The temporary files add-wheel copies a wheel through (then renames into place), and the removal of
 * those that an add-wheel killed mid-copy left behind.
 */
import { randomBytes } from 'node:crypto';
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { processExists } from '../process-exists.js';

/** A hidden name unique to this process and call, next to the wheel's final name. */
export function tempFileName(wheelFilename: string): string {
  return `.${wheelFilename}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
}

/** `.<wheel filename>.<pid>.<8 hex>.tmp`: copyIntoRepository's temporary files. */
const TEMP_FILE = /^\.(.+\.whl)\.(\d+)\.[0-9a-f]{8}\.tmp$/;
/** A temp file this old is abandoned even if its pid now belongs to a live process (pids are reused). */
const ABANDONED_MS = 10 * 60_000;

/**
 * Removes temp files of add-wheels that were killed mid-copy. Called holding the lock, and copies
 * happen only under it, so no live add-wheel is writing one; the pid check keeps this safe even for
 * a writer that lost the lock (stalled for over 10 s) and is still copying.
 */
export async function removeStaleTemps(repoDir: string, onRemoved: (file: string, pid: number) => void): Promise<void> {
  const names = await readdir(repoDir).catch(() => [] as string[]);
  for (const name of names) {
    const match = TEMP_FILE.exec(name);
    if (!match) continue;
    const pid = Number(match[2]);
    const file = join(repoDir, name);
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile() || pid === process.pid) continue;
    if (processExists(pid) && Date.now() - info.mtimeMs < ABANDONED_MS) continue;
    await unlink(file).then(
      () => onRemoved(file, pid),
      () => {}, // gone already, or not ours to remove: the next add-wheel tries again
    );
  }
}
