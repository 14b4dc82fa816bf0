/** Putting wheels into a host's cache: temporary name, sha256 check on the host, atomic rename. */
import { randomBytes } from 'node:crypto';
import { join, posix } from 'node:path';
import { RemoteCommandError, VdeployError } from '../errors.js';
import type { Connection } from '../remote/connection.js';
import { pythonScriptArgv } from '../remote/python-script.js';
import { Semaphore } from '../remote/semaphore.js';
import type { ResolvedPackage } from '../resolve/resolve-venv.js';
import { FINALIZE_UPLOADS_SCRIPT } from './push-script.js';

/** SFTP uploads in flight per host: enough to fill the pipe, few enough not to starve exec channels. */
const PUSH_CONCURRENCY = 4;

/**
 * Upload each wheel to a temporary name in the cache, then one remote call checks every sha256 and
 * renames the good ones into place: an interrupted upload never leaves a partial wheel under its
 * final name, and the next run (seeing it missing) uploads it again.
 */
export async function pushWheels(
  conn: Connection,
  repoDir: string,
  cacheDir: string,
  wheels: readonly ResolvedPackage[],
  options: { cacheExists?: boolean } = {},
): Promise<number> {
  // One round trip saved on every upgrade: the probe already saw the cache (it listed wheels in it).
  if (!options.cacheExists) await conn.exec(['mkdir', '-p', '--', cacheDir]);
  const suffix = randomBytes(6).toString('hex');
  const uploads = wheels.map((w) => ({ local: join(repoDir, w.filename), tmp: posix.join(cacheDir, `.${w.filename}.tmp-${suffix}`), final: posix.join(cacheDir, w.filename), sha256: w.sha256 }));
  const limit = new Semaphore(PUSH_CONCURRENCY);
  await Promise.all(uploads.map((u) => limit.run(() => conn.put(u.local, u.tmp, { mode: 0o644 }))));
  const result = await conn.exec(pythonScriptArgv('vdeploy-push', FINALIZE_UPLOADS_SCRIPT), {
    stdin: JSON.stringify(uploads.map(({ tmp, final, sha256 }) => ({ tmp, final, sha256 }))),
    nothrow: true,
  });
  const out = safeJson<{ bad: Array<{ final: string; got: string }>; bytes: number }>(result.stdout);
  if (result.exitCode !== 0 || !out) throw new RemoteCommandError('finalize wheel uploads', result, { hint: 'check free space and permissions of the wheel cache directory' });
  if (out.bad.length > 0) {
    throw new VdeployError(`uploaded wheel${out.bad.length > 1 ? 's' : ''} arrived corrupted: ${out.bad.map((b) => posix.basename(b.final)).join(', ')}`, {
      hint: 'run the deploy again; if it repeats, check the network and the disk of the host',
    });
  }
  return out.bytes;
}


export function safeJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
