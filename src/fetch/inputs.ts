/**
 * What a target's pip run downloads: its requirements (top-level lines, read as deploy reads them) and,
 * unless --upgrade, constraints holding every project already in the repository at the version the
 * target's venvs would get from it, so fetching for a new platform fills in the same versions instead
 * of upgrading the fleet behind the user's back.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { formatRequirement, parseRequirement, satisfiesSpecifier, type Requirement } from '../requirements/pep508.js';
import { readRequirementsFile } from '../requirements/requirements-file.js';
import { rankWheelTags } from '../wheels/wheel-filename.js';
import { compare } from '@renovatebot/pep440';
import type { ReleasedWheel } from '../wheels/repository.js';
import type { FetchTarget } from './targets.js';

export interface TargetInputs {
  requirementFiles: string[];
  specs: string[];
  /** Every top-level requirement (files and specs), for the one-by-one retry and the constraints. */
  topLevel: Requirement[];
}

/** Specs from the command line, checked: pip would take `-e …` or `--pre` for an option. */
export function parseSpecs(specs: readonly string[]): Requirement[] {
  return specs.map((spec) => {
    if (spec.startsWith('-')) {
      throw new ConfigError(`${spec}: not a requirement (an unknown option of vdeploy fetch?)`, { hint: 'give requirements as pip writes them, e.g. `vdeploy fetch "django>=4.2,<5" gunicorn`' });
    }
    return parseRequirement(spec);
  });
}

/**
 * -r files and specs when given (for every target), else the target's venvs' own requirements files.
 * Those must be what deploy accepts; a file given with -r is pip's to read, and may hold what only
 * pip honours (`--index-url`, URLs…): its requirements then just take no part in the one-by-one retry
 * and do not release the repository's versions (--upgrade does).
 */
export async function targetInputs(target: FetchTarget, files: readonly string[], specs: readonly string[]): Promise<TargetInputs> {
  const given = files.length > 0 || specs.length > 0;
  const requirementFiles = given ? [...files] : target.requirements;
  const topLevel: Requirement[] = [];
  for (const file of requirementFiles) {
    const lines = await readRequirementsFile(file).catch((err: unknown) => {
      if (given && err instanceof ConfigError && existsSync(file)) return [];
      throw err;
    });
    topLevel.push(...lines.map((line) => line.requirement));
  }
  topLevel.push(...parseSpecs(specs));
  return { requirementFiles, specs: [...specs], topLevel };
}

/** One requirement as pip takes it on the command line (without --hash: pins are checked at deploy). */
export function specOf(requirement: Requirement): string {
  return formatRequirement(requirement);
}

/**
 * `name==version` for each project in the repository with a wheel for the target: the newest such
 * version (what the target's venvs would get from the repository). Left out: projects with no wheel
 * for the target (nothing to hold; pip chooses), and those a top-level requirement asks another
 * version of.
 */
export function repositoryPins(released: readonly ReleasedWheel[], target: FetchTarget, topLevel: readonly Requirement[]): string[] {
  const best = new Map<string, { name: string; version: string }>();
  for (const wheel of released) {
    if (rankWheelTags(wheel.wheel, target.supportedTags) === undefined) continue;
    const seen = best.get(wheel.normalizedName);
    if (!seen || compare(wheel.version, seen.version) > 0) best.set(wheel.normalizedName, { name: wheel.name, version: wheel.version });
  }
  const pins: string[] = [];
  for (const [key, { name, version }] of [...best].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const asked = topLevel.filter((r) => r.key === key);
    if (asked.some((r) => r.specifier !== '' && !satisfiesSpecifier(version, r.specifier, { prereleases: true }))) continue;
    pins.push(`${name}==${version}`);
  }
  return pins;
}

/** Writes the pins as a constraints file in `dir`; undefined when there are none. */
export async function writeConstraints(dir: string, pins: readonly string[]): Promise<string | undefined> {
  if (pins.length === 0) return undefined;
  const file = join(dir, 'repository-constraints.txt');
  await writeFile(file, `# The versions already in the wheel repository (vdeploy fetch; --upgrade leaves these out)\n${pins.join('\n')}\n`);
  return file;
}
