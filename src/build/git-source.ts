/**
 * What `vdeploy build` builds, and getting it onto disk: a clean checkout of exactly one commit (of a
 * local repository or a git URL) in a temporary directory, or a directory named explicitly, as it is.
 * The rule: uncommitted changes are built only when the user names the directory without --ref.
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, VdeployError, lastLines } from '../errors.js';
import type { Connection } from '../remote/connection.js';

export type SourceSpec =
  /** A local repository's commit `ref`, checked out clean (no DIR given, or DIR with --ref). */
  | { kind: 'git-dir'; dir: string; ref: string; explicit: boolean }
  /** A repository cloned from `url`, commit `ref` checked out. */
  | { kind: 'git-url'; url: string; ref: string }
  /** DIR given without --ref: built as it is, uncommitted changes included. */
  | { kind: 'dir'; dir: string };

/** What was built, for the output and the release line. */
export interface BuildSource {
  kind: 'git' | 'dir';
  /** The URL, or the absolute directory. */
  location: string;
  /** git builds: the ref asked for. */
  ref?: string;
  /** The commit built: git builds always; a directory only when it is a git work tree with nothing uncommitted. */
  commit?: string;
  /** A directory with uncommitted changes (or untracked files): HEAD, which is NOT what was built. */
  head?: string;
  /** The work tree has uncommitted changes or untracked files, and they are in the build. */
  uncommitted?: boolean;
  /** git builds of a local work tree: it has uncommitted changes, which the clean checkout left out. */
  leftOut?: boolean;
  /** The commit's committer time (ISO), the wheel's SOURCE_DATE_EPOCH. */
  committedAt?: string;
  /** The project's directory inside the repository, when not its top. */
  subdirectory?: string;
}

export interface PreparedSource {
  source: BuildSource;
  /** Where pip builds: the checkout (or the directory itself). */
  buildDir: string;
  /** Seconds since the epoch, for SOURCE_DATE_EPOCH. */
  sourceDateEpoch?: number;
}

/** git's URL forms: `scheme://…` and scp-like `[user@]host:path` (a path with no slash before the colon). */
export function looksLikeGitUrl(arg: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(arg) || /^(?:[^@/\s]+@)?[^/\s:]{2,}:(?!\/\/)/.test(arg);
}

/** Decides what to build from the argument, --ref, and whether the argument is a directory here. */
export function sourceSpec(arg: string | undefined, ref: string | undefined, isDir: boolean | 'not-a-dir'): SourceSpec {
  if (ref !== undefined && (ref === '' || ref.startsWith('-') || /[\s\0]/.test(ref)))
    throw new ConfigError(`--ref ${JSON.stringify(ref)} is not a git ref`, { hint: 'name a branch, tag or commit, e.g. --ref main, --ref v1.2, --ref 3b18e51' });
  if (arg === undefined) return { kind: 'git-dir', dir: '.', ref: ref ?? 'HEAD', explicit: false };
  if (isDir === true) return ref === undefined ? { kind: 'dir', dir: arg } : { kind: 'git-dir', dir: arg, ref, explicit: true };
  if (isDir === 'not-a-dir') throw new ConfigError(`${arg} is a file, not a directory or git URL`, { hint: 'name the project directory (the one with pyproject.toml or setup.py), or a git URL' });
  if (looksLikeGitUrl(arg)) return { kind: 'git-url', url: arg, ref: ref ?? 'HEAD' };
  throw new ConfigError(`${arg}: no such directory, and not a git URL`, {
    hint: 'name the project directory, or a repository URL such as https://host/repo.git, ssh://host/repo.git or git@host:repo.git',
  });
}

/** Whether `path` is a directory here: true, false (nothing there) or 'not-a-dir'. */
export async function dirState(path: string | undefined): Promise<boolean | 'not-a-dir'> {
  if (path === undefined) return false;
  try {
    return (await stat(path)).isDirectory() ? true : 'not-a-dir';
  } catch {
    return false;
  }
}

interface GitContext {
  local: Connection;
  /** A fresh empty-to-be path for the checkout (inside the build's temporary directory). */
  checkoutDir: string;
  signal?: AbortSignal;
}

export async function prepareSource(spec: SourceSpec, ctx: GitContext): Promise<PreparedSource> {
  if (spec.kind === 'dir') return describeDir(resolve(spec.dir), ctx);
  if (spec.kind === 'git-url') {
    await git(ctx, ['clone', '--quiet', '--no-checkout', '--', spec.url, ctx.checkoutDir], (why) => new VdeployError(`cannot clone ${spec.url}: ${why}`, { hint: 'check the URL and that git can reach it (`git ls-remote URL`)' }));
    // A fresh clone has only the default branch locally: a branch name is found as origin/NAME.
    const commit = (await revParse(ctx, ctx.checkoutDir, spec.ref)) ?? (await revParse(ctx, ctx.checkoutDir, `refs/remotes/origin/${spec.ref}`));
    if (!commit) throw unknownRef(spec.ref, spec.url);
    return checkout(ctx, { kind: 'git', location: spec.url, ref: spec.ref, commit }, ctx.checkoutDir, '');
  }
  const dir = resolve(spec.dir);
  const repo = await git(ctx, ['-C', dir, 'rev-parse', '--path-format=absolute', '--git-common-dir', '--show-prefix'], () =>
    spec.explicit
      ? new ConfigError(`${spec.dir} is not in a git repository, so --ref cannot be used`, { hint: `to build the directory as it is, leave out --ref: \`vdeploy build ${spec.dir}\`` })
      : new ConfigError('the current directory is not in a git repository: `vdeploy build` without DIR builds its HEAD commit', {
          hint: 'name the project directory to build it as it is (`vdeploy build .`), or give a git URL',
        }),
  );
  const [commonDir = '', prefix = ''] = repo.split('\n');
  const commit = await revParse(ctx, dir, spec.ref);
  if (!commit) throw unknownRef(spec.ref, spec.dir);
  // --shared borrows the repository's objects (all of them, unreachable commits too) instead of copying them.
  await git(ctx, ['clone', '--quiet', '--no-checkout', '--shared', '--', commonDir, ctx.checkoutDir], (why) => new VdeployError(`cannot clone ${commonDir}: ${why}`));
  // Said, so nobody thinks the edits they see are deployed (a bare repository has no work tree: status fails).
  const status = await ctx.local.exec(['git', '-C', dir, 'status', '--porcelain', '--', '.'], { nothrow: true, ...sig(ctx) });
  const leftOut = status.exitCode === 0 && status.stdout.trim() !== '';
  return checkout(ctx, { kind: 'git', location: dir, ref: spec.ref, commit, ...(leftOut ? { leftOut } : {}) }, ctx.checkoutDir, prefix.replace(/\/$/, ''));
}

async function checkout(ctx: GitContext, source: BuildSource & { commit: string }, repoDir: string, subdirectory: string): Promise<PreparedSource> {
  await git(ctx, ['-C', repoDir, 'checkout', '--quiet', '--detach', source.commit], (why) => new VdeployError(`cannot check out ${source.commit}: ${why}`));
  const epoch = await commitTime(ctx, repoDir, source.commit);
  return {
    source: { ...source, committedAt: new Date(epoch * 1000).toISOString(), ...(subdirectory ? { subdirectory } : {}) },
    buildDir: subdirectory ? join(repoDir, subdirectory) : repoDir,
    sourceDateEpoch: epoch,
  };
}

/** A directory built as it is: if it is in a git work tree, its HEAD and whether it has uncommitted changes. */
async function describeDir(dir: string, ctx: GitContext): Promise<PreparedSource> {
  const plain: PreparedSource = { source: { kind: 'dir', location: dir }, buildDir: dir, ...envEpoch() };
  const inside = await ctx.local.exec(['git', '-C', dir, 'rev-parse', '--is-inside-work-tree'], { nothrow: true, ...sig(ctx) });
  if (inside.exitCode !== 0 || inside.stdout.trim() !== 'true') return plain;
  const head = await revParse(ctx, dir, 'HEAD');
  if (!head) return plain; // a repository without commits yet
  const status = await git(ctx, ['-C', dir, 'status', '--porcelain', '--', '.'], (why) => new VdeployError(`git status in ${dir} failed: ${why}`));
  const epoch = await commitTime(ctx, dir, head);
  const committedAt = new Date(epoch * 1000).toISOString();
  // Untracked files count: they may well end up in the wheel.
  const source: BuildSource =
    status.trim() === '' ? { kind: 'dir', location: dir, commit: head, committedAt } : { kind: 'dir', location: dir, head, uncommitted: true, committedAt };
  return { source, buildDir: dir, sourceDateEpoch: epoch };
}

/** The user's own SOURCE_DATE_EPOCH, for a directory that is not a git work tree. */
function envEpoch(): { sourceDateEpoch?: number } {
  const value = process.env.SOURCE_DATE_EPOCH;
  return value !== undefined && /^\d+$/.test(value) ? { sourceDateEpoch: Number(value) } : {};
}

async function commitTime(ctx: GitContext, repoDir: string, commit: string): Promise<number> {
  const out = await git(ctx, ['-C', repoDir, 'show', '-s', '--format=%ct', commit], (why) => new VdeployError(`cannot read the time of ${commit}: ${why}`));
  return Number(out.trim());
}

/** The full commit name `ref` resolves to in `repoDir`, or undefined. */
async function revParse(ctx: GitContext, repoDir: string, ref: string): Promise<string | undefined> {
  const r = await ctx.local.exec(['git', '-C', repoDir, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`], { nothrow: true, ...sig(ctx) });
  const commit = r.stdout.trim();
  return r.exitCode === 0 && /^[0-9a-f]{40,64}$/.test(commit) ? commit : undefined;
}

function unknownRef(ref: string, where: string): ConfigError {
  return new ConfigError(`unknown ref "${ref}" in ${where}`, { hint: 'name a branch, tag or commit of that repository (`git log --oneline --all` lists them)' });
}

/** Runs git; a failure becomes `error(why)`, git missing altogether its own error. */
async function git(ctx: GitContext, args: string[], error: (why: string) => VdeployError): Promise<string> {
  const r = await ctx.local.exec(['git', ...args], { nothrow: true, ...sig(ctx) });
  if (r.exitCode === 127) throw new ConfigError('git not found on PATH; vdeploy build needs git for a git source', { hint: 'install git, or build a directory as it is: `vdeploy build DIR`' });
  if (r.exitCode !== 0) throw error(lastLines(r.stderr, 1) || `git exited with ${r.exitCode ?? r.signal}`);
  return r.stdout;
}

function sig(ctx: GitContext): { signal?: AbortSignal } {
  return ctx.signal ? { signal: ctx.signal } : {};
}
