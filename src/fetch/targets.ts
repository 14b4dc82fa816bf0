/**
 * What `vdeploy fetch` downloads for: the distinct interpreters of the selected venvs, as vdeploy last
 * saw them (the interpreter cache, filled by plan/deploy/status probes), or one target named on the
 * command line. Pure apart from reading the cache and ssh_config: fetch never connects to a host.
 */
import { ConfigError } from '../errors.js';
import type { ResolvedConfig, ResolvedVenv } from '../config/resolve-config.js';
import type { InterpreterCache } from '../facts/interpreter-cache.js';
import type { InterpreterFacts } from '../facts/types.js';
import type { MarkerEnvironment } from '../requirements/markers.js';
import { resolveSshTarget, targetName } from '../remote/ssh-target.js';
import type { SshConfig } from '../remote/ssh-config.js';

/** One `pip download` worth of platform flags, and who it is for. */
export interface FetchTarget {
  /** The interpreter's most preferred wheel tag (e.g. `cp312-cp312-manylinux_2_36_x86_64`): its name in output. */
  label: string;
  /** `--python-version`: up to three numbers (e.g. `3.12.1`). */
  pythonVersion: string;
  /** `--implementation` (e.g. `cp`). */
  implementation: string;
  /** `--abi`, one flag each, most preferred first. */
  abis: string[];
  /** `--platform`, one flag each, most preferred first (never `any`: pip always accepts it). */
  platforms: string[];
  /** The interpreter's PEP 508 environment: pip evaluates dependency markers against it (pip-command.ts). */
  markers: MarkerEnvironment;
  /** Its wheel tags, most preferred first (for a target named by flags: derived from them, roughly as pip does). */
  supportedTags: string[];
  /** Ids of the venvs this interpreter serves; empty for a target named by flags. */
  venvs: string[];
  /** Their requirements files (absolute), each once: what fetch downloads when not given -r or specs. */
  requirements: string[];
}

/** `--python-version/--platform/--implementation/--abi` as given. */
export interface ExplicitTarget {
  pythonVersion: string;
  platforms: string[];
  implementation?: string;
  abis?: string[];
}

const VERSION = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?$/;

/** The pip flags an interpreter's facts call for; null when they hold no tags (nothing to download for). */
export function targetFromFacts(facts: InterpreterFacts): Omit<FetchTarget, 'venvs' | 'requirements'> | null {
  const tags = facts.supportedTags.map((t) => t.split('-')).filter((t) => t.length === 3) as Array<[string, string, string]>;
  const first = tags[0];
  const implementation = first?.[0].match(/^[a-z]+/)?.[0];
  const pythonVersion = facts.version.match(/^\d+(?:\.\d+){0,2}/)?.[0];
  if (first === undefined || implementation === undefined || pythonVersion === undefined) return null;
  return {
    label: first.join('-'),
    pythonVersion,
    implementation,
    abis: unique(tags.filter((t) => t[0] === first[0]).map((t) => t[1])),
    platforms: unique(tags.map((t) => t[2]).filter((p) => p !== 'any')),
    markers: facts.markers,
    supportedTags: facts.supportedTags,
  };
}

/**
 * One target per distinct set of pip flags among the venvs' interpreters, in venv order. Venvs whose
 * host vdeploy has no facts for are a ConfigError naming the hosts and what to do.
 */
export function targetsFromCache(config: ResolvedConfig, venvs: readonly ResolvedVenv[], cache: InterpreterCache, sshConfig: SshConfig): FetchTarget[] {
  const targets = new Map<string, FetchTarget>();
  const unknown: ResolvedVenv[] = [];
  for (const venv of venvs) {
    const name = targetName(resolveSshTarget(config, venv.host, { sshConfig }));
    const known = cache.venvInterpreter(name, venv.path);
    const target = known && targetFromFacts(known.facts);
    if (!target) {
      unknown.push(venv);
      continue;
    }
    const key = JSON.stringify([target.pythonVersion, target.implementation, target.abis, target.platforms]);
    const entry = targets.get(key) ?? { ...target, venvs: [], requirements: [] };
    entry.venvs.push(venv.id);
    if (!entry.requirements.includes(venv.requirements)) entry.requirements.push(venv.requirements);
    targets.set(key, entry);
  }
  if (unknown.length > 0) throw noFactsError(unknown);
  // Two interpreters with the same most preferred tag but other flags (say, another glibc's tail of
  // platforms) still need names of their own: the table has a column per target.
  const seen = new Map<string, number>();
  return [...targets.values()].map((t) => {
    const n = (seen.get(t.label) ?? 0) + 1;
    seen.set(t.label, n);
    return n === 1 ? t : { ...t, label: `${t.label}#${n}` };
  });
}

function noFactsError(unknown: readonly ResolvedVenv[]): ConfigError {
  const hosts = unique(unknown.map((v) => v.host.name));
  const which = unknown.length === 1 ? `the venv ${unknown[0]!.id}` : `${unknown.length} venvs (on ${hosts.join(', ')})`;
  return new ConfigError(`vdeploy does not know the Python of ${which} yet: fetch never connects to hosts, it uses what plan, deploy and status learned`, {
    hint: `run \`vdeploy plan ${hosts.join(' ')}\` first, or name the target: --python-version 3.12 --platform manylinux_2_17_x86_64`,
  });
}

/** The target the flags describe (for all venvs alike); ConfigError for a malformed version or tag. */
export function explicitTarget(flags: ExplicitTarget): FetchTarget {
  const version = flags.pythonVersion.match(VERSION);
  if (!version) {
    throw new ConfigError(`--python-version ${flags.pythonVersion}: not a Python version`, { hint: 'write it as pip does, e.g. --python-version 3.12 (or 3.12.1)' });
  }
  const bad = flags.platforms.find((p) => !/^[a-z0-9_.]+$/i.test(p) || p === 'any');
  if (bad !== undefined || flags.platforms.length === 0) {
    throw new ConfigError(`--platform ${bad ?? ''}: not a wheel platform tag`.replace(' :', ':'), {
      hint: 'give the platform part of a wheel tag, e.g. --platform manylinux_2_17_x86_64 (repeat it for more)',
    });
  }
  const implementation = flags.implementation ?? 'cp';
  const major = version[1]!;
  const minor = version[2] ?? '0';
  const pyTag = `${implementation}${major}${minor}`;
  const abis = flags.abis?.length ? flags.abis : implementation === 'cp' ? [pyTag] : [];
  return {
    label: `${pyTag}-${abis[0] ?? 'none'}-${flags.platforms[0]!}`,
    supportedTags: tagsFor(pyTag, abis, flags.platforms, Number(major), Number(minor)),
    pythonVersion: flags.pythonVersion,
    implementation,
    abis,
    platforms: [...flags.platforms],
    markers: markersFor(flags.pythonVersion, implementation, flags.platforms[0]!),
    venvs: [],
    requirements: [],
  };
}

/**
 * The wheel tags the flags accept, roughly as pip derives them (packaging's cpython_tags and
 * compatible_tags), for choosing which repository version fits the target.
 */
function tagsFor(pyTag: string, abis: readonly string[], platforms: readonly string[], major: number, minor: number): string[] {
  const olderPy = Array.from({ length: minor + 1 }, (_, i) => `py${major}${minor - i}`);
  return [
    ...abis.flatMap((abi) => platforms.map((p) => `${pyTag}-${abi}-${p}`)),
    ...platforms.flatMap((p) => [`${pyTag}-abi3-${p}`, `${pyTag}-none-${p}`]),
    ...[...olderPy, `py${major}`].flatMap((py) => platforms.map((p) => `${py}-none-${p}`)),
    `${pyTag}-none-any`,
    ...[...olderPy, `py${major}`].map((py) => `${py}-none-any`),
  ];
}

/** A marker environment guessed from the flags: enough for the markers requirements use in practice. */
export function markersFor(pythonVersion: string, implementation: string, platform: string): MarkerEnvironment {
  const [major = '3', minor = '0', micro = '0'] = pythonVersion.split('.');
  const full = `${major}.${minor}.${micro}`;
  const name = { cp: 'cpython', pp: 'pypy', ip: 'ironpython', jy: 'jython' }[implementation] ?? implementation;
  const system = platform.startsWith('win') ? 'Windows' : platform.startsWith('macosx') ? 'Darwin' : 'Linux';
  const machine = platform.match(/(x86_64|aarch64|arm64|i686|ppc64le|s390x|armv7l|amd64|win32)$/)?.[1] ?? '';
  return {
    implementation_name: name,
    implementation_version: full,
    os_name: system === 'Windows' ? 'nt' : 'posix',
    platform_machine: machine === 'amd64' ? 'AMD64' : machine,
    platform_release: '',
    platform_system: system,
    platform_version: '',
    python_full_version: full,
    platform_python_implementation: { cpython: 'CPython', pypy: 'PyPy' }[name] ?? name,
    python_version: `${major}.${minor}`,
    sys_platform: system === 'Windows' ? 'win32' : system === 'Darwin' ? 'darwin' : 'linux',
  };
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}
