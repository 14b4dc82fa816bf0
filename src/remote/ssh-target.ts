/**
 * What vdeploy connects to for a deployfile host, and how: the deployfile's values, the user's
 * ssh_config and vdeploy's defaults merged into one plain value per connection hop. Pure, so the
 * precedence rules are unit-testable:
 *
 *   --strict-host-key-checking  >  deployfile  >  ssh_config  >  default
 *
 * known_hosts files add up instead: --known-hosts files, then the deployfile's, then the host's
 * UserKnownHostsFile (default ~/.ssh/known_hosts).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ResolvedConfig, ResolvedHost } from '../config/resolve-config.js';
import type { StrictHostKeyChecking } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import { DEFAULT_IDENTITY_FILES } from './ssh-auth.js';
import { resolveSshHost, type JumpSpec, type SshConfig, type SshHostSettings } from './ssh-config.js';

/** One SSH connection to make: the target itself, or a ProxyJump hop on the way. */
export interface SshEndpoint {
  /** The name the user knows it by (deployfile host name, or the ProxyJump hop as written). */
  name: string;
  /** What to connect to (from the previous hop's point of view for a jumped connection). */
  address: string;
  port: number;
  user: string;
  /** Private key files to offer; undefined: OpenSSH's defaults (~/.ssh/id_ed25519, …), skipped when missing. */
  identityFiles: string[] | undefined;
  /** Offer only agent keys that belong to identityFiles (IdentitiesOnly yes). */
  identitiesOnly: boolean;
  /** known_hosts files in lookup order; unknown keys are recorded in the first (accept-new). */
  knownHostsFiles: string[];
  strictHostKeyChecking: StrictHostKeyChecking;
  connectTimeoutMs: number;
  /** 0 = no keepalives. */
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
}

export interface SshTarget extends SshEndpoint {
  /** ProxyJump hops in the order they are connected; empty for a direct connection. */
  jumps: SshEndpoint[];
}

export interface SshTargetOptions {
  sshConfig: SshConfig;
  /** --known-hosts files, consulted first. */
  extraKnownHosts?: readonly string[];
  /** --strict-host-key-checking: wins over everything. */
  strictHostKeyChecking?: StrictHostKeyChecking;
  localUser?: string;
  home?: string;
}

const DEFAULT_KEEPALIVE_S = 15;
const DEFAULT_KEEPALIVE_COUNT = 3;
/** A chain longer than this is a ProxyJump loop in ssh_config. */
const MAX_JUMPS = 8;

export function resolveSshTarget(config: ResolvedConfig, host: ResolvedHost, options: SshTargetOptions): SshTarget {
  // A host built in code (no `explicit`) means every address/port/user was meant as written.
  const written = host.explicit ?? { address: host.address, port: host.port, user: host.user };
  const settings = resolveSshHost(options.sshConfig, host.name, {
    ...(written.address !== undefined ? { hostName: written.address } : {}),
    ...(written.port !== undefined ? { port: written.port } : {}),
    ...(written.user !== undefined ? { user: written.user } : {}),
    ...localFacts(options),
  });
  const deployKey = config.ssh.identityFile;
  const target = endpoint(config, options, host.name, settings, deployKey ? [deployKey] : settings.identityFiles);
  return { ...target, jumps: resolveJumps(config, options, settings.proxyJump, [host.name]) };
}

/** A stable key for a connection path: the same hops to the same user@address:port share a connection. */
export function endpointKey(chain: readonly SshEndpoint[]): string {
  return chain.map((e) => `${e.user}@${e.address}:${e.port}`).join(' > ');
}

// As `ssh -J a,b target`: the first hop is reached however ssh_config says (its own ProxyJump too),
// each later hop through the one before, whatever its own ProxyJump.
function resolveJumps(config: ResolvedConfig, options: SshTargetOptions, specs: readonly JumpSpec[], via: string[]): SshEndpoint[] {
  if (specs.length === 0) return [];
  if (via.length > MAX_JUMPS) {
    throw new ConfigError(`ProxyJump for ${via[0]} goes through more than ${MAX_JUMPS} hops: ${via.join(' <- ')}`, {
      hint: 'look for hosts whose ProxyJump settings point at each other in ssh_config',
    });
  }
  const hop = (spec: JumpSpec) => {
    const settings = resolveSshHost(options.sshConfig, spec.host, {
      ...(spec.user !== undefined ? { user: spec.user } : {}),
      ...(spec.port !== undefined ? { port: spec.port } : {}),
      ...localFacts(options),
    });
    // ssh passes no -i to the jump connection; the deployfile's key is only offered after the hop's own.
    const deployKey = config.ssh.identityFile;
    const keys = deployKey ? [...(settings.identityFiles ?? DEFAULT_IDENTITY_FILES), deployKey] : settings.identityFiles;
    return { settings, endpoint: endpoint(config, options, spec.host, settings, keys) };
  };
  const [first, ...rest] = specs;
  const firstHop = hop(first!);
  return [
    ...resolveJumps(config, options, firstHop.settings.proxyJump, [...via, first!.host]),
    firstHop.endpoint,
    ...rest.map((spec) => hop(spec).endpoint),
  ];
}

function endpoint(
  config: ResolvedConfig,
  options: SshTargetOptions,
  name: string,
  settings: SshHostSettings,
  identityFiles: string[] | undefined,
): SshEndpoint {
  const written = config.ssh.explicit;
  const home = options.home ?? homedir();
  // Without `explicit` (a config built in code) the deployfile values count as written.
  const deployfileKnownHosts = written ? written.knownHosts : config.ssh.knownHosts;
  const deployfileStrict = written ? written.strictHostKeyChecking : config.ssh.strictHostKeyChecking;
  const deployfileTimeout = written ? written.connectTimeout : config.ssh.connectTimeout;
  const keepalive = settings.serverAliveInterval ?? DEFAULT_KEEPALIVE_S;
  return {
    name,
    address: settings.hostName,
    port: settings.port,
    user: settings.user,
    identityFiles,
    identitiesOnly: settings.identitiesOnly,
    knownHostsFiles: unique([
      ...(options.extraKnownHosts ?? []),
      ...deployfileKnownHosts,
      ...(settings.userKnownHostsFiles ?? [join(home, '.ssh', 'known_hosts')]),
    ]),
    strictHostKeyChecking: options.strictHostKeyChecking ?? deployfileStrict ?? settings.strictHostKeyChecking ?? 'yes',
    // `ConnectTimeout none` (or 0) leaves vdeploy's default: a run never waits forever for one host.
    connectTimeoutMs: (deployfileTimeout ?? (settings.connectTimeout || undefined) ?? config.ssh.connectTimeout) * 1000,
    keepaliveIntervalMs: keepalive * 1000,
    keepaliveCountMax: settings.serverAliveCountMax ?? DEFAULT_KEEPALIVE_COUNT,
  };
}

function localFacts(options: SshTargetOptions): { localUser?: string; home?: string } {
  return {
    ...(options.localUser !== undefined ? { localUser: options.localUser } : {}),
    ...(options.home !== undefined ? { home: options.home } : {}),
  };
}

function unique(paths: readonly string[]): string[] {
  return [...new Set(paths)];
}

/**
 * The name a connection to this target goes by (`Connection.target`, as ssh-connection.ts spells it),
 * worked out without connecting: it keys the interpreter cache, which `vdeploy fetch` reads offline.
 */
export function targetName(target: SshTarget): string {
  const via = target.jumps.at(-1)?.name;
  return `${target.user}@${target.address}:${target.port}${via ? ` via ${via}` : ''}`;
}
