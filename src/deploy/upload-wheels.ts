/**
 * Putting wheels into a host's cache, first half: upload each one over SFTP under a temporary name.
 * The host apply script then checks every sha256 and renames the good ones into place, so an
 * interrupted upload never leaves a partial wheel under its final name, and the next run (seeing it
 * missing) uploads it again.
 */
import { randomBytes } from 'node:crypto';
import { join, posix } from 'node:path';
import { VdeployError } from '../errors.js';
import type { Connection } from '../remote/connection.js';
import { Semaphore } from '../remote/semaphore.js';
import type { ResolvedPackage } from '../resolve/resolve-venv.js';

/** SFTP uploads in flight per host: enough to fill the pipe, few enough not to starve exec channels. */
const UPLOAD_CONCURRENCY = 4;

export interface Upload {
  local: string;
  /** Where it is uploaded to: a dot file next to `final`, unique to this run. */
  tmp: string;
  final: string;
  sha256: string;
}

/** Where each wheel goes (nothing is sent yet). */
export function planUploads(repoDir: string, cacheDir: string, wheels: readonly ResolvedPackage[]): Upload[] {
  const suffix = randomBytes(6).toString('hex');
  return wheels.map((w) => ({
    local: join(repoDir, w.filename),
    tmp: posix.join(cacheDir, `.${w.filename}.tmp-${suffix}`),
    final: posix.join(cacheDir, w.filename),
    sha256: w.sha256,
  }));
}

/** Upload every wheel to its temporary name; `cacheExists` (the probe listed the cache) saves a mkdir. */
export async function uploadWheels(conn: Connection, cacheDir: string, uploads: readonly Upload[], options: { cacheExists?: boolean } = {}): Promise<void> {
  if (uploads.length === 0) return;
  if (!options.cacheExists) await conn.exec(['mkdir', '-p', '--', cacheDir]);
  const limit = new Semaphore(UPLOAD_CONCURRENCY);
  await Promise.all(uploads.map((u) => limit.run(() => conn.put(u.local, u.tmp, { mode: 0o644 }))));
}

/** The error for uploads the host found corrupted (their sha256 did not match; they were deleted). */
export function corruptUploadError(bad: ReadonlyArray<{ final: string }>): VdeployError {
  return new VdeployError(`uploaded wheel${bad.length > 1 ? 's' : ''} arrived corrupted: ${bad.map((b) => posix.basename(b.final)).join(', ')}`, {
    hint: 'run the deploy again; if it repeats, check the network and the disk of the host',
  });
}
