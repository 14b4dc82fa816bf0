/**
 * Which git commit a venv runs: its installed packages looked up in the release log, whose lines
 * written by `vdeploy build` carry the commit the wheel was built from (release-log.ts). A pure
 * function, table-tested; status and history call it with what they read.
 */
import { compareVersions } from '../deploy/plan.js';
import { normalizeName } from '../wheels/wheel-filename.js';
import type { ReleasedWheel } from '../wheels/repository.js';

export interface BuiltFrom {
  /** As the release line spells it. */
  name: string;
  version: string;
  commit: string;
  /** The wheel whose release line names the commit. */
  filename: string;
}

export interface InstalledRef {
  /** Any spelling: compared PEP 503-normalized. */
  name: string;
  version: string;
  /** The wheel it was installed from, when known (a history entry's `packages`): picks among several. */
  wheel?: string;
  sha256?: string;
}

/**
 * The installed packages that were built from a commit, sorted by name. A name and version can have
 * several release lines with a commit (wheels for other platforms, a rebuild added with --force):
 * the one matching the installed wheel's filename and hash wins, else the newest line.
 */
export function builtFrom(installed: readonly InstalledRef[], released: readonly ReleasedWheel[]): BuiltFrom[] {
  const withCommit = released.filter((w) => w.commit !== undefined);
  if (withCommit.length === 0) return [];
  const out: BuiltFrom[] = [];
  for (const p of installed) {
    const key = normalizeName(p.name);
    const candidates = withCommit.filter((w) => w.normalizedName === key && compareVersions(w.version, p.version) === 0);
    if (candidates.length === 0) continue;
    const exact = candidates.filter((w) => w.filename === p.wheel && (p.sha256 === undefined || w.sha256 === undefined || w.sha256 === p.sha256));
    const pick = (exact.length > 0 ? exact : candidates).at(-1)!;
    out.push({ name: pick.name, version: pick.version, commit: pick.commit!, filename: pick.filename });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** A history entry's installed set afterwards, with the wheels it names. */
export function entryInstalled(entry: { after: Readonly<Record<string, string>>; packages: ReadonlyArray<{ name: string; version: string; wheel: string; sha256: string }> }): InstalledRef[] {
  const wheels = new Map(entry.packages.map((p) => [normalizeName(p.name), p]));
  return Object.entries(entry.after).map(([key, version]) => {
    const p = wheels.get(normalizeName(key));
    return p && compareVersions(p.version, version) === 0 ? { name: key, version, wheel: p.wheel, sha256: p.sha256 } : { name: key, version };
  });
}

/** `3b18e512dba7`, or `myapp@3b18e512dba7, lib@…` when several packages were built from commits. */
export function shortCommits(built: readonly BuiltFrom[]): string {
  if (built.length === 1) return built[0]!.commit.slice(0, 12);
  return built.map((b) => `${b.name}@${b.commit.slice(0, 12)}`).join(', ');
}
