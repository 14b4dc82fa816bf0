/**
 * The wheel repository's lock (`<repo>/.vdeploy.lock`), held around every read-modify-append of the
 * repository so two vdeploy processes never decide on the same stale view. Its holder is written
 * beside it (`.vdeploy.lock.owner`: pid, host, since), so that a waiter can say whom it waits for.
 */
import { mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import lockfile from 'proper-lockfile';
import { VdeployError } from '../errors.js';
import { processExists } from '../process-exists.js';

export const LOCK_NAME = '.vdeploy.lock';
const OWNER_NAME = '.vdeploy.lock.owner';
/** A lock whose holder stopped refreshing it (killed, machine slept) this long ago is taken over. */
const STALE_MS = 10_000;
const DEFAULT_WAIT_MS = 30_000;

export interface RepoLockOptions {
  /** How long to wait for another process's lock before giving up (default 30 s). */
  waitMs?: number;
  /** Called once, when the lock is held by another process and this one starts waiting. */
  onWait?: (wait: RepoLockWait) => void;
}

/** Who holds the lock this process waits for, as far as it can tell. */
export interface RepoLockWait {
  lockfile: string;
  /** From the owner file; absent if the holder did not write one (yet). */
  holder?: { pid: number; hostname: string; since: string };
  /** The holder is on this machine and its process no longer exists (it was killed). */
  holderGone: boolean;
  /** When the lock counts as abandoned and is taken over, if its holder stops refreshing it. */
  staleAt?: string;
}

/**
 * Runs `fn` holding the repository lock, waiting up to `waitMs` for another holder. Not reentrant: don't
 * nest calls for the same repository in one process.
 */
export async function withRepoLock<T>(repoDir: string, fn: () => Promise<T>, options: RepoLockOptions = {}): Promise<T> {
  const dir = resolve(repoDir);
  const lockfilePath = join(dir, LOCK_NAME);
  await mkdir(dir, { recursive: true });
  const waitMs = options.waitMs ?? DEFAULT_WAIT_MS;
  // proper-lockfile's default reaction to losing the lock is to throw from a timer, killing the process;
  // remember it instead and fail the operation once fn is done.
  let compromised: Error | undefined;
  let release: () => Promise<void>;
  const lockOptions = {
    lockfilePath,
    realpath: false,
    stale: STALE_MS,
    onCompromised: (err: Error) => {
      compromised = err;
    },
  };
  try {
    // One try first: if another process holds it, say whom this one waits for before waiting.
    release = await lockfile.lock(dir, { ...lockOptions, retries: 0 }).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ELOCKED' || waitMs <= 0) throw err;
      options.onWait?.(await describeHolder(dir, lockfilePath));
      return lockfile.lock(dir, { ...lockOptions, retries: retriesFor(waitMs) });
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOCKED')
      throw new VdeployError(`${lockfilePath}: the wheel repository is locked by another vdeploy process (waited ${waitMs < 1000 ? `${waitMs} ms` : `${Math.round(waitMs / 1000)} s`})`, {
        hint: `Let the other vdeploy finish and retry. A lock left by a killed process is taken over by itself after ${STALE_MS / 1000} s.`,
      });
    throw new VdeployError(`${lockfilePath}: cannot lock the wheel repository (${(err as Error).message})`, {
      hint: 'Check that the repository directory is writable.',
      cause: err,
    });
  }
  const ownerFile = join(dir, OWNER_NAME);
  // Best effort: it only feeds a waiter's message.
  await writeFile(ownerFile, JSON.stringify({ pid: process.pid, hostname: hostname(), since: new Date().toISOString() })).catch(() => {});
  let result: T;
  try {
    result = await fn();
  } finally {
    await unlink(ownerFile).catch(() => {});
    await release().catch(() => {}); // already released == compromised, reported below
  }
  if (compromised)
    throw new VdeployError(`${lockfilePath}: lost the repository lock while working (${compromised.message})`, {
      hint: 'Another process took the lock over (this one stalled for over 10 s?); check release_log and retry.',
    });
  return result;
}

async function describeHolder(dir: string, lockfilePath: string): Promise<RepoLockWait> {
  const wait: RepoLockWait = { lockfile: lockfilePath, holderGone: false };
  const refreshed = await stat(lockfilePath).catch(() => undefined);
  if (refreshed) wait.staleAt = new Date(refreshed.mtimeMs + STALE_MS).toISOString();
  try {
    const owner = JSON.parse(await readFile(join(dir, OWNER_NAME), 'utf8')) as { pid?: unknown; hostname?: unknown; since?: unknown };
    if (typeof owner.pid === 'number' && typeof owner.hostname === 'string' && typeof owner.since === 'string') {
      wait.holder = { pid: owner.pid, hostname: owner.hostname, since: owner.since };
      wait.holderGone = owner.hostname === hostname() && !processExists(owner.pid);
    }
  } catch {
    // No owner file (a holder that just got the lock, or an older vdeploy): wait without a name.
  }
  return wait;
}

/**
 * Retry schedule that keeps trying for about `waitMs`: quick first retries (locks are held for
 * milliseconds), then a steady 250 ms.
 */
function retriesFor(waitMs: number): { retries: number; factor: number; minTimeout: number; maxTimeout: number } {
  const schedule = { factor: 1.5, minTimeout: 10, maxTimeout: 250 };
  let retries = 0;
  for (let total = 0; total < waitMs; retries++) {
    total += Math.min(schedule.minTimeout * schedule.factor ** retries, schedule.maxTimeout);
  }
  return { retries, ...schedule };
}
