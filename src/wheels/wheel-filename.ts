/**
 * PEP 427 wheel filenames and the tag compatibility check built on them.
 * `{distribution}-{version}(-{build tag})?-{python tag}-{abi tag}-{platform tag}.whl`
 */
import { valid } from '@renovatebot/pep440';
import { VdeployError } from '../errors.js';

export interface WheelFilename {
  /** The distribution part as written in the filename (escaped: `-` became `_`). */
  name: string;
  version: string;
  build?: string;
  /** Compressed tag sets (`py2.py3`) split on '.'. */
  pythonTags: string[];
  abiTags: string[];
  platformTags: string[];
  filename: string;
}

const FORMAT = 'expected name-version(-build)-pytag-abitag-platform.whl';
const HINT = "Use the file the build tool wrote (pip wheel, python -m build) under its original name; don't rename wheels.";
const NAME_RE = /^[A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?$/;
const TAG_RE = /^[A-Za-z0-9_]+$/;

export { normalizeName } from '../requirements/names.js';

/**
 * Parses a wheel's file name (not a path). `label` is what error messages call the file (the path the
 * user typed), defaulting to the filename itself.
 */
export function parseWheelFilename(filename: string, label: string = filename): WheelFilename {
  const fail = (why: string): never => {
    throw new VdeployError(`${label}: not a PEP 427 wheel filename: ${why}`, { hint: HINT });
  };
  if (!filename.endsWith('.whl')) fail(`does not end in .whl (${FORMAT})`);
  const parts = filename.slice(0, -'.whl'.length).split('-');
  if (parts.length !== 5 && parts.length !== 6)
    fail(`${parts.length} dash-separated part${parts.length === 1 ? '' : 's'}, ${FORMAT}`);
  const [name, version] = parts as [string, string];
  const build = parts.length === 6 ? parts[2] : undefined;
  const [python, abi, platform] = parts.slice(-3) as [string, string, string];
  if (!NAME_RE.test(name)) fail(`invalid distribution name "${name}"`);
  if (valid(version) === null) fail(`"${version}" is not a PEP 440 version`);
  // PEP 427: the build tag must start with a digit (it sorts wheels of the same version).
  if (build !== undefined && !/^\d[A-Za-z0-9_.]*$/.test(build)) fail(`build tag "${build}" must start with a digit`);
  const splitTags = (set: string, what: string): string[] => {
    const tags = set.split('.');
    if (tags.some((t) => !TAG_RE.test(t))) fail(`invalid ${what} tag "${set}"`);
    return tags;
  };
  return {
    name,
    version,
    ...(build === undefined ? {} : { build }),
    pythonTags: splitTags(python, 'python'),
    abiTags: splitTags(abi, 'abi'),
    platformTags: splitTags(platform, 'platform'),
    filename,
  };
}

/** Every `py-abi-plat` triple a (possibly compressed) wheel tag set stands for, lowercased. */
export function expandWheelTags(wheel: Pick<WheelFilename, 'pythonTags' | 'abiTags' | 'platformTags'>): string[] {
  const tags: string[] = [];
  for (const py of wheel.pythonTags)
    for (const abi of wheel.abiTags)
      for (const plat of wheel.platformTags) tags.push(`${py}-${abi}-${plat}`.toLowerCase());
  return tags;
}

/**
 * How well a wheel fits an interpreter: the index in `supportedTags` (most preferred first, as
 * `packaging.tags.sys_tags()` lists them) of the best tag the wheel carries, or undefined if the wheel
 * cannot be installed there. Lower is better, so several candidate wheels can be ranked the way pip does.
 */
export function rankWheelTags(
  wheel: Pick<WheelFilename, 'pythonTags' | 'abiTags' | 'platformTags'>,
  supportedTags: readonly string[],
): number | undefined {
  const mine = new Set(expandWheelTags(wheel));
  const index = supportedTags.findIndex((t) => mine.has(t.toLowerCase()));
  return index === -1 ? undefined : index;
}

/** Whether the wheel can be installed by an interpreter supporting `supportedTags` (`py-abi-plat` strings). */
export function isWheelCompatible(
  wheel: Pick<WheelFilename, 'pythonTags' | 'abiTags' | 'platformTags'>,
  supportedTags: readonly string[],
): boolean {
  return rankWheelTags(wheel, supportedTags) !== undefined;
}
