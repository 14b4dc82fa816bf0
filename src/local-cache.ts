/**
 * vdeploy's cache directory on the machine it runs on, and the JSON files in it. Caches are an
 * optimization, never a reason to fail: a missing, unreadable or corrupt file reads as undefined,
 * and a file that cannot be written is left alone. Writes replace the whole file (temp file +
 * rename), so a reader never sees half of one; they are synchronous, so nothing is left half-done
 * when the process exits.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';

/** $VDEPLOY_CACHE_DIR, else $XDG_CACHE_HOME/vdeploy, else ~/.cache/vdeploy. */
export function localCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  // The XDG spec says a relative XDG_CACHE_HOME is to be ignored.
  if (env.VDEPLOY_CACHE_DIR) return resolve(env.VDEPLOY_CACHE_DIR);
  return xdg && isAbsolute(xdg) ? join(xdg, 'vdeploy') : join(homedir(), '.cache', 'vdeploy');
}

/** The parsed JSON of a cache file (a name in the cache directory, or a path), or undefined when it is missing, unreadable or not JSON. */
export function readCacheFile(name: string, env: NodeJS.ProcessEnv = process.env): unknown {
  try {
    return JSON.parse(readFileSync(cachePath(name, env), 'utf8'));
  } catch {
    return undefined;
  }
}

/** Replace a cache file atomically; silently does nothing when it cannot be written. */
export function writeCacheFile(name: string, data: unknown, env: NodeJS.ProcessEnv = process.env): void {
  const file = cachePath(name, env);
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(temp, JSON.stringify(data));
    renameSync(temp, file);
  } catch {
    try {
      rmSync(temp, { force: true });
    } catch {
      // Nothing more to do: the cache is only an optimization.
    }
  }
}

function cachePath(name: string, env: NodeJS.ProcessEnv): string {
  return isAbsolute(name) ? name : join(localCacheDir(env), name);
}
