/**
 * Putting wheels into a host's cache, first half: upload each one over SFTP under a temporary name.
 * The host apply script then checks every sha256 and renames the good ones into place, so an
 * interrupted upload never leaves a partial wheel under its final name, and the next run (seeing it
 * missing) uploads it again.
 */
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { VdeployError } from '../errors.js';
import type { Connection } from '../remote/connection.js';
import { Semaphore } from '../remote/semaphore.js';
import type { ResolvedPackage } from '../resolve/resolve-venv.js';
import { hashFile } from '../wheels/validate-wheel.js';

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
  await Promise.all(
    uploads.map((u) =>
      limit.run(async () => {
        await checkAsReleased(u);
        await conn.put(u.local, u.tmp, { mode: 0o644 });
      }),
    ),
  );
}

/** Local hashes by path, size and mtime: every host of a deploy pushes the same files, read them once. */
const localHashes = new Map<string, Promise<string>>();

/**
 * The host checks each upload against the release line's sha256; a file edited in the repository
 * after add-wheel would fail there and look like a network fault. Hashing it here first (a read
 * from the page cache, once per deploy) says what really happened, and sends nothing.
 */
async function checkAsReleased(u: Upload): Promise<void> {
  const fail = (why: string) => new VdeployError(`${u.local}: ${why}`, { hint: 'Check the repository permissions.' });
  const info = await stat(u.local).catch((err: NodeJS.ErrnoException) => {
    throw fail(`cannot read (${err.code ?? err.message})`);
  });
  const key = `${u.local}\0${info.size}\0${info.mtimeMs}\0${info.ino}`;
  let pending = localHashes.get(key);
  if (!pending) {
    pending = hashFile(u.local, fail).then((h) => h.sha256);
    localHashes.set(key, pending);
    pending.catch(() => localHashes.delete(key));
  }
  const actual = await pending;
  if (actual !== u.sha256) throw changedSinceReleaseError(u.local, u.sha256, actual);
}

function changedSinceReleaseError(local: string, released: string, actual: string): VdeployError {
  return new VdeployError(
    `${local}: the repository's file no longer matches its release line in release_log (released with sha256 ${released.slice(0, 12)}…, the file now has ${actual.slice(0, 12)}…); it was changed after add-wheel released it, nothing was pushed`,
    {
      hint: `Put the released file back, or release the new build under a new version with \`vdeploy add-wheel\` (or replace it with \`vdeploy add-wheel --force\`).`,
    },
  );
}

/** The error for uploads the host found corrupted (their sha256 did not match; they were deleted). */
export function corruptUploadError(bad: ReadonlyArray<{ final: string }>): VdeployError {
  return new VdeployError(`uploaded wheel${bad.length > 1 ? 's' : ''} arrived corrupted: ${bad.map((b) => posix.basename(b.final)).join(', ')}`, {
    hint: 'run the deploy again; if it repeats, check the network and the disk of the host',
  });
}
