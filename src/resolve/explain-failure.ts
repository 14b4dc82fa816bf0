/**
 * Turns a failed resolution into one line for the user: the project, each requirement on it with who
 * made it, and what the repository holds — with, for each version that would otherwise fit, why it
 * doesn't (Requires-Python, no wheel for this interpreter, a pre-release).
 */
import type { InterpreterFacts } from '../facts/types.js';
import { containsVersion, type SpecifierClause } from '../requirements/specifier.js';
import { isPrerelease, type CandidateIndex } from './candidates.js';

/** One requirement on a project, and who made it. */
export interface Demand {
  key: string;
  /** The project name as the requirement writes it. */
  name: string;
  /** Normalized specifier text; '' = any version. */
  specifier: string;
  clauses: SpecifierClause[];
  extras: string[];
  /** The dependent's key; null for a top-level requirement. */
  parent: string | null;
  /** `requirements.txt:3`, or the dependent as `django 5.2.17`. */
  label: string;
}

/** Nothing released satisfies every requirement on `key` for this interpreter. */
export interface Failure {
  key: string;
  demands: Demand[];
}

/** Versions listed in a message before the rest are counted. */
const MAX_LISTED = 12;

export async function explainFailure(
  failure: Failure,
  index: CandidateIndex,
  interpreter: InterpreterFacts,
): Promise<{ message: string; hint: string }> {
  const { key, demands } = failure;
  const name = demands[0]?.name ?? key;
  const target = describeInterpreter(interpreter);
  const has = await describeRepository(failure, index);

  const constrained = demands.filter((d) => d.specifier !== '');
  const who = unique(demands.map((d) => d.label)).join(', ');
  let message: string;
  if (constrained.length === 0) message = `no released wheel of "${name}" fits ${target} (required by ${who})`;
  else if (constrained.length === 1 && unique(demands.map((d) => d.label)).length === 1)
    message = `no released wheel of "${name}" satisfies ${constrained[0]!.specifier} for ${target} (required by ${who})`;
  else {
    const others = unique(demands.filter((d) => d.specifier === '').map((d) => d.label));
    message =
      `no released wheel of "${name}" satisfies ${constrained.map(requirementBy).join(' and ')} for ${target}` +
      (others.length > 0 ? ` (also required by ${others.join(', ')})` : '');
  }

  const hint =
    index.versionsOf(key).length === 0
      ? `Add a ${name} wheel for ${target} with \`vdeploy add-wheel\` (the repository must hold every dependency), or drop the requirement.`
      : constrained.length > 1
        ? `Make the requirements on ${name} agree, or add a ${name} wheel that satisfies all of them with \`vdeploy add-wheel\`.`
        : `Add a ${name} wheel that fits with \`vdeploy add-wheel\`, or change the requirement.`;
  return { message: `${message}; ${has}`, hint };
}

function requirementBy(d: Demand): string {
  return `${d.specifier} (required by ${d.label})`;
}

/** `CPython 3.11 linux x86_64`: what "for this interpreter" means in messages. */
export function describeInterpreter(interpreter: InterpreterFacts): string {
  const m = interpreter.markers;
  return `${m.platform_python_implementation} ${m.python_version} ${m.sys_platform} ${m.platform_machine}`;
}

/** `the repository has foo 2.0 (Requires-Python >=3.12), 1.1, 1.0`, newest first. */
async function describeRepository(failure: Failure, index: CandidateIndex): Promise<string> {
  const groups = index.versionsOf(failure.key);
  if (groups.length === 0) return `the repository has no ${failure.demands[0]?.name ?? failure.key} wheels`;
  const clauses = failure.demands.flatMap((d) => d.clauses);
  const usable = new Set(index.matching(failure.key, clauses).map((c) => c.version));
  const listed: string[] = [];
  for (const g of groups.slice(0, MAX_LISTED)) {
    let why = '';
    if (!g.candidate) why = `only for ${g.builtFor}`;
    else if (containsVersion(clauses, g.version, true)) {
      // It meets the specifiers: say what else rules it out.
      const python = await index.pythonMismatch(g.candidate);
      if (python !== undefined) why = `Requires-Python ${python}`;
      else if (!usable.has(g.version) && isPrerelease(g.version)) why = 'pre-release';
    }
    listed.push(why ? `${g.version} (${why})` : g.version);
  }
  const more = groups.length > MAX_LISTED ? ` and ${groups.length - MAX_LISTED} older` : '';
  return `the repository has ${groups[0]!.name} ${listed.join(', ')}${more}`;
}

function unique(items: string[]): string[] {
  return [...new Set(items)];
}
