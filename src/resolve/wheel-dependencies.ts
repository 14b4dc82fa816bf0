/**
 * What the resolver needs from the wheel files themselves: each wheel's Requires-Dist and
 * Requires-Python (from `*.dist-info/METADATA`) and its sha256 when the release line has none.
 * Both are memoized per filename: one deploy resolves many venvs against the same wheels, and a
 * released wheel's bytes don't change under the same name (add-wheel refuses that without --force).
 * Dependencies are also remembered across runs (wheel-metadata-cache.ts) when given a cache.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { VdeployError } from '../errors.js';
import { parseMetadata } from '../wheels/metadata.js';
import type { ReleasedWheel } from '../wheels/repository.js';
import { digestFile } from '../wheels/validate-wheel.js';
import { readDistInfoText } from '../wheels/wheel-zip.js';
import type { HashAlgorithm } from '../requirements/requirements-file.js';
import type { WheelDependencies } from './resolve-venv.js';
import type { WheelMetadataCache } from './wheel-metadata-cache.js';

export interface WheelDependencyReader {
  dependenciesOf(wheel: ReleasedWheel): Promise<WheelDependencies>;
  sha256Of(wheel: ReleasedWheel): Promise<string>;
  /** For `--hash=sha384:`/`sha512:` pins: the file's digest (the release line records only sha256). */
  digestOf(wheel: ReleasedWheel, algorithm: Exclude<HashAlgorithm, 'sha256'>): Promise<string>;
}

export function createWheelDependencyReader(repoDir: string, options: { cache?: WheelMetadataCache } = {}): WheelDependencyReader {
  const dependencies = new Map<string, Promise<WheelDependencies>>();
  const hashes = new Map<string, Promise<string>>();

  const wheelFile = async (wheel: ReleasedWheel): Promise<{ path: string; info: { size: number; mtimeMs: number; ino: number } }> => {
    const path = join(repoDir, wheel.filename);
    const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw new VdeployError(`${path}: cannot read (${err.code ?? err.message})`, { hint: 'Check the repository permissions.' });
    });
    if (!info?.isFile())
      throw new VdeployError(`${path}: ${wheel.name} ${wheel.version} is released in release_log but its wheel file is missing from the repository`, {
        hint: `Put the wheel back with \`vdeploy add-wheel <path to ${wheel.filename}>\`.`,
      });
    return { path, info };
  };

  const readDependencies = async (wheel: ReleasedWheel): Promise<WheelDependencies> => {
    const { path, info } = await wheelFile(wheel);
    const cached = options.cache?.get(path, info);
    if (cached) return cached;
    const fail = (why: string, hint = 'Re-add a good copy of the wheel with `vdeploy add-wheel --force`.') =>
      new VdeployError(`${path}: ${why}`, { hint });
    const { distInfo, text } = await readDistInfoText(path, wheel.wheel, 'METADATA', fail);
    const metadata = parseMetadata(text, `${path}: ${distInfo}/METADATA`);
    const deps: WheelDependencies = {
      requiresDist: metadata.requiresDist,
      ...(metadata.requiresPython === undefined ? {} : { requiresPython: metadata.requiresPython }),
      providesExtra: metadata.providesExtra,
    };
    options.cache?.remember(path, info, deps);
    return deps;
  };

  const readDigest = async (wheel: ReleasedWheel, algorithm: string): Promise<string> => {
    const { path } = await wheelFile(wheel);
    const fail = (why: string) => new VdeployError(`${path}: ${why}`, { hint: 'Check the repository permissions.' });
    return (await digestFile(path, algorithm, fail)).digest;
  };

  return {
    dependenciesOf: (wheel) => memoize(dependencies, wheel.filename, () => readDependencies(wheel)),
    sha256Of: (wheel) => memoize(hashes, wheel.filename, () => readDigest(wheel, 'sha256')),
    digestOf: (wheel, algorithm) => memoize(hashes, `${algorithm}:${wheel.filename}`, () => readDigest(wheel, algorithm)),
  };
}

/** One read per key; a failed read is forgotten so a later call (after a fix) tries again. */
function memoize<T>(cache: Map<string, Promise<T>>, key: string, read: () => Promise<T>): Promise<T> {
  let pending = cache.get(key);
  if (!pending) {
    pending = read();
    cache.set(key, pending);
    pending.catch(() => cache.delete(key));
  }
  return pending;
}
