/**
 * A small Python app in a git repository the test creates (pyproject.toml, setuptools backend), for
 * `vdeploy build`; and the environment that keeps pip away from this machine's global configuration.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir } from './cli.js';
import { SHARED_WHEELS } from './paths.js';

const execFileAsync = promisify(execFile);

/** Debian's Python: it has pip, setuptools and wheel, so it builds with --no-build-isolation offline. */
export const BUILD_PYTHON = '/usr/bin/python3';

/**
 * The environment for a build that must not see the machine's pip configuration (PIP_FIND_LINKS, an
 * extra index in pip.conf): PIP_CONFIG_FILE=/dev/null and every other PIP_* unset, plus `extra`.
 */
export function isolatedPipEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const key of Object.keys(process.env)) if (key.startsWith('PIP_')) env[key] = undefined;
  return { ...env, PIP_CONFIG_FILE: '/dev/null', ...extra };
}

/**
 * A find-links directory with what build isolation installs for a setuptools project (setuptools,
 * wheel and packaging), from the machine's local index or ../shared/wheels; undefined when they are
 * not all there (the test that needs it is skipped).
 */
export async function buildBackendWheels(): Promise<string | undefined> {
  const candidates = [
    ['/opt/pypi/files/setuptools-84.0.0-py3-none-any.whl'],
    ['/opt/pypi/files/wheel-0.48.0-py3-none-any.whl'],
    [join(SHARED_WHEELS, 'packaging-26.3-py3-none-any.whl')],
  ];
  const found = candidates.map((paths) => paths.find((p) => existsSync(p)));
  if (found.some((p) => p === undefined)) return undefined;
  const dir = await makeTempDir('vdeploy-backend-wheels-');
  for (const p of found) await copyFile(p!, join(dir, p!.slice(p!.lastIndexOf('/') + 1)));
  return dir;
}

export interface GitApp {
  dir: string;
  git(args: string[]): Promise<string>;
  /** Writes the app at `version` (plus `files`), commits it at `time` (seconds) and returns the commit. */
  commit(version: string, options?: { time?: number; message?: string; files?: Record<string, string> }): Promise<string>;
}

export async function makeGitApp(name = 'shipit', subdir = ''): Promise<GitApp> {
  const dir = await makeTempDir('vdeploy-git-app-');
  const git = async (args: string[], env: Record<string, string> = {}) =>
    (await execFileAsync('git', ['-C', dir, '-c', 'user.name=Test', '-c', 'user.email=test@example.invalid', ...args], { env: { ...process.env, ...env } })).stdout;
  await git(['init', '--quiet', '--initial-branch=main']);
  let clock = 1_790_000_000;
  return {
    dir,
    git: (args) => git(args),
    async commit(version, options = {}) {
      const project = join(dir, subdir);
      await mkdir(join(project, name), { recursive: true });
      await writeFile(
        join(project, 'pyproject.toml'),
        [
          '[build-system]',
          'requires = ["setuptools>=61", "wheel"]',
          'build-backend = "setuptools.build_meta"',
          '',
          '[project]',
          `name = "${name}"`,
          `version = "${version}"`,
          '',
          '[tool.setuptools]',
          `packages = ["${name}"]`,
          '',
        ].join('\n'),
      );
      await writeFile(join(project, name, '__init__.py'), `__version__ = "${version}"\n`);
      for (const [path, text] of Object.entries(options.files ?? {})) await writeFile(join(project, path), text);
      const time = options.time ?? (clock += 3600);
      const date = `@${time} +0000`;
      await git(['add', '-A']);
      await git(['commit', '--quiet', '-m', options.message ?? `version ${version}`], { GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date });
      return (await git(['rev-parse', 'HEAD'])).trim();
    },
  };
}
