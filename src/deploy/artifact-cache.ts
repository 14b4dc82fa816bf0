/**
 * The local artifact cache (`<localCacheDir>/artifacts/`): the release tars builders packed, kept on
 * the controller so the next deploy of the same group (same interpreter fingerprint and desired set)
 * ships from here without a build. Layout:
 *   <digest>.tar                  a full artifact (digest: of its manifest)
 *   <digest>.from-<base16>.tar    a delta from the release whose digest starts with base16
 *   <digest>.json                 what it is ({group, fingerprint, desired, digest, bytes, sha256, ...})
 *   groups/<groupkey>.json        {digest}: the group's newest full artifact
 * Like every cache here it is an optimization: a missing or corrupt file reads as "not cached", never
 * as an error. Tars arrive under a temporary name and are renamed once their sha256 matched.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { VdeployError } from '../errors.js';
import { localCacheDir, readCacheFile, writeCacheFile } from '../local-cache.js';
import { hashFile } from '../wheels/validate-wheel.js';

/** Default size limit of the cache (deployfile `ship.cacheMegabytes`). */
export const DEFAULT_CACHE_MEGABYTES = 2048;

/** Temporary files this old are left over from a killed run. */
const STALE_TEMP_MS = 60 * 60 * 1000;

export interface ArtifactMeta {
  group: string;
  fingerprint: string;
  desired: string[];
  digest: string;
  /** The full tar's size and sha256. */
  bytes: number;
  sha256: string;
  created: string;
  /** The builder's release id and path (the paths inside the tar name it). */
  releaseId: string | null;
  sourcePath: string;
  /** Deltas kept for this digest, by the first 16 characters of their base. */
  deltas?: Record<string, { base: string; bytes: number; sha256: string }>;
}

/** A tar in the cache, ready to upload. */
export interface CachedTar {
  path: string;
  name: string;
  bytes: number;
  sha256: string;
}

export interface CachedArtifact {
  meta: ArtifactMeta;
  full: CachedTar;
}

export function artifactsDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(localCacheDir(env), 'artifacts');
}

export const fullTarName = (digest: string): string => `${digest}.tar`;
export const deltaTarName = (digest: string, base: string): string => `${digest}.from-${base.slice(0, 16)}.tar`;

/** The full artifact cached for a group key, if its tar is still there (used by the planner). */
export function cachedGroup(key: string, env: NodeJS.ProcessEnv = process.env): CachedArtifact | undefined {
  const pointer = readCacheFile(join(artifactsDir(env), 'groups', `${key}.json`), env) as { digest?: unknown } | undefined;
  if (!pointer || typeof pointer.digest !== 'string') return undefined;
  const found = cachedArtifact(pointer.digest, env);
  return found && found.meta.group === key ? found : undefined;
}

/** The full artifact with this digest, if the cache holds it whole (its size as recorded). */
export function cachedArtifact(digest: string, env: NodeJS.ProcessEnv = process.env): CachedArtifact | undefined {
  if (!/^[0-9a-f]{16,128}$/.test(digest)) return undefined;
  const meta = readMeta(digest, env);
  if (!meta) return undefined;
  const full = tarIfWhole(env, fullTarName(digest), meta.bytes, meta.sha256);
  return full ? { meta, full } : undefined;
}

/** The delta from `base` to `digest`, if the cache holds it. */
export function cachedDelta(digest: string, base: string, env: NodeJS.ProcessEnv = process.env): CachedTar | undefined {
  const meta = readMeta(digest, env);
  const d = meta?.deltas?.[base.slice(0, 16)];
  if (!d || d.base !== base) return undefined;
  return tarIfWhole(env, deltaTarName(digest, base), d.bytes, d.sha256);
}

function readMeta(digest: string, env: NodeJS.ProcessEnv): ArtifactMeta | undefined {
  const meta = readCacheFile(join(artifactsDir(env), `${digest}.json`), env) as ArtifactMeta | undefined;
  if (!meta || typeof meta !== 'object' || meta.digest !== digest || typeof meta.sha256 !== 'string' || typeof meta.bytes !== 'number') return undefined;
  return meta;
}

function tarIfWhole(env: NodeJS.ProcessEnv, name: string, bytes: number, sha256: string): CachedTar | undefined {
  const path = join(artifactsDir(env), name);
  try {
    return statSync(path).size === bytes ? { path, name, bytes, sha256 } : undefined;
  } catch {
    return undefined;
  }
}

/** Mark a tar as used now: pruning removes the least recently used first. */
export function touchArtifact(path: string): void {
  try {
    const now = new Date();
    utimesSync(path, now, now);
  } catch {
    // Gone meanwhile: the next lookup says so.
  }
}

/**
 * Put a tar into the cache: `write` fills a temporary file, whose sha256 must then be `sha256`;
 * only then is it renamed to `name`. On any failure the temporary file is removed and this rejects.
 */
export async function storeTar(name: string, sha256: string, write: (tmp: string) => Promise<void>, env: NodeJS.ProcessEnv = process.env): Promise<CachedTar> {
  const dir = artifactsDir(env);
  const path = join(dir, name);
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await mkdir(dir, { recursive: true });
    await write(tmp);
    const got = await hashFile(tmp);
    if (got.sha256 !== sha256) {
      throw new VdeployError(`artifact ${name}: sha256 mismatch after download (expected ${sha256.slice(0, 12)}…, got ${got.sha256.slice(0, 12)}…)`, {
        hint: 'run the deploy again; if it repeats, check the network and the builder host',
      });
    }
    await rename(tmp, path);
    return { path, name, bytes: got.size, sha256 };
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
}

/** Record what a stored full tar (and its delta, if any) is, and point its group at it. */
export function recordArtifact(meta: ArtifactMeta, env: NodeJS.ProcessEnv = process.env): void {
  const dir = artifactsDir(env);
  const old = readMeta(meta.digest, env);
  writeCacheFile(join(dir, `${meta.digest}.json`), { ...meta, deltas: { ...old?.deltas, ...meta.deltas } }, env);
  writeCacheFile(join(dir, 'groups', `${meta.group}.json`), { digest: meta.digest }, env);
}

/** Drop an artifact a host found bad (and its group's pointer to it): never shipped from here again. */
export function forgetArtifact(group: string, digest: string, env: NodeJS.ProcessEnv = process.env): void {
  const dir = artifactsDir(env);
  const names = listDir(dir).filter((n) => n === fullTarName(digest) || n === `${digest}.json` || (n.startsWith(`${digest}.from-`) && n.endsWith('.tar')));
  for (const path of [...names.map((n) => join(dir, n)), join(dir, 'groups', `${group}.json`)]) {
    try {
      rmSync(path, { force: true });
    } catch {
      // Left for prune: cachedGroup still finds a pointer, and the next receive fails the same way.
    }
  }
}

export interface PruneResult {
  /** The tar files removed, oldest use first. */
  removed: Array<{ name: string; bytes: number }>;
  freedBytes: number;
  /** What the cache holds afterwards. */
  keptBytes: number;
  limitBytes: number | null;
}

/**
 * Remove the least recently used tars (by mtime: a use touches it) until the cache is within
 * `megabytes`, or everything with `all`. Records and group pointers of removed tars go with them;
 * stale temporary files always go. Unreadable entries are skipped, not errors.
 */
export async function pruneArtifacts(options: { megabytes?: number; all?: boolean }, env: NodeJS.ProcessEnv = process.env): Promise<PruneResult> {
  const dir = artifactsDir(env);
  const limitBytes = options.all ? 0 : Math.max(0, options.megabytes ?? DEFAULT_CACHE_MEGABYTES) * 1024 * 1024;
  const tars: Array<{ name: string; bytes: number; mtime: number }> = [];
  const result: PruneResult = { removed: [], freedBytes: 0, keptBytes: 0, limitBytes: options.all ? null : limitBytes };
  for (const name of listDir(dir)) {
    const info = statOf(join(dir, name));
    if (!info?.isFile()) continue;
    if (name.includes('.tmp-')) {
      if (options.all || Date.now() - info.mtimeMs > STALE_TEMP_MS) await removeFile(join(dir, name), name, info.size, result);
    } else if (name.endsWith('.tar')) tars.push({ name, bytes: info.size, mtime: info.mtimeMs });
  }
  tars.sort((a, b) => a.mtime - b.mtime || (a.name < b.name ? -1 : 1));
  let total = tars.reduce((sum, t) => sum + t.bytes, 0);
  for (const t of tars) {
    if (total <= limitBytes && !options.all) break;
    if (await removeFile(join(dir, t.name), t.name, t.bytes, result)) total -= t.bytes;
  }
  result.keptBytes = total;
  await dropOrphans(dir, options.all === true, env);
  return result;
}

async function removeFile(path: string, name: string, bytes: number, result: PruneResult): Promise<boolean> {
  try {
    await rm(path);
  } catch {
    return false;
  }
  result.removed.push({ name, bytes });
  result.freedBytes += bytes;
  return true;
}

/** Records whose full tar is gone, and group pointers to them: nothing can use them any more. */
async function dropOrphans(dir: string, all: boolean, env: NodeJS.ProcessEnv): Promise<void> {
  for (const name of listDir(dir)) {
    if (!name.endsWith('.json')) continue;
    const digest = name.slice(0, -'.json'.length);
    if (all || !existsSync(join(dir, fullTarName(digest)))) await rm(join(dir, name), { force: true }).catch(() => {});
  }
  const groups = join(dir, 'groups');
  for (const name of listDir(groups)) {
    const pointer = readCacheFile(join(groups, name), env) as { digest?: unknown } | undefined;
    const live = typeof pointer?.digest === 'string' && existsSync(join(dir, fullTarName(pointer.digest)));
    if (all || !live) await rm(join(groups, name), { force: true }).catch(() => {});
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function statOf(path: string): import('node:fs').Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
