/**
 * The user's OpenSSH client configuration (~/.ssh/config, or --ssh-config FILE), parsed with the
 * `ssh-config` package and applied with OpenSSH's own rules (ssh_config(5), readconf.c), checked
 * against `ssh -G` in the tests: `Host` patterns matched case-sensitively against the name given, the
 * first value obtained for each keyword wins, `IdentityFile` accumulates, `Include` is read in place.
 *
 * `Match` blocks are skipped, whatever their criteria: evaluating `Match exec` would run commands
 * from the config file, and the other criteria depend on state (canonicalization, the final pass)
 * that vdeploy does not reproduce. The package's own `compute()` is not used for the same reason
 * (it runs `Match exec` and `nslookup` by default) and because its `?` wildcard matches zero
 * characters, unlike OpenSSH's.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { homedir, hostname, userInfo } from 'node:os';
import { isAbsolute, join } from 'node:path';
import SSHConfig, { LineType, type Line } from 'ssh-config';
import { ConfigError } from '../errors.js';
import { matchGlob } from './known-hosts.js';
import {
  expandTokens,
  parseCount,
  parsePort,
  parseStrict,
  parseYesNo,
  proxyJump,
  timeOption,
  type JumpSpec,
  type StrictMode,
} from './ssh-config-values.js';

export { expandTokens, parseProxyJump, type JumpSpec } from './ssh-config-values.js';

/** One parsed config file; Include directives already read (their files' items inlined as children). */
export interface SshConfig {
  /** The file read, or undefined for an empty config (no ~/.ssh/config). */
  file: string | undefined;
  items: ConfigItem[];
}

type ConfigItem =
  | { kind: 'host'; patterns: string[]; body: ConfigItem[] }
  | { kind: 'match' }
  | { kind: 'option'; key: string; args: string[] }
  | { kind: 'include'; files: ConfigItem[][] };

/** The effective settings for one host, after precedence (given values > ssh_config > defaults). */
export interface SshHostSettings {
  /** The name looked up, as it would follow `ssh` (%n). */
  host: string;
  /** Where to connect (HostName, %h expanded; default: `host`). */
  hostName: string;
  user: string;
  port: number;
  /** IdentityFile paths, expanded; undefined when none is configured (OpenSSH's defaults apply). */
  identityFiles: string[] | undefined;
  identitiesOnly: boolean;
  /** ProxyJump hops in order; empty for a direct connection (or `ProxyJump none`). */
  proxyJump: JumpSpec[];
  /** Seconds; undefined when ssh_config does not set it. */
  connectTimeout: number | undefined;
  /** Seconds, 0 = off; undefined when not set. */
  serverAliveInterval: number | undefined;
  serverAliveCountMax: number | undefined;
  /** Expanded; [] for `UserKnownHostsFile none`; undefined when not set. */
  userKnownHostsFiles: string[] | undefined;
  /** `ask` reads as `yes` (vdeploy does not ask mid-run), `off`/`false` as `no`; undefined when not set. */
  strictHostKeyChecking: StrictMode | undefined;
}

/** Values that win over ssh_config (the deployfile's), and the local facts tokens expand to. */
export interface SshHostOverrides {
  hostName?: string;
  user?: string;
  port?: number;
  /** Default: the user running vdeploy. */
  localUser?: string;
  /** Default: the home directory of the user running vdeploy. */
  home?: string;
}

/** OpenSSH's limit on nested Include (READCONF_MAX_DEPTH). */
const MAX_INCLUDE_DEPTH = 16;

/**
 * Read an ssh_config file. Without `file`, ~/.ssh/config, which may be missing (an empty config);
 * a `file` that was asked for explicitly must exist. Unreadable or unparsable files are ConfigErrors.
 */
export function readSshConfig(file?: string, home = homedir()): SshConfig {
  const path = file ?? join(home, '.ssh', 'config');
  const text = readConfigText(path, file !== undefined);
  if (text === undefined) return { file: undefined, items: [] };
  return { file: path, items: parseConfigText(text, path, home, 0) };
}

/** Parse ssh_config text (Include paths are read relative to ~/.ssh, as for a user config). */
export function parseSshConfig(text: string, file = '(ssh config)', home = homedir()): SshConfig {
  return { file, items: parseConfigText(text, file, home, 0) };
}

/**
 * The settings OpenSSH would use for `ssh host`, with `overrides` (the deployfile's own values) winning
 * over ssh_config and ssh_config over the defaults (HostName = host, User = the local user, Port 22).
 */
export function resolveSshHost(config: SshConfig, host: string, overrides: SshHostOverrides = {}): SshHostSettings {
  const found = collectOptions(config, host);
  const where = `${config.file ?? 'ssh config'} (Host ${host})`;
  const localUser = overrides.localUser ?? userInfo().username;
  const home = overrides.home ?? homedir();
  const one = (key: string) => found.get(key)?.[0];

  // ssh lowercases the host name it connects to (what `ssh -G` prints as hostname).
  const hostName = (
    overrides.hostName ?? (one('hostname') ? expandTokens(one('hostname')!, { h: host }, `HostName in ${where}`) : host)
  ).toLowerCase();
  const user = overrides.user ?? one('user') ?? localUser;
  const port = overrides.port ?? (one('port') ? parsePort(one('port')!, where) : 22);
  const tokens: Record<string, string> = {
    h: hostName,
    n: host,
    k: host,
    p: String(port),
    r: user,
    u: localUser,
    d: home,
    i: String(userInfo().uid),
    l: hostname(),
    L: hostname().split('.')[0]!,
  };
  const pathOf = (value: string, what: string) => expandHome(expandTokens(value, tokens, `${what} in ${where}`), home);

  const identityFiles = found.get('identityfile')?.map((f) => pathOf(f, 'IdentityFile'));
  const knownHostsArgs = found.get('userknownhostsfile');
  return {
    host,
    hostName,
    user,
    port,
    identityFiles: identityFiles && identityFiles.length > 0 ? identityFiles : undefined,
    identitiesOnly: one('identitiesonly') ? parseYesNo(one('identitiesonly')!, 'IdentitiesOnly', where) : false,
    proxyJump: proxyJump(found.get('proxy'), where),
    connectTimeout: timeOption(one('connecttimeout'), 'ConnectTimeout', where),
    serverAliveInterval: timeOption(one('serveraliveinterval'), 'ServerAliveInterval', where),
    serverAliveCountMax: one('serveralivecountmax') ? parseCount(one('serveralivecountmax')!, where) : undefined,
    userKnownHostsFiles: knownHostsArgs
      ? knownHostsArgs[0]?.toLowerCase() === 'none'
        ? []
        : knownHostsArgs.map((f) => pathOf(f, 'UserKnownHostsFile'))
      : undefined,
    strictHostKeyChecking: one('stricthostkeychecking') ? parseStrict(one('stricthostkeychecking')!, where) : undefined,
  };
}

// Every keyword's values that apply to `host`, first occurrence winning (IdentityFile: all of them).
function collectOptions(config: SshConfig, host: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  // Host patterns match the name as given, case-sensitively, as OpenSSH's match_pattern does.
  const name = host;
  const apply = (items: ConfigItem[], active: boolean, neverMatch: boolean): void => {
    for (const item of items) {
      switch (item.kind) {
        case 'host':
          apply(item.body, !neverMatch && matchHostPatterns(name, item.patterns), neverMatch);
          break;
        case 'match':
          break; // never evaluated: see the module comment
        case 'include':
          // As readconf.c: an Include in a block that does not apply can never make its Hosts apply.
          for (const items of item.files) apply(items, active, neverMatch || !active);
          break;
        case 'option':
          if (!active) break;
          if (item.key === 'identityfile') found.set(item.key, [...(found.get(item.key) ?? []), ...item.args]);
          // ProxyJump and ProxyCommand exclude each other: whichever comes first wins.
          else if (item.key === 'proxyjump' || item.key === 'proxycommand') {
            if (!found.has('proxy')) found.set('proxy', [item.key, ...item.args]);
          } else if (!found.has(item.key)) found.set(item.key, item.args);
      }
    }
  };
  apply(config.items, true, false);
  return found;
}

// A negated pattern that matches makes the whole Host line not apply, whatever else matches.
function matchHostPatterns(name: string, patterns: readonly string[]): boolean {
  let matched = false;
  for (const pattern of patterns) {
    if (pattern.startsWith('!')) {
      if (matchGlob(name, pattern.slice(1))) return false;
    } else if (matchGlob(name, pattern)) {
      matched = true;
    }
  }
  return matched;
}

function readConfigText(path: string, mustExist: boolean): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!mustExist && (code === 'ENOENT' || code === 'ENOTDIR')) return undefined;
    throw new ConfigError(`cannot read ssh config ${path}: ${(err as Error).message}`, {
      hint: code === 'ENOENT' ? 'check the --ssh-config path' : 'fix the file\'s permissions',
      cause: err,
    });
  }
}

function parseConfigText(text: string, file: string, home: string, depth: number): ConfigItem[] {
  let lines: SSHConfig;
  try {
    lines = SSHConfig.parse(text);
  } catch (err) {
    throw new ConfigError(`cannot parse ssh config ${file}: ${(err as Error).message}`, {
      hint: 'fix the line it names; `ssh -G HOST -F FILE` shows how OpenSSH reads it',
      cause: err,
    });
  }
  return convertLines(lines, file, home, depth);
}

function convertLines(lines: readonly Line[], file: string, home: string, depth: number): ConfigItem[] {
  const items: ConfigItem[] = [];
  for (const line of lines) {
    if (line.type !== LineType.DIRECTIVE) continue;
    const key = line.param.toLowerCase();
    const args = Array.isArray(line.value) ? line.value.map((v) => v.val) : [line.value];
    if ('config' in line && key === 'host') {
      items.push({ kind: 'host', patterns: args, body: convertLines(line.config, file, home, depth) });
    } else if ('config' in line) {
      items.push({ kind: 'match' });
    } else if (key === 'include') {
      items.push({ kind: 'include', files: readIncludes(args, file, home, depth + 1) });
    } else {
      items.push({ kind: 'option', key, args });
    }
  }
  return items;
}

// Include paths: `~` expanded, relative ones under ~/.ssh (as for a user config), globs expanded, sorted.
function readIncludes(patterns: readonly string[], from: string, home: string, depth: number): ConfigItem[][] {
  if (depth > MAX_INCLUDE_DEPTH) {
    throw new ConfigError(`ssh config ${from}: Include nested more than ${MAX_INCLUDE_DEPTH} deep`, {
      hint: 'look for a file that includes itself',
    });
  }
  const files: ConfigItem[][] = [];
  for (const pattern of patterns) {
    const expanded = expandHome(pattern, home);
    const absolute = isAbsolute(expanded) ? expanded : join(home, '.ssh', expanded);
    for (const path of expandFileGlob(absolute)) {
      const text = readConfigText(path, false);
      if (text !== undefined) files.push(parseConfigText(text, path, home, depth));
    }
  }
  return files;
}

// glob(3) for `*` and `?` in any path component, enough for `Include config.d/*.conf`.
function expandFileGlob(path: string): string[] {
  if (!/[*?]/.test(path)) return [path];
  const parts = path.split('/');
  let found = [parts[0] === '' ? '/' : parts[0]!];
  for (const part of parts.slice(1)) {
    if (part === '') continue;
    if (!/[*?]/.test(part)) {
      found = found.map((dir) => join(dir, part));
      continue;
    }
    const re = new RegExp(`^${part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`);
    found = found.flatMap((dir) => {
      try {
        return readdirSync(dir)
          .filter((entry) => re.test(entry) && !(entry.startsWith('.') && !part.startsWith('.')))
          .sort()
          .map((entry) => join(dir, entry));
      } catch {
        return [];
      }
    });
  }
  return found;
}

function expandHome(path: string, home: string): string {
  if (path === '~') return home;
  return path.startsWith('~/') ? join(home, path.slice(2)) : path;
}
