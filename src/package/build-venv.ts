/**
 * Builds a package's venv here (docs/packages.md): the venv's desired set resolved for the package's
 * interpreter, a venv created at a staging directory, pip installing exactly that set offline and
 * hash-pinned from the repository, the venv relocated to `<prefix>/venv` (relocate.py, as
 * `vdeploy relocate` does), bytecode compiled for the final paths, and a scan proving that the
 * staging path is named by no file. The staging directory mirrors the prefix: `<staging>/venv`,
 * `<staging>/python` (a shipped interpreter).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ResolvedConfig, ResolvedHost, ResolvedPackageConfig } from '../config/resolve-config.js';
import { ConfigError, VdeployError } from '../errors.js';
import { relocateVenv } from '../relocate/relocate.js';
import type { Connection } from '../remote/connection.js';
import { readRequirementsFile } from '../requirements/requirements-file.js';
import { createWheelDependencyReader } from '../resolve/wheel-dependencies.js';
import { resolveVenv, type ResolvedPackage } from '../resolve/resolve-venv.js';
import { releasedWheels } from '../wheels/repository.js';
import { packageInterpreter, type PackageInterpreter } from './interpreter.js';
import { checkShippable, copyPython } from './ship-python.js';
import { fixShippedVenv, refreshRecords, scanForPaths } from './staging.js';
import { compile, run } from './venv-steps.js';
import { buildOnHost } from './build-remote.js';

export interface BuiltVenv {
  /** The staging directory (remove it with `cleanup`). */
  staging: string;
  interpreter: PackageInterpreter;
  packages: ResolvedPackage[];
  /** The newest release-log time of the packaged wheels (seconds): the default SOURCE_DATE_EPOCH. */
  newestRelease: number;
  cleanup(): Promise<void>;
}

export type BuildStep = 'resolve' | 'venv' | 'install' | 'relocate' | 'compile' | 'check';
export type BuildEvent = { kind: 'step'; package: string; step: BuildStep; detail?: string };

export interface BuildOptions {
  local: Connection;
  /** The connection to the buildOn host (vdeploy package passes its host connector's). */
  connect?: (host: ResolvedHost) => Promise<Connection>;
  onEvent?: (event: BuildEvent) => void;
  signal?: AbortSignal;
}

/** Builds `pkg`'s venv (and shipped interpreter) in a fresh staging directory. */
export async function buildPackageVenv(config: ResolvedConfig, pkg: ResolvedPackageConfig, options: BuildOptions): Promise<BuiltVenv> {
  const { local } = options;
  const what = `packages "${pkg.name}"`;
  const step = (s: BuildStep, detail?: string) => options.onEvent?.({ kind: 'step', package: pkg.name, step: s, ...(detail ? { detail } : {}) });
  let builder = local;
  if (pkg.buildOn !== undefined) {
    if (pkg.interpreter !== 'system') throw new ConfigError(`${what}: buildOn works with interpreter 'system' only (a shipped interpreter is built here)`, { hint: "leave buildOn out, or use interpreter: 'system'" });
    if (!options.connect) throw new ConfigError(`${what}: buildOn needs a connection to ${pkg.buildOn}`, { hint: 'run it through vdeploy package' });
    const host = config.hosts.find((h) => h.name === pkg.buildOn);
    if (!host) throw new ConfigError(`${what}.buildOn: unknown host "${pkg.buildOn}"`, { hint: `hosts are: ${config.hosts.map((h) => h.name).join(', ')}` });
    builder = await options.connect(host);
  }
  const interpreter = await packageInterpreter(builder, pkg.interpreter, what);
  if (interpreter.sourcePrefix) await checkShippable(local, interpreter.sourcePrefix, `${what}.interpreter.path`);
  step('resolve', `${pkg.source.id} for Python ${interpreter.facts.version}`);
  const { packages, newestRelease } = await resolveSet(config, pkg, interpreter);
  const staging = await mkdtemp(join(tmpdir(), 'vdeploy-package-'));
  const cleanup = () => rm(staging, { recursive: true, force: true });
  if (builder !== local) {
    try {
      const remote = await buildOnHost(builder, { config, prefix: pkg.prefix, python: interpreter.command, packages, staging, step, ...(options.signal ? { signal: options.signal } : {}) });
      await refreshRecords(join(staging, 'venv'));
      step('check', `no file names ${remote} or ${staging}`);
      const left = await scanForPaths(staging, [remote, staging]);
      if (left.length > 0) throw new VdeployError(`${what}: the build path ${remote} remains in ${left.length} file(s): ${left.slice(0, 5).join(', ')}`, { hint: 'this is a bug in vdeploy package: report it with the files named' });
      return { staging, interpreter, packages, newestRelease, cleanup };
    } catch (err) {
      await cleanup();
      throw err;
    }
  }
  try {
    const venv = join(staging, 'venv');
    let python = interpreter.command;
    if (interpreter.sourcePrefix) {
      step('venv', `copying ${interpreter.sourcePrefix} to ${pkg.prefix}/python`);
      await copyPython(interpreter.sourcePrefix, join(staging, 'python'), `${pkg.prefix}/python`, interpreter.xy);
      python = join(staging, 'python', 'bin', `python${interpreter.xy}`);
    }
    step('venv', `${python} -m venv`);
    await run(local, [python, '-m', 'venv', venv], `creating the venv with ${python}`, options.signal);
    step('install', `${packages.length} wheels from ${config.wheels}`);
    const requirements = join(staging, 'requirements.txt');
    await writeFile(requirements, packages.map((p) => `${p.name}==${p.version} --hash=sha256:${p.sha256}\n`).join(''));
    // --isolated: the machine's pip config (an index, a mirror) must not change what is installed.
    await run(local, [join(venv, 'bin', 'python'), '-m', 'pip', 'install', '--isolated', '--no-index', '--find-links', config.wheels, '--require-hashes', '--no-deps', '--disable-pip-version-check', '--no-compile', '-r', requirements], 'pip install', options.signal);
    await rm(requirements);
    step('relocate', `${venv} → ${pkg.prefix}/venv`);
    await relocateVenv(local, { venv, newPath: `${pkg.prefix}/venv`, oldPath: venv }, options.signal ? { signal: options.signal } : {});
    await rm(join(venv, '.vdeploy'), { recursive: true, force: true });
    if (interpreter.sourcePrefix) await fixShippedVenv(venv, join(staging, 'python'), `${pkg.prefix}/python`);
    await refreshRecords(venv);
    step('compile', 'bytecode for the final paths');
    await compile(local, python, venv, `${pkg.prefix}/venv`, options.signal);
    if (interpreter.sourcePrefix) await compile(local, python, join(staging, 'python', 'lib'), `${pkg.prefix}/python/lib`, options.signal);
    step('check', `no file names ${staging}`);
    const left = await scanForPaths(staging, [staging]);
    if (left.length > 0) {
      throw new VdeployError(`${what}: the staging path ${staging} remains in ${left.length} file(s): ${left.slice(0, 5).join(', ')}`, { hint: 'this is a bug in vdeploy package: report it with the files named' });
    }
    if (interpreter.sourcePrefix) await checkSourcePrefix(staging, interpreter.sourcePrefix, what);
    return { staging, interpreter, packages, newestRelease, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** A shipped interpreter's build prefix may remain only in ELF files (libpython's compiled-in fallback: docs/packages.md). */
async function checkSourcePrefix(staging: string, source: string, what: string): Promise<void> {
  const left: string[] = [];
  for (const rel of await scanForPaths(staging, [source])) {
    const head = await readFile(join(staging, rel)).then((b) => b.subarray(0, 4), () => Buffer.alloc(0));
    if (!head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) left.push(rel);
  }
  if (left.length > 0) {
    throw new VdeployError(`${what}: the interpreter's build prefix ${source} remains in ${left.length} file(s): ${left.slice(0, 5).join(', ')}`, { hint: 'this is a bug in vdeploy package (shipping that interpreter): report it with the files named' });
  }
}

async function resolveSet(config: ResolvedConfig, pkg: ResolvedPackageConfig, interpreter: PackageInterpreter): Promise<{ packages: ResolvedPackage[]; newestRelease: number }> {
  const requirements = await readRequirementsFile(pkg.source.requirements);
  const released = await releasedWheels(config.wheels);
  const wheels = createWheelDependencyReader(config.wheels);
  const resolution = await resolveVenv({
    requirements,
    released,
    interpreter: interpreter.facts,
    dependenciesOf: (w) => wheels.dependenciesOf(w),
    sha256Of: (w) => wheels.sha256Of(w),
    digestOf: (w, algorithm) => wheels.digestOf(w, algorithm),
  });
  if (!resolution.ok) throw new ConfigError(`packages "${pkg.name}" (${pkg.source.id}): ${resolution.message}`, { hint: resolution.hint });
  const chosen = new Set(resolution.packages.map((p) => p.filename));
  const times = released.filter((w) => chosen.has(w.filename)).map((w) => Math.floor(Date.parse(w.addedAt) / 1000));
  return { packages: resolution.packages, newestRelease: Math.max(0, ...times.filter((t) => Number.isFinite(t))) };
}

