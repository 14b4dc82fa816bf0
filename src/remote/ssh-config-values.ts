/**
 * ssh_config values as OpenSSH reads them (readconf.c): ports, yes/no, StrictHostKeyChecking modes,
 * times (`1m30s`), ProxyJump hop lists and `%` tokens. Each bad value is a ConfigError naming the
 * keyword, the file and the Host it was looked up for.
 */
import { ConfigError } from '../errors.js';

export type StrictMode = 'yes' | 'accept-new' | 'no';

/** A hop of ProxyJump: `[user@]host[:port]` as written. */
export interface JumpSpec {
  host: string;
  user?: string;
  port?: number;
}

/** `[user@]host[:port]` hops, comma-separated, or `ssh://[user@]host[:port]` URIs; `none` = direct. */
export function parseProxyJump(value: string, where = 'ProxyJump'): JumpSpec[] {
  if (value.toLowerCase() === 'none') return [];
  return value.split(',').map((raw) => {
    const spec = raw.trim();
    const m = /^(?:ssh:\/\/)?(?:([^@/]+)@)?(\[[^\]]+\]|[^:@/[\]]+)(?::(\d+))?\/?$/.exec(spec);
    if (!m || spec === '') {
      throw new ConfigError(`ProxyJump hop ${JSON.stringify(spec)} in ${where} is not [user@]host[:port]`, {
        hint: 'write ProxyJump as a comma-separated list of [user@]host[:port] (or ssh://[user@]host[:port])',
      });
    }
    const host = m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]!;
    return {
      host,
      ...(m[1] !== undefined ? { user: m[1] } : {}),
      ...(m[3] !== undefined ? { port: parsePort(m[3], where) } : {}),
    };
  });
}

/**
 * OpenSSH's `%` tokens (ssh_config(5) TOKENS). An unknown token is an error, as in ssh, rather than
 * a path with a stray `%` in it.
 */
export function expandTokens(value: string, tokens: Record<string, string>, what: string): string {
  return value.replace(/%(.?)/g, (_, token: string) => {
    if (token === '%') return '%';
    const replacement = tokens[token];
    if (replacement === undefined) {
      throw new ConfigError(`${what}: unknown or unsupported token %${token} in ${JSON.stringify(value)}`, {
        hint: 'vdeploy expands %%, %d, %h, %i, %k, %L, %l, %n, %p, %r and %u; write a literal % as %%',
      });
    }
    return replacement;
  });
}

export function parsePort(value: string, where: string): number {
  const port = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new ConfigError(`Port ${JSON.stringify(value)} in ${where} is not a port number`, { hint: 'use a number from 1 to 65535' });
  }
  return port;
}

export function parseCount(value: string, where: string): number {
  if (!/^\d+$/.test(value)) {
    throw new ConfigError(`ServerAliveCountMax ${JSON.stringify(value)} in ${where} is not a number`, { hint: 'use a whole number, e.g. 3' });
  }
  return Number(value);
}

export function parseYesNo(value: string, keyword: string, where: string): boolean {
  const v = value.toLowerCase();
  if (v === 'yes' || v === 'true') return true;
  if (v === 'no' || v === 'false') return false;
  throw new ConfigError(`${keyword} ${JSON.stringify(value)} in ${where} must be yes or no`, { hint: `write ${keyword} yes or ${keyword} no` });
}

export function parseStrict(value: string, where: string): StrictMode {
  const v = value.toLowerCase();
  if (v === 'yes' || v === 'true' || v === 'ask') return 'yes';
  if (v === 'no' || v === 'false' || v === 'off') return 'no';
  if (v === 'accept-new') return 'accept-new';
  throw new ConfigError(`StrictHostKeyChecking ${JSON.stringify(value)} in ${where} is not a mode`, {
    hint: 'use yes, accept-new or no',
  });
}

/** OpenSSH's time format (convtime): `30`, `30s`, `1m30s`, `2h`…; `none` for ConnectTimeout = unset. */
export function timeOption(value: string | undefined, keyword: string, where: string): number | undefined {
  if (value === undefined || value.toLowerCase() === 'none') return undefined;
  const units: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  let total = 0;
  const rest = value.toLowerCase().replace(/(\d+)([smhdw]?)/g, (_, n: string, unit: string) => {
    total += Number(n) * units[unit]!;
    return '';
  });
  if (rest !== '' || value === '') {
    throw new ConfigError(`${keyword} ${JSON.stringify(value)} in ${where} is not a time`, { hint: 'use seconds, e.g. 10, or a time like 1m30s' });
  }
  return total;
}

// ProxyJump's hops; a ProxyCommand cannot be honoured, and connecting directly instead would bypass
// what the user set up, so it is refused.
export function proxyJump(proxy: string[] | undefined, where: string): JumpSpec[] {
  if (!proxy) return [];
  const [keyword, value = ''] = proxy;
  if (keyword === 'proxyjump') return parseProxyJump(value, where);
  if (value.toLowerCase() === 'none') return [];
  throw new ConfigError(`${where} sets ProxyCommand, which vdeploy does not run`, {
    hint: 'use ProxyJump for jump hosts (vdeploy supports it), or set `ProxyCommand none` for this host',
  });
}
