/**
 * The wheel repository's lock (`<repo>/.vdeploy.lock`), held around every read-modify-append of the
 * repository so two vdeploy processes never decide on the same stale view.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import lockfile from 'proper-lockfile';
import { VdeployError } from '../errors.js';

export const LOCK_NAME = '.vdeploy.lock';
/** A lock whose holder stopped refreshing it (killed, machine slept) this long ago is taken over. */
const STALE_MS = 10_000;
const DEFAULT_WAIT_MS = 30_000;

export interface RepoLockOptions {
  /** How long to wait for another process's lock before giving up (default 30 s). */
  waitMs?: number;
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
  try {
    release = await lockfile.lock(dir, {
      lockfilePath,
      realpath: false,
      stale: STALE_MS,
      retries: retriesFor(waitMs),
      onCompromised: (err) => {
        compromised = err;
      },
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
  let result: T;
  try {
    result = await fn();
  } finally {
    await release().catch(() => {}); // already released == compromised, reported below
  }
  if (compromised)
    throw new VdeployError(`${lockfilePath}: lost the repository lock while working (${compromised.message})`, {
      hint: 'Another process took the lock over (this one stalled for over 10 s?); check release_log and retry.',
    });
  return result;
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
