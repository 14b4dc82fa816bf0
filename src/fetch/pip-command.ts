/**
 * The pip commands `vdeploy fetch` runs on this machine, built as argv (never a shell string). pip
 * runs with the user's own configuration and environment (pip.conf, PIP_* variables): fetch only adds
 * the platform flags of each target and the index flags it was given.
 *
 * pip's `--python-version/--platform/--abi` choose wheels for another interpreter, but pip still
 * evaluates dependency markers (`; python_version < "3.11"`) against the Python it runs in, so a
 * controller on 3.12 would skip a backport a 3.8 host needs. The small wrapper below sets pip's
 * marker environment to the target's (from its facts) before starting pip's own main().
 */

/** Index options passed through to pip as given (pip's own config and PIP_* apply besides). */
export interface IndexOptions {
  indexUrl?: string;
  extraIndexUrls?: string[];
  findLinks?: string[];
  noIndex?: boolean;
}

export interface PlatformFlags {
  pythonVersion: string;
  implementation: string;
  abis: string[];
  platforms: string[];
}

export interface PipInputs {
  /** `-r` files, in order. */
  requirementFiles: readonly string[];
  /** Requirement specifiers given on the command line. */
  specs: readonly string[];
  /** A `-c` constraints file (the repository's versions: fetch.ts), if any. */
  constraints?: string;
  index: IndexOptions;
  /** Searched too (last), when it exists: the app's own wheel is often only there. */
  repoDir?: string;
}

/** Oldest pip fetch works with: the resolver of 20.3 and `--platform`/`--abi` given several times. */
export const MIN_PIP = [21, 0] as const;
/** `pip install --dry-run --report` (for --dry-run) came with pip 22.2. */
export const MIN_PIP_REPORT = [22, 2] as const;

/** Printed (stderr) by the wrapper when this pip's marker environment cannot be set. */
export const MARKERS_NOT_SET = 'vdeploy-fetch: markers not set:';

/** Runs pip with the marker environment of argv[1] (JSON; `{}`: leave pip's own). Python 3.6+. */
export const PIP_WRAPPER = `import json, sys
env = json.loads(sys.argv[1])
if env:
    try:
        from pip._vendor.packaging import markers
        markers.default_environment = lambda: dict(env)
    except Exception as error:
        sys.stderr.write("${MARKERS_NOT_SET} %s\\n" % (error,))
try:
    from pip._internal.cli.main import main
except ImportError:
    from pip._internal.main import main
sys.exit(main(sys.argv[2:]))
`;

/** Asks a Python for its own version and its pip's (pip: null when it has none). */
export const PIP_VERSION_SCRIPT = `import json, sys
try:
    import pip
    version = pip.__version__
except Exception:
    version = None
print(json.dumps({"python": "%d.%d.%d" % tuple(sys.version_info[:3]), "pip": version}))
`;

export function platformArgs(flags: PlatformFlags): string[] {
  return [
    '--only-binary=:all:',
    '--python-version',
    flags.pythonVersion,
    '--implementation',
    flags.implementation,
    ...flags.abis.flatMap((abi) => ['--abi', abi]),
    ...flags.platforms.flatMap((platform) => ['--platform', platform]),
  ];
}

export function indexArgs(index: IndexOptions, repoDir?: string): string[] {
  return [
    ...(index.noIndex ? ['--no-index'] : []),
    ...(index.indexUrl !== undefined ? ['--index-url', index.indexUrl] : []),
    ...(index.extraIndexUrls ?? []).flatMap((url) => ['--extra-index-url', url]),
    ...[...(index.findLinks ?? []), ...(repoDir !== undefined ? [repoDir] : [])].flatMap((dir) => ['--find-links', dir]),
  ];
}

function inputArgs(inputs: PipInputs): string[] {
  return [
    ...indexArgs(inputs.index, inputs.repoDir),
    ...(inputs.constraints !== undefined ? ['-c', inputs.constraints] : []),
    ...inputs.requirementFiles.flatMap((file) => ['-r', file]),
    // `--` would end pip's options, but pip reads every remaining word as a requirement anyway; a spec
    // starting with '-' was refused before (fetch.ts).
    ...inputs.specs,
  ];
}

/** `python -c WRAPPER markers pip download …` into `dest`. */
export function downloadArgv(python: string, markers: object, flags: PlatformFlags, inputs: PipInputs, dest: string): string[] {
  return [python, '-c', PIP_WRAPPER, JSON.stringify(markers), 'download', '--progress-bar', 'off', ...platformArgs(flags), '-d', dest, ...inputArgs(inputs)];
}

/**
 * `pip install --dry-run --report FILE`: the resolution as JSON, nothing installed. `--target` (a
 * directory that stays empty) is what pip requires with platform flags, and `--ignore-installed` keeps
 * what the local Python happens to have from counting.
 */
export function reportArgv(python: string, markers: object, flags: PlatformFlags, inputs: PipInputs, targetDir: string, reportFile: string): string[] {
  return [
    python,
    '-c',
    PIP_WRAPPER,
    JSON.stringify(markers),
    'install',
    '--dry-run',
    '--ignore-installed',
    '--progress-bar',
    'off',
    '--report',
    reportFile,
    '--target',
    targetDir,
    ...platformArgs(flags),
    ...inputArgs(inputs),
  ];
}

/** Compares `a.b[.c…]` (pip's own version, which may end in `.dev0` or `b1`) with [major, minor]. */
export function pipAtLeast(version: string, min: readonly [number, number]): boolean {
  const [major = 0, minor = 0] = version.split('.').map((part) => parseInt(part, 10) || 0);
  return major > min[0] || (major === min[0] && minor >= min[1]);
}
