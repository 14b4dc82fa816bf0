/**
 * Recording a new host key (StrictHostKeyChecking accept-new) the way ssh does: one plain line
 * `name keytype base64` appended to the first known_hosts file, the name being `host`, or `[host]:port`
 * off port 22, so `ssh` and `ssh-keygen -F` find it afterwards. The append happens under a lock
 * (`<file>.lock`), after re-reading the file, so concurrent connections and vdeploy processes never
 * add a key twice, nor add one when another was recorded for the host in the meantime.
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import lockfile from 'proper-lockfile';
import { ConnectError } from '../errors.js';
import { hostPortName, keyTypeOf, parseKnownHosts, KnownHosts, type HostKeyVerdict } from './known-hosts.js';

const STALE_MS = 10_000;

export interface RecordedKey {
  file: string;
  /** 1-based line of the new (or already present) entry. */
  line: number;
  /** The host field written, e.g. "[127.0.0.2]:2201". */
  name: string;
  /** False when another connection or process had recorded this very key first. */
  added: boolean;
}

/**
 * Append `keyBlob` for `address`:`port` to `file` unless the file now knows the host. Resolves with
 * where the key is; rejects with `verdict` as a ConnectError-ready value when the file has meanwhile
 * got a different key (changed) or this key revoked: the caller refuses then.
 */
export async function recordHostKey(
  host: string,
  file: string,
  lookupNames: readonly string[],
  address: string,
  port: number,
  keyBlob: Buffer,
): Promise<RecordedKey | Exclude<HostKeyVerdict, { status: 'match' } | { status: 'unknown' }>> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(file, {
      lockfilePath: `${file}.lock`,
      realpath: false,
      stale: STALE_MS,
      retries: { retries: 60, factor: 1.5, minTimeout: 10, maxTimeout: 250 },
      onCompromised: () => {},
    });
  } catch (err) {
    throw new ConnectError(host, `cannot lock ${file} to record the host key of ${host}: ${(err as Error).message}`, {
      hint: `check that ${dirname(file)} is writable; a lock left by a killed vdeploy (${file}.lock) is taken over after ${STALE_MS / 1000}s`,
      cause: err,
    });
  }
  try {
    const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    const current = new KnownHosts([file], parseKnownHosts(text, file));
    const verdict = current.check(lookupNames, port, keyTypeOf(keyBlob) ?? 'unknown', keyBlob);
    if (verdict.status === 'changed' || verdict.status === 'revoked') return verdict;
    const name = hostPortName(address, port);
    if (verdict.status === 'match') {
      const entry = current.lookup(lookupNames, port).find((e) => e.keyBlob.equals(keyBlob));
      return { file, line: entry?.line ?? 0, name, added: false };
    }
    const lines = text === '' ? 0 : text.replace(/\n$/, '').split('\n').length;
    const separator = text === '' || text.endsWith('\n') ? '' : '\n';
    await appendFile(file, `${separator}${name} ${keyTypeOf(keyBlob)} ${keyBlob.toString('base64')}\n`, { mode: 0o644 });
    return { file, line: lines + 1, name, added: true };
  } catch (err) {
    if (err instanceof ConnectError) throw err;
    throw new ConnectError(host, `cannot record the host key of ${host} in ${file}: ${(err as Error).message}`, {
      hint: `check that ${file} is writable, or add the key yourself with \`ssh-keyscan\``,
      cause: err,
    });
  } finally {
    await release().catch(() => {});
  }
}
