/**
 * The released wheels seen from one interpreter, the way pip's finder sees a --find-links directory:
 * per project, one wheel per version (the best-ranked tag, then the highest build tag), newest first,
 * filtered by specifiers with pip's pre-release rule, and each wheel's METADATA (Requires-Python,
 * Requires-Dist) read only when the resolver gets to it.
 */
import { compare, explain } from '@renovatebot/pep440';
import type { InterpreterFacts } from '../facts/types.js';
import { evaluateMarker } from '../requirements/markers.js';
import { normalizeName } from '../requirements/names.js';
import { tryParseRequirement, type Requirement } from '../requirements/pep508.js';
import { containsVersion, mentionsPrerelease, parseSpecifier, type SpecifierClause } from '../requirements/specifier.js';
import { VdeployError } from '../errors.js';
import type { ReleasedWheel } from '../wheels/repository.js';
import { rankWheelTags } from '../wheels/wheel-filename.js';
import type { WheelDependencies } from './resolve-venv.js';

/** One version of a project that the interpreter can install: its best wheel. */
export interface Candidate {
  key: string;
  /** As released. */
  name: string;
  version: string;
  wheel: ReleasedWheel;
}

/** Every released version of a project, for explaining why none fits. */
export interface VersionGroup {
  version: string;
  name: string;
  /** Undefined when no wheel of this version has a tag the interpreter supports. */
  candidate?: Candidate;
  /** e.g. `cp312-cp312-win_amd64`: what the (first) wheel is built for, when none is compatible. */
  builtFor: string;
}

export interface Dependency {
  requirement: Requirement;
  clauses: SpecifierClause[];
}

interface WheelInfo {
  requiresDist: Dependency[];
  /** Absent: no Requires-Python, or one pip would ignore (invalid). */
  requiresPython?: { text: string; clauses: SpecifierClause[] };
  /** Normalized; undefined when the reader does not say (then every requested extra counts). */
  providesExtra?: Set<string>;
}

/** Something in a wheel's METADATA that stops resolution outright (pip errors out on it too). */
export class BadMetadata extends VdeployError {}

export class CandidateIndex {
  private readonly groups = new Map<string, VersionGroup[]>();
  private readonly info = new Map<string, Promise<WheelInfo>>();
  private readonly deps = new Map<string, Dependency[]>();
  /** pip compares Requires-Python with `sys.version_info[:3]`, so "3.13.0rc1" counts as 3.13.0. */
  private readonly pythonVersion: string;

  constructor(
    released: readonly ReleasedWheel[],
    private readonly interpreter: InterpreterFacts,
    private readonly dependenciesOf: (wheel: ReleasedWheel) => Promise<WheelDependencies>,
  ) {
    this.pythonVersion = /^\d+(?:\.\d+)*/.exec(interpreter.version)?.[0] ?? interpreter.version;
    const byKey = new Map<string, ReleasedWheel[]>();
    for (const w of released) byKey.set(w.normalizedName, [...(byKey.get(w.normalizedName) ?? []), w]);
    for (const [key, wheels] of byKey) this.groups.set(key, this.groupVersions(key, wheels));
  }

  /** Every released version of `key`, newest first. */
  versionsOf(key: string): VersionGroup[] {
    return this.groups.get(key) ?? [];
  }

  /**
   * The installable versions of `key` that satisfy `clauses`, newest first. Pre-releases as pip 23
   * (packaging 21.3) filters: allowed when a clause names one; with no clauses at all, used only when
   * no final release is compatible; otherwise excluded.
   */
  matching(key: string, clauses: SpecifierClause[]): Candidate[] {
    const compatible = this.versionsOf(key).flatMap((g) => (g.candidate ? [g.candidate] : []));
    if (clauses.length === 0) {
      const finals = compatible.filter((c) => !isPrerelease(c.version));
      return finals.length > 0 ? finals : compatible;
    }
    const allowPre = mentionsPrerelease(clauses);
    return compatible.filter((c) => containsVersion(clauses, c.version, allowPre));
  }

  /** Undefined if the wheel's Requires-Python (if any) admits the interpreter, else that Requires-Python. */
  async pythonMismatch(candidate: Candidate): Promise<string | undefined> {
    const { requiresPython } = await this.wheelInfo(candidate);
    if (!requiresPython) return undefined;
    return containsVersion(requiresPython.clauses, this.pythonVersion, true) ? undefined : requiresPython.text;
  }

  /**
   * The candidate's dependencies when it is requested with `extras`: markers evaluated for this
   * interpreter with `extra` set to "" (the base project) and to each extra the wheel provides
   * (unknown extras are ignored, as pip does with a warning).
   */
  async dependencies(candidate: Candidate, extras: readonly string[]): Promise<Dependency[]> {
    // The search asks again for every pin at every step: evaluate the markers once.
    const memoKey = `${candidate.wheel.filename}[${extras.join(',')}]`;
    let deps = this.deps.get(memoKey);
    if (!deps) this.deps.set(memoKey, (deps = await this.evaluateDependencies(candidate, extras)));
    return deps;
  }

  private async evaluateDependencies(candidate: Candidate, extras: readonly string[]): Promise<Dependency[]> {
    const info = await this.wheelInfo(candidate);
    const valid = extras.filter((e) => !info.providesExtra || info.providesExtra.has(normalizeName(e)));
    const env = this.interpreter.markers;
    return info.requiresDist.filter(({ requirement }) => {
      if (!requirement.marker) return true;
      try {
        return evaluateMarker(requirement.marker, env, ['', ...valid]);
      } catch (err) {
        throw new BadMetadata(`${candidate.wheel.filename}: ${(err as Error).message}`, { hint: (err as VdeployError).hint ?? REBUILD_HINT });
      }
    });
  }

  private groupVersions(key: string, wheels: ReleasedWheel[]): VersionGroup[] {
    const sorted = [...wheels].sort((a, b) => compare(b.version, a.version));
    const groups: VersionGroup[] = [];
    for (let i = 0; i < sorted.length; ) {
      let j = i + 1;
      while (j < sorted.length && compare(sorted[i]!.version, sorted[j]!.version) === 0) j++;
      const same = sorted.slice(i, j);
      const first = same[0]!;
      const best = this.bestWheel(same);
      const w = first.wheel;
      groups.push({
        version: first.version,
        name: first.name,
        ...(best ? { candidate: { key, name: best.name, version: best.version, wheel: best } } : {}),
        builtFor: `${w.pythonTags.join('.')}-${w.abiTags.join('.')}-${w.platformTags.join('.')}`,
      });
      i = j;
    }
    return groups;
  }

  /** pip's order among wheels of one version: best tag rank, then highest build tag. */
  private bestWheel(wheels: ReleasedWheel[]): ReleasedWheel | undefined {
    let best: { wheel: ReleasedWheel; rank: number } | undefined;
    for (const wheel of wheels) {
      const rank = rankWheelTags(wheel.wheel, this.interpreter.supportedTags);
      if (rank === undefined) continue;
      if (!best || rank < best.rank || (rank === best.rank && compareBuildTags(wheel.wheel.build, best.wheel.wheel.build) > 0))
        best = { wheel, rank };
    }
    return best?.wheel;
  }

  private wheelInfo(candidate: Candidate): Promise<WheelInfo> {
    const { filename } = candidate.wheel;
    let pending = this.info.get(filename);
    if (!pending) {
      pending = this.dependenciesOf(candidate.wheel).then((deps) => parseWheelInfo(filename, deps));
      this.info.set(filename, pending);
    }
    return pending;
  }
}

const REBUILD_HINT = 'Fix the package metadata and rebuild the wheel, then add it with `vdeploy add-wheel`.';

function parseWheelInfo(filename: string, deps: WheelDependencies): WheelInfo {
  const requiresDist = deps.requiresDist.map((text) => {
    const parsed = tryParseRequirement(text);
    if (!parsed.ok) throw new BadMetadata(`${filename}: Requires-Dist "${text}" is not a valid requirement (${parsed.reason})`, { hint: REBUILD_HINT });
    const spec = parseSpecifier(parsed.requirement.specifier);
    if (!spec.ok) throw new BadMetadata(`${filename}: Requires-Dist "${text}": ${spec.reason}`, { hint: REBUILD_HINT });
    return { requirement: parsed.requirement, clauses: spec.clauses };
  });
  // pip ignores an invalid Requires-Python (with a warning) rather than refusing the wheel.
  const python = deps.requiresPython === undefined ? undefined : parseSpecifier(deps.requiresPython);
  return {
    requiresDist,
    ...(python?.ok && python.clauses.length > 0 ? { requiresPython: { text: python.text, clauses: python.clauses } } : {}),
    ...(deps.providesExtra ? { providesExtra: new Set(deps.providesExtra.map(normalizeName)) } : {}),
  };
}

export function isPrerelease(version: string): boolean {
  return explain(version)?.is_prerelease ?? false;
}

/** PEP 427 build tags sort by their leading number, then the rest as a string; none sorts lowest. */
function compareBuildTags(a: string | undefined, b: string | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return -1;
  if (b === undefined) return 1;
  const [, an = '0', ar = ''] = /^(\d+)(.*)$/.exec(a) ?? [];
  const [, bn = '0', br = ''] = /^(\d+)(.*)$/.exec(b) ?? [];
  return Number(an) - Number(bn) || (ar < br ? -1 : ar > br ? 1 : 0);
}
