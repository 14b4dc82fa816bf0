/**
 * Turns a validated deployfile into the resolved config every command works on: local paths made
 * absolute (relative to the deployfile), defaults that depend on the machine filled in, and each venv
 * linked to its host.
 */
import { homedir, userInfo } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { ParsedConfig } from './schema.js';

type ParsedHost = ParsedConfig['hosts'][number];
type ParsedVenv = ParsedConfig['venvs'][number];

export interface ResolvedHost extends ParsedHost {
  address: string;
  port: number;
  /** SSH login user. */
  user: string;
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

export function resolveConfig(parsed: ParsedConfig, file: string | undefined, dir = file ? dirname(file) : process.cwd()): ResolvedConfig {
  const localUser = userInfo().username;
  const hosts = parsed.hosts.map<ResolvedHost>((h) => ({
    ...h,
    address: h.address ?? h.name,
    port: h.port ?? 22,
    user: h.user ?? localUser,
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
  const defaultKnownHosts = join(homedir(), '.ssh', 'known_hosts');
  if (!knownHosts.includes(defaultKnownHosts)) knownHosts.push(defaultKnownHosts);
  const { identityFile, knownHosts: _known, ...ssh } = parsed.ssh;
  return {
    file,
    dir,
    wheels: localPath(parsed.wheels, dir),
    requirements,
    ssh: { ...ssh, knownHosts, ...(identityFile ? { identityFile: localPath(identityFile, dir) } : {}) },
    hosts,
    venvs,
  };
}
