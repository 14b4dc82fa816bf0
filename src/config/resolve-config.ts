/**
 * Turns a validated deployfile into the resolved config every command works on: local paths made
 * absolute (relative to the deployfile), defaults that depend on the machine filled in, and each venv
 * linked to its host.
 */
import { homedir, userInfo } from 'node:os';
import { dirname, isAbsolute, join, posix, resolve } from 'node:path';
import type { PackageConfig } from './packages-schema.js';
import type { FileEntryConfig, ParsedConfig, TopFileEntryConfig } from './schema.js';

type ParsedHost = ParsedConfig['hosts'][number];
type ParsedVenv = ParsedConfig['venvs'][number];

/** A `files` entry with its local source made absolute, and where it was declared. */
export interface ResolvedFileEntry extends FileEntryConfig {
  /** Absolute local path (a file or a directory tree). */
  src: string;
  /** Where it was declared, for messages: `files[2]` or `hosts[0].files[1]`. */
  entry: string;
}

/** A top-level entry: its `hosts` / `roles` filters say which hosts get it (neither: every host). */
export interface ResolvedTopFileEntry extends ResolvedFileEntry {
  hosts?: TopFileEntryConfig['hosts'];
  roles?: TopFileEntryConfig['roles'];
}

export interface ResolvedHost extends Omit<ParsedHost, 'files'> {
  /** This host's own `files` entries (hosts[].files); the top-level ones are in ResolvedConfig.files. */
  files: ResolvedFileEntry[];
  /** File operations and handlers through `sudo -n` (when the login user is not root). */
  sudo: boolean;
  /** Where the host keeps the record of managed files and pending handlers (absent: the default). */
  stateDir?: string;
  address: string;
  port: number;
  /** SSH login user. */
  user: string;
  /**
   * What the deployfile itself wrote for address/port/user (the fields above have defaults filled in).
   * ssh_config fills what is missing here. Absent (a host built in code): all three count as written.
   */
  explicit?: { address?: string; port?: number; user?: string };
}

export interface ResolvedVenv extends Omit<ParsedVenv, 'host' | 'user' | 'requirements'> {
  /** `user@host:/path`, the venv's name in plans, prompts and messages. */
  id: string;
  host: ResolvedHost;
  /** Owning user (operated on with `sudo -n -u` when it differs from `host.user`). */
  user: string;
  /** Absolute local path of the requirements file for this venv. */
  requirements: string;
}

export interface ResolvedSsh extends Omit<ParsedConfig['ssh'], 'knownHosts' | 'identityFile'> {
  /** known_hosts files, absolute, in lookup order. */
  knownHosts: string[];
  identityFile?: string;
  /**
   * The settings the deployfile wrote itself, as opposed to defaults, so that ssh_config can fill the
   * rest. Absent (a config built in code, or no raw deployfile given): every value counts as written.
   */
  explicit?: {
    /** The deployfile's own known_hosts files (absolute), without the default ~/.ssh/known_hosts. */
    knownHosts: string[];
    strictHostKeyChecking?: ParsedConfig['ssh']['strictHostKeyChecking'];
    connectTimeout?: number;
  };
}

export interface ResolvedConfig {
  /** Absolute path of the deployfile (or undefined for a config built in code). */
  file: string | undefined;
  /** Directory that relative local paths are resolved against. */
  dir: string;
  wheels: string;
  requirements: string;
  ssh: ResolvedSsh;
  hosts: ResolvedHost[];
  venvs: ResolvedVenv[];
  /** Shipping (docs/shipping.md): enabled, builder host, local artifact cache limit in MiB. */
  ship: ParsedConfig['ship'];
  /** Top-level `files` entries (docs/files.md), sources absolute. */
  files: ResolvedTopFileEntry[];
  /** Top-level template variables. */
  vars: Record<string, unknown>;
  /** OS packages (docs/packages.md), local paths absolute. */
  packages: ResolvedPackageConfig[];
}

/** A `packages` entry with its local paths (files, service unit) made absolute and its venv found. */
export interface ResolvedPackageConfig extends Omit<PackageConfig, 'service'> {
  service?: { unit: string };
  /** The venv whose desired set it packages. */
  source: ResolvedVenv;
}

/** Expands a leading `~` the way a shell would, for local paths. */
export function expandHome(path: string, home = homedir()): string {
  if (path === '~') return home;
  if (path.startsWith('~/')) return join(home, path.slice(2));
  return path;
}

function localPath(path: string, dir: string): string {
  const expanded = expandHome(path);
  return isAbsolute(expanded) ? expanded : resolve(dir, expanded);
}

/**
 * `raw` is the deployfile's value before schema defaults were applied; given, it records which SSH
 * settings were written (ResolvedSsh.explicit), since ssh_config may fill only the others.
 */
export function resolveConfig(
  parsed: ParsedConfig,
  file: string | undefined,
  dir = file ? dirname(file) : process.cwd(),
  raw?: unknown,
): ResolvedConfig {
  const localUser = userInfo().username;
  const hosts = parsed.hosts.map<ResolvedHost>((h, i) => ({
    ...h,
    files: h.files.map((f, j) => ({ ...f, src: localPath(f.src, dir), entry: `hosts[${i}].files[${j}]` })),
    address: h.address ?? h.name,
    port: h.port ?? 22,
    user: h.user ?? localUser,
    explicit: {
      ...(h.address !== undefined ? { address: h.address } : {}),
      ...(h.port !== undefined ? { port: h.port } : {}),
      ...(h.user !== undefined ? { user: h.user } : {}),
    },
  }));
  const byName = new Map(hosts.map((h) => [h.name, h]));
  const requirements = localPath(parsed.requirements, dir);
  const venvs = parsed.venvs.map<ResolvedVenv>((v) => {
    // The schema has already checked that every venv names a declared host.
    const host = byName.get(v.host)!;
    const user = v.user ?? host.user;
    return {
      ...v,
      id: `${user}@${host.name}:${v.path}`,
      host,
      user,
      requirements: v.requirements ? localPath(v.requirements, dir) : requirements,
    };
  });
  const knownHosts = [parsed.ssh.knownHosts ?? []].flat().map((p) => localPath(p, dir));
  const ownKnownHosts = [...knownHosts];
  const defaultKnownHosts = join(homedir(), '.ssh', 'known_hosts');
  if (!knownHosts.includes(defaultKnownHosts)) knownHosts.push(defaultKnownHosts);
  const { identityFile, knownHosts: _known, ...ssh } = parsed.ssh;
  const rawSsh = raw === undefined ? undefined : writtenSsh(raw);
  const explicit: ResolvedSsh['explicit'] =
    rawSsh === undefined
      ? undefined
      : {
          knownHosts: ownKnownHosts,
          ...(rawSsh.strictHostKeyChecking !== undefined ? { strictHostKeyChecking: ssh.strictHostKeyChecking } : {}),
          ...(rawSsh.connectTimeout !== undefined ? { connectTimeout: ssh.connectTimeout } : {}),
        };
  return {
    file,
    dir,
    wheels: localPath(parsed.wheels, dir),
    requirements,
    ssh: {
      ...ssh,
      knownHosts,
      ...(identityFile ? { identityFile: localPath(identityFile, dir) } : {}),
      ...(explicit ? { explicit } : {}),
    },
    hosts,
    venvs,
    ship: parsed.ship,
    files: parsed.files.map((f, i) => ({ ...f, src: localPath(f.src, dir), entry: `files[${i}]` })),
    vars: parsed.vars,
    packages: (parsed.packages ?? []).map((p) => resolvePackage(p, venvs, dir)),
  };
}

function resolvePackage(p: PackageConfig, venvs: ResolvedVenv[], dir: string): ResolvedPackageConfig {
  const [host, ...rest] = p.venv.split(':');
  const path = posix.normalize(rest.join(':')).replace(/(.)\/+$/, '$1');
  // The schema has checked that the venv is declared.
  const source = venvs.find((v) => v.host.name === host && v.path === path)!;
  const { service, ...other } = p;
  return {
    ...other,
    files: p.files.map((f) => localPath(f, dir)),
    ...(service ? { service: { unit: localPath(service.unit, dir) } } : {}),
    source,
  };
}

// The `ssh` object as the deployfile wrote it (already validated by the schema).
function writtenSsh(raw: unknown): Record<string, unknown> {
  const ssh = raw !== null && typeof raw === 'object' ? (raw as { ssh?: unknown }).ssh : undefined;
  return ssh !== null && typeof ssh === 'object' ? (ssh as Record<string, unknown>) : {};
}
