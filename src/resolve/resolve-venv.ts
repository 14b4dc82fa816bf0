/**
 * Resolves one venv's requirements against the wheel repository: the newest released version of each
 * project that satisfies every specifier on it and has a wheel the venv's interpreter can install,
 * and the dependency closure of those wheels' Requires-Dist, markers and extras evaluated for that
 * interpreter — the set `pip install --no-index --find-links <repo>` would install.
 *
 * The search is pip's (resolvelib's) in outline: pin one project at a time, newest candidate first, in
 * pip's order of preference; when a pin meets a requirement it can't satisfy, back up and try the next
 * candidate. A pin that a requirement found later rules out is chosen again, as resolvelib does.
 * Backing up jumps straight to the most recent pin that had a part in the conflict
 * (conflict-directed backjumping), so unrelated pins are not retried combinatorially.
 */
import { basename } from 'node:path';
import type { InterpreterFacts } from '../facts/types.js';
import { evaluateMarker } from '../requirements/markers.js';
import type { HashAlgorithm, RequirementLine } from '../requirements/requirements-file.js';
import { containsVersion, parseSpecifier, type SpecifierClause } from '../requirements/specifier.js';
import type { ReleasedWheel } from '../wheels/repository.js';
import { BadMetadata, CandidateIndex, type Candidate } from './candidates.js';
import { explainFailure, type Demand, type Failure } from './explain-failure.js';
import { hashMismatch, steerByHashes } from './hash-pins.js';

export interface WheelDependencies {
  requiresDist: string[];
  requiresPython?: string;
  /** Provides-Extra; when given, extras a wheel does not provide are ignored (as pip does). */
  providesExtra?: string[];
}

export interface ResolvedPackage {
  /** PEP 503 normalized name. */
  key: string;
  /** As released. */
  name: string;
  version: string;
  /** The chosen wheel file in the repository. */
  filename: string;
  /** From the release log line, else computed from the file (needed for --require-hashes). */
  sha256: string;
  /** Who asked for it: "requirements.txt:3" for a top-level requirement, or the dependent's key (e.g. "django"). */
  requiredBy: string[];
}

export type Resolution =
  | { ok: true; packages: ResolvedPackage[] }
  /** One line naming the requirement, who needs it and what the repository has (and why those don't fit). */
  | { ok: false; message: string; hint: string };

export interface ResolveInput {
  requirements: readonly RequirementLine[];
  released: readonly ReleasedWheel[];
  interpreter: InterpreterFacts;
  /** Requires-Dist / Requires-Python of a released wheel (read lazily: only for wheels the resolver considers). */
  dependenciesOf(wheel: ReleasedWheel): Promise<WheelDependencies>;
  /** sha256 of a released wheel without one in the log. */
  sha256Of(wheel: ReleasedWheel): Promise<string>;
  /** Another digest of a released wheel's file, for `--hash=sha384:`/`sha512:` pins (unchecked without it). */
  digestOf?(wheel: ReleasedWheel, algorithm: Exclude<HashAlgorithm, 'sha256'>): Promise<string>;
}

/** Pins tried before giving up: far more than any real repository needs, small enough to stay fast. */
const MAX_ATTEMPTS = 5000;

type Pins = ReadonlyMap<string, Candidate>;

interface Graph {
  /** Every requirement on each project, in discovery order (top-level first). */
  demands: Map<string, Demand[]>;
  depth: Map<string, number>;
}

type Outcome =
  | { ok: true; pins: Pins; graph: Graph }
  /**
   * `failure`: the first dead end met (the one under the newest candidates); `cause`: the pinned
   * projects whose choice led to the failure (changing any other can't help).
   */
  | { ok: false; failure: Failure; cause: Set<string> };

class GaveUp extends Error {}

export async function resolveVenv(input: ResolveInput): Promise<Resolution> {
  const env = input.interpreter.markers;
  const topLevel: Demand[] = [];
  const lines: RequirementLine[] = [];
  for (const line of input.requirements) {
    const req = line.requirement;
    // pip skips ("Ignoring …") a requirement whose marker does not match the environment.
    if (req.marker && !evaluateMarker(req.marker, env)) continue;
    lines.push(line);
    topLevel.push(toDemand(req, null, `${basename(line.file)}:${line.line}`));
  }
  const released = await steerByHashes(lines, input);
  const index = new CandidateIndex(released, input.interpreter, (w) => input.dependenciesOf(w));
  const requestedOrder = new Map<string, number>();
  topLevel.forEach((d, i) => requestedOrder.has(d.key) || requestedOrder.set(d.key, i));

  let attempts = 0;

  /** The requirements the pins imply: top-level plus each pinned project's dependencies for its extras. */
  const expand = async (pins: Pins): Promise<Graph> => {
    let extras = new Map<string, string[]>();
    for (;;) {
      const demands = new Map<string, Demand[]>();
      const add = (d: Demand) => demands.set(d.key, [...(demands.get(d.key) ?? []), d]);
      topLevel.forEach(add);
      // A Map iterator also visits keys added while iterating: this walks the graph breadth-first.
      for (const key of demands.keys()) {
        const pin = pins.get(key);
        if (!pin) continue;
        for (const dep of await index.dependencies(pin, extras.get(key) ?? []))
          add(toDemand(dep.requirement, pin, `${pin.name} ${pin.version}`, dep.clauses));
      }
      const requested = new Map([...demands].map(([key, ds]) => [key, [...new Set(ds.flatMap((d) => d.extras))].sort()]));
      // Extras only grow, so this settles; usually at once.
      if ([...pins.keys()].every((k) => (requested.get(k) ?? []).join(',') === (extras.get(k) ?? []).join(','))) {
        return { demands, depth: depths(demands) };
      }
      extras = requested;
    }
  };

  const search = async (given: Pins): Promise<Outcome> => {
    if (++attempts > MAX_ATTEMPTS) throw new GaveUp();
    const graph = await expand(given);
    // A pin nothing requires any more (its dependent was re-chosen) is dropped.
    const pins = new Map([...given].filter(([key]) => graph.demands.has(key)));
    const next = pickNext(graph, pins, requestedOrder);
    if (next === undefined) return { ok: true, pins, graph };

    const demands = graph.demands.get(next)!;
    const cause = causeOf(graph, next);
    let first: Failure | undefined;
    for (const candidate of index.matching(next, clausesOf(demands))) {
      if ((await index.pythonMismatch(candidate)) !== undefined) continue;
      const outcome = await search(new Map(pins).set(next, candidate));
      if (outcome.ok) return outcome;
      // This pin played no part in the failure: no other candidate for it can help either.
      if (!outcome.cause.has(next)) return outcome;
      for (const key of outcome.cause) if (key !== next) cause.add(key);
      first ??= outcome.failure;
    }
    return { ok: false, failure: first ?? { key: next, demands }, cause };
  };

  let outcome: Outcome;
  try {
    outcome = await search(new Map());
  } catch (err) {
    if (err instanceof BadMetadata) return { ok: false, message: err.message, hint: err.hint ?? '' };
    if (err instanceof GaveUp)
      return {
        ok: false,
        message: `gave up resolving after ${MAX_ATTEMPTS} attempts: the requirements and the released wheels conflict in too many ways`,
        hint: 'Pin the versions you want (name==version) in the requirements file so fewer combinations need trying.',
      };
    throw err;
  }
  if (!outcome.ok) return { ok: false, ...(await explainFailure(outcome.failure, index, input.interpreter)) };
  const packages = await describePins(outcome.pins, outcome.graph, input.sha256Of);
  const mismatch = await hashMismatch(lines, packages, input);
  return mismatch ? { ok: false, ...mismatch } : { ok: true, packages };
}

function toDemand(
  req: RequirementLine['requirement'],
  parent: Candidate | null,
  label: string,
  clauses?: SpecifierClause[],
): Demand {
  // Requirement.specifier is already validated and normalized: parsing it again can't fail.
  const spec = clauses ?? parseSpecifier(req.specifier);
  const parsed = Array.isArray(spec) ? spec : spec.ok ? spec.clauses : [];
  return { key: req.key, name: req.name, specifier: req.specifier, clauses: parsed, extras: req.extras, parent: parent?.key ?? null, label };
}

function clausesOf(demands: readonly Demand[]): SpecifierClause[] {
  return demands.flatMap((d) => d.clauses);
}

/** pip's inferred depth: 1 for top-level requirements, else one more than the shallowest dependent. */
function depths(demands: Map<string, Demand[]>): Map<string, number> {
  const depth = new Map<string, number>();
  for (let changed = true; changed; ) {
    changed = false;
    for (const [key, ds] of demands) {
      let best = Infinity;
      for (const d of ds) best = Math.min(best, d.parent === null ? 1 : (depth.get(d.parent) ?? Infinity) + 1);
      if (best < (depth.get(key) ?? Infinity)) {
        depth.set(key, best);
        changed = true;
      }
    }
  }
  return depth;
}

/**
 * The next project to pin: one not pinned yet, or pinned at a version a requirement found since rules
 * out — resolvelib re-pins those in place rather than backtracking. Chosen by pip's preference: any
 * `==`/`===` requirement first, then shallowest, then in the order the user requested, then projects
 * with a specifier, then by name.
 */
function pickNext(graph: Graph, pins: Pins, requestedOrder: Map<string, number>): string | undefined {
  let best: { key: string; rank: Array<number | string> } | undefined;
  for (const [key, demands] of graph.demands) {
    const clauses = clausesOf(demands);
    const pin = pins.get(key);
    if (pin && containsVersion(clauses, pin.version, true)) continue;
    const rank = [
      clauses.some((c) => c.operator.startsWith('==')) ? 0 : 1,
      graph.depth.get(key) ?? Infinity,
      requestedOrder.get(key) ?? Infinity,
      clauses.length > 0 ? 0 : 1,
      key,
    ];
    if (!best || compareRanks(rank, best.rank) < 0) best = { key, rank };
  }
  return best?.key;
}

function compareRanks(a: Array<number | string>, b: Array<number | string>): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return 0;
}

/**
 * The pinned projects that put the requirements on `key` there: its dependents and, transitively,
 * theirs (another version of any of them might not require it, or not that way).
 */
function causeOf(graph: Graph, key: string): Set<string> {
  const cause = new Set<string>();
  const stack = [key];
  while (stack.length > 0) {
    for (const d of graph.demands.get(stack.pop()!) ?? []) {
      if (d.parent !== null && !cause.has(d.parent)) {
        cause.add(d.parent);
        stack.push(d.parent);
      }
    }
  }
  return cause;
}

async function describePins(pins: Pins, graph: Graph, sha256Of: (w: ReleasedWheel) => Promise<string>): Promise<ResolvedPackage[]> {
  const keys = [...pins.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return Promise.all(
    keys.map(async (key) => {
      const pin = pins.get(key)!;
      const requiredBy = [...new Set((graph.demands.get(key) ?? []).map((d) => d.parent ?? d.label))];
      return {
        key,
        name: pin.name,
        version: pin.version,
        filename: pin.wheel.filename,
        sha256: pin.wheel.sha256 ?? (await sha256Of(pin.wheel)),
        requiredBy,
      };
    }),
  );
}
