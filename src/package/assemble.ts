/**
 * The `PackageTree` of a package (docs/packages.md "Layout"): the staged venv (and shipped
 * interpreter) under the prefix, the `files` trees under / as conffiles, the service unit under
 * /lib/systemd/system, with the metadata and maintainer scripts. Both writers turn this one tree into
 * their format.
 */
import { lstat, readFile, readdir, readlink, stat } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { basename, join, posix } from 'node:path';
import type { ResolvedPackageConfig } from '../config/resolve-config.js';
import { ConfigError } from '../errors.js';
import type { BuiltVenv } from './build-venv.js';
import { packageArchitecture, pythonDepends, serviceScripts } from './package-meta.js';
import type { PackageTree, TreeEntry } from './tree.js';

export interface AssembleInput {
  pkg: ResolvedPackageConfig;
  built: BuiltVenv;
  version: string;
  iteration: number;
  /** Seconds since the epoch: every mtime. */
  mtime: number;
}

export async function assembleTree(input: AssembleInput): Promise<PackageTree> {
  const { pkg, built } = input;
  const entries = new Map<string, TreeEntry>();
  const add = (entry: TreeEntry, from: string) => {
    const other = entries.get(entry.path);
    if (other && !(other.kind === 'dir' && entry.kind === 'dir')) throw new ConfigError(`packages "${pkg.name}": ${entry.path} comes twice (again from ${from})`, { hint: 'install each path from one place only (files trees, the service unit, the prefix)' });
    entries.set(entry.path, entry);
  };
  await addTree(join(built.staging, 'venv'), `${pkg.prefix}/venv`, (e) => add(e, 'the venv'));
  if (built.interpreter.kind === 'shipped') await addTree(join(built.staging, 'python'), `${pkg.prefix}/python`, (e) => add(e, 'the shipped interpreter'));
  const conffiles: string[] = [];
  for (const dir of pkg.files) {
    const st = await stat(dir).catch(() => undefined);
    if (!st?.isDirectory()) throw new ConfigError(`packages "${pkg.name}".files: ${dir} is not a directory`, { hint: 'each entry of files is a local directory installed under / by its own name (./etc/ → /etc/...)' });
    // The directory's own name is where it installs: ./etc/ → /etc/.
    await addTree(dir, `/${basename(dir)}`, (e) => {
      add(e, dir);
      if (e.kind === 'file') conffiles.push(e.path);
    });
  }
  let unit: string | undefined;
  if (pkg.service) {
    unit = basename(pkg.service.unit);
    const content = await readFile(pkg.service.unit).catch(() => {
      throw new ConfigError(`packages "${pkg.name}".service.unit: cannot read ${pkg.service!.unit}`, { hint: 'give the path of a systemd unit file, relative to the deployfile' });
    });
    // A unit inside a `files` tree (./etc/systemd/system/x.service, as in the issue) is installed there, as a conffile; not twice.
    const inTree = pkg.files.some((dir) => pkg.service!.unit.startsWith(`${dir}/`));
    if (!inTree) add({ kind: 'file', path: `/lib/systemd/system/${unit}`, mode: 0o644, content }, 'service.unit');
  }
  const shipped = built.interpreter.kind === 'shipped';
  const arch = packageArchitecture(built.packages.map((p) => p.filename), shipped ? built.interpreter.facts.markers.platform_machine : undefined);
  const python = pythonDepends(shipped ? undefined : built.interpreter.xy);
  // The default text follows Debian's rules (lintian): a synopsis not starting with the package name, a long text that is not the synopsis again.
  const text = pkg.description ?? `Python application with its virtualenv\nThe virtualenv of ${pkg.source.id}\n(its requirements, resolved from the wheel repository),\ninstalled in ${pkg.prefix}/venv by vdeploy package.`;
  const [summary, ...rest] = text.split('\n');
  const user = userInfo().username;
  return {
    meta: {
      name: pkg.name,
      version: input.version,
      iteration: input.iteration,
      architecture: arch,
      maintainer: pkg.maintainer ?? `${user} <${user}@${hostname()}>`,
      summary: summary!.trim(),
      description: rest.join('\n').trim(),
      depends: [...python.depends, ...pkg.depends],
      requires: [...python.requires, ...(pkg.requires ?? pkg.depends.map((d) => d.split(/[\s(|]/)[0]!))],
      ...(pkg.homepage ? { homepage: pkg.homepage } : {}),
      ...(pkg.license ? { license: pkg.license } : {}),
    },
    entries: [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    conffiles: conffiles.sort(),
    scripts: serviceScripts(unit),
    mtime: input.mtime,
  };
}

/**
 * Every directory, file and symlink under `dir`, at `dest` (absolute; '' for /). Modes are normalized
 * (0755 when any x bit is set, else 0644; directories 0755): the builder's umask and owner never leak.
 */
export async function addTree(dir: string, dest: string, add: (entry: TreeEntry) => void): Promise<void> {
  const walk = async (from: string, to: string): Promise<void> => {
    const st = await lstat(from);
    if (st.isSymbolicLink()) {
      add({ kind: 'symlink', path: to, target: await readlink(from) });
    } else if (st.isDirectory()) {
      if (to !== '') add({ kind: 'dir', path: to, mode: 0o755 });
      for (const name of (await readdir(from)).sort()) await walk(join(from, name), posix.join(to || '/', name));
    } else if (st.isFile()) {
      add({ kind: 'file', path: to, mode: st.mode & 0o111 ? 0o755 : 0o644, content: await readFile(from) });
    }
  };
  await walk(dir, dest);
}
