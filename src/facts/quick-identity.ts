/**
 * The "quick" identity of an interpreter: the part of its cache fingerprint that SFTP can read
 * without running anything on the host. The probe script computes the same parts (quick_identity in
 * vdeploy_remote/probe.py) each time it answers for an interpreter; vdeploy keeps their hash in
 * the interpreter cache, and read-host-files.ts recomputes it over SFTP to decide whether cached
 * facts still hold.
 *
 * Weaker than the fingerprint (no inode, device or ctime; mtime in whole seconds), so it only ever
 * vouches for facts the full fingerprint confirmed within the cache's MAX_AGE_MS. Replacing
 * the interpreter, packaging or the C library changes size or mtime; a kernel update changes /proc.
 */
import { createHash } from 'node:crypto';
import type { RemoteFiles } from '../remote/remote-files.js';

/** Same parts, same hash: both sides hash in vdeploy, from the parsed JSON, so formatting cannot differ. */
export function hashQuickIdentity(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32);
}

/** quick_system(): read once per host. */
export async function readQuickSystem(files: RemoteFiles): Promise<unknown[]> {
  return Promise.all([readText(files, '/proc/sys/kernel/osrelease'), readText(files, '/proc/sys/kernel/version'), quickAttrs(files, '/etc/ld.so.cache')]);
}

/** quick_identity(real, files, system), hashed. */
export async function readQuickIdentity(files: RemoteFiles, real: string, paths: readonly string[], system: unknown[]): Promise<string> {
  const [own, others] = await Promise.all([quickAttrs(files, real), Promise.all(paths.map(async (p) => [p, await quickAttrs(files, p)]))]);
  return hashQuickIdentity([real, own, others, system]);
}

/** [size, mtime in s, mode], or null for anything that cannot be stat'ed — as the script says. */
async function quickAttrs(files: RemoteFiles, path: string): Promise<number[] | null> {
  try {
    const { size, mtime, mode } = await files.stat(path);
    return [size, mtime, mode];
  } catch {
    return null;
  }
}

async function readText(files: RemoteFiles, path: string): Promise<string | null> {
  try {
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(await files.readFile(path));
  } catch {
    return null;
  }
}
