/**
 * The interpreter a package's venv runs on (docs/packages.md): the distribution's Python
 * (`interpreter: 'system'`, a dependency on python3.X) or a CPython prefix shipped inside the package
 * (`interpreter: { path }`, installed as `<prefix>/python`, no Python dependency).
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, lastLines } from '../errors.js';
import type { InterpreterFacts } from '../facts/types.js';
import type { Connection } from '../remote/connection.js';
import { readPythonFile } from '../remote/python-files.js';

export interface PackageInterpreter {
  kind: 'system' | 'shipped';
  /** The interpreter that builds the venv, here. */
  command: string;
  /** `3.11` */
  xy: string;
  facts: InterpreterFacts;
  /** Shipped: the CPython prefix copied into `<prefix>/python`. */
  sourcePrefix?: string;
}

/** The distribution's Python: what `Depends: python3.X` installs on the target. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** Finds and describes the interpreter of a package on `local` (here, or the buildOn host); ConfigError when it cannot be used. */
export async function packageInterpreter(local: Connection, interpreter: 'system' | { path: string }, what: string): Promise<PackageInterpreter> {
  if (interpreter === 'system') {
    const facts = await interpreterFacts(local, SYSTEM_PYTHON, `${what}.interpreter 'system'`);
    const xy = xyOf(facts);
    // The venv's bin/python links to python3.X, the package's dependency, not to python3, which a newer default could replace.
    const versioned = `/usr/bin/python${xy}`;
    const found = await local.exec(['test', '-x', versioned], { nothrow: true });
    const command = found.exitCode === 0 ? versioned : SYSTEM_PYTHON;
    return { kind: 'system', command, xy, facts };
  }
  const prefix = interpreter.path;
  const command = join(prefix, 'bin', 'python3');
  try {
    await access(command);
  } catch {
    throw new ConfigError(`${what}.interpreter.path ${prefix}: no bin/python3 there`, { hint: 'give the prefix a CPython was installed into (`./configure --prefix=...`), e.g. /root/.pyenv/versions/3.12.1' });
  }
  const facts = await interpreterFacts(local, command, `${what}.interpreter.path`);
  if (facts.markers.implementation_name !== 'cpython') {
    throw new ConfigError(`${what}.interpreter.path ${prefix} is ${facts.markers.implementation_name}, not CPython`, { hint: 'only a CPython prefix can be shipped in a package' });
  }
  return { kind: 'shipped', command, xy: xyOf(facts), facts, sourcePrefix: prefix };
}

function xyOf(facts: InterpreterFacts): string {
  return facts.version.split('.').slice(0, 2).join('.');
}

/** Runs interpreter_facts.py (the probe's) in `python`: its version, markers and wheel tags. */
export async function interpreterFacts(local: Connection, python: string, what: string): Promise<InterpreterFacts> {
  const source = readPythonFile('vdeploy_remote/interpreter_facts.py');
  const result = await local.exec([python, '-I', '-c', source], { nothrow: true });
  const last = result.stdout.trimEnd().split('\n').at(-1) ?? '';
  let answer: (InterpreterFacts & { error?: undefined }) | { error: string } | undefined;
  try {
    answer = JSON.parse(last) as typeof answer;
  } catch {
    answer = undefined;
  }
  if (result.exitCode !== 0 || answer === undefined) {
    const why = result.exitCode === 127 ? 'not found' : lastLines(`${result.stderr}\n${result.stdout}`, 2) || `exit ${result.exitCode ?? result.signal}`;
    throw new ConfigError(`${what}: ${python} does not run (${why})`, { hint: `install it (for 'system': the distribution's python3 and python3-venv), or choose another interpreter` });
  }
  if (answer.error !== undefined) throw new ConfigError(`${what}: ${answer.error}`, { hint: 'install pip for that interpreter' });
  return { version: answer.version, markers: answer.markers, supportedTags: answer.supportedTags };
}

