/**
 * OpenSSH known_hosts files, read with OpenSSH's own matching rules (hostfile.c / match.c) so that a
 * file that works for `ssh` works the same for vdeploy: plain and hashed names, `[host]:port`, comma
 * lists with `*`/`?` wildcards and `!` negation, and the `@revoked` / `@cert-authority` markers.
 */
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { ConfigError } from '../errors.js';

export interface KnownHostEntry {
  file: string;
  /** 1-based line number in `file`. */
  line: number;
  marker: 'revoked' | 'cert-authority' | null;
  /** The host field as written: a pattern list, or one `|1|salt|hash` hashed name. */
  hosts: string;
  keyType: string;
  keyBlob: Buffer;
}

export interface KnownKey {
  file: string;
  line: number;
  keyType: string;
  fingerprint: string;
}

export type HostKeyVerdict =
  | { status: 'match' }
  | { status: 'unknown' }
  | { status: 'changed'; known: KnownKey }
  | { status: 'revoked'; file: string; line: number };

export class KnownHosts {
  constructor(
    /** The files consulted, in order, whether or not they existed. */
    readonly paths: readonly string[],
    readonly entries: readonly KnownHostEntry[],
  ) {}

  /** Entries whose host field matches any of `hostnames` at `port` (what `ssh-keygen -F` lists). */
  lookup(hostnames: readonly string[], port: number): KnownHostEntry[] {
    const names = hostnames.map((h) => hostPortName(h, port).toLowerCase());
    return this.entries.filter((e) => names.some((name) => matchesHostField(name, e.hosts)));
  }

  /**
   * Judge the key a host presented. As in OpenSSH: a revoked key is refused whatever else is known,
   * any entry with exactly this key is a match, and otherwise any other key on record (of any type)
   * means the key changed.
   */
  check(hostnames: readonly string[], port: number, keyType: string, keyBlob: Buffer): HostKeyVerdict {
    const found = this.lookup(hostnames, port);
    const revoked = found.find((e) => e.marker === 'revoked' && e.keyBlob.equals(keyBlob));
    if (revoked) return { status: 'revoked', file: revoked.file, line: revoked.line };
    // Certificate authorities only vouch for certificates, which vdeploy does not use: no entry.
    const keys = found.filter((e) => e.marker === null);
    if (keys.some((e) => e.keyBlob.equals(keyBlob))) return { status: 'match' };
    const known = keys.find((e) => e.keyType === keyType) ?? keys[0];
    if (!known) return { status: 'unknown' };
    return {
      status: 'changed',
      known: { file: known.file, line: known.line, keyType: known.keyType, fingerprint: fingerprintSha256(known.keyBlob) },
    };
  }
}

/** Read known_hosts files; a file that does not exist simply contributes nothing. */
export function loadKnownHosts(paths: readonly string[]): KnownHosts {
  const resolved = paths.map(expandHome);
  const entries: KnownHostEntry[] = [];
  for (const file of resolved) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw new ConfigError(`cannot read known_hosts file ${file}: ${(err as Error).message}`, {
        hint: 'fix its permissions or point UserKnownHostsFile at a readable file',
        cause: err,
      });
    }
    entries.push(...parseKnownHosts(text, file));
  }
  return new KnownHosts(resolved, entries);
}

/**
 * Parse known_hosts text. Lines OpenSSH would skip (comments, unknown markers, SSH1 keys, malformed
 * keys) are skipped here too, silently, as ssh does.
 */
export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, index) => {
    let fields = raw.replace(/\r$/, '').trim().split(/[ \t]+/);
    if (fields[0] === '' || fields[0]!.startsWith('#')) return;
    let marker: KnownHostEntry['marker'] = null;
    if (fields[0]!.startsWith('@')) {
      if (fields[0] === '@revoked') marker = 'revoked';
      else if (fields[0] === '@cert-authority') marker = 'cert-authority';
      else return;
      fields = fields.slice(1);
    }
    const [hosts, keyType, base64] = fields;
    if (!hosts || !keyType || !base64) return;
    const keyBlob = decodeKeyBlob(keyType, base64);
    if (keyBlob) entries.push({ file, line: index + 1, marker, hosts, keyType, keyBlob });
  });
  return entries;
}

/** The name OpenSSH looks up for a host and port: `host` for 22, else `[host]:port`. */
export function hostPortName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The key fingerprint exactly as OpenSSH prints it: `SHA256:` and unpadded base64. */
export function fingerprintSha256(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside an SSH wire-format public key blob, e.g. "ssh-ed25519"; null if malformed. */
export function keyTypeOf(keyBlob: Buffer): string | null {
  if (keyBlob.length < 4) return null;
  const length = keyBlob.readUInt32BE(0);
  if (length === 0 || length > 64 || keyBlob.length < 4 + length) return null;
  return keyBlob.subarray(4, 4 + length).toString('latin1');
}

/** Does a lowercased lookup name match a known_hosts host field (hashed name or pattern list)? */
export function matchesHostField(name: string, hosts: string): boolean {
  if (hosts.startsWith('|')) return matchesHashedName(name, hosts);
  return matchPatternList(name, hosts) === 1;
}

/**
 * OpenSSH's match_pattern_list: 1 if some pattern matches, -1 if a negated one does (which wins over
 * everything), 0 otherwise. Patterns are compared in lowercase.
 */
export function matchPatternList(name: string, list: string): 1 | 0 | -1 {
  let positive = false;
  for (const item of list.split(',')) {
    const negated = item.startsWith('!');
    const pattern = (negated ? item.slice(1) : item).toLowerCase();
    if (!globToRegExp(pattern).test(name)) continue;
    if (negated) return -1;
    positive = true;
  }
  return positive ? 1 : 0;
}

/** One OpenSSH wildcard pattern (`*`, `?`; no lists, no negation) against a name, case-sensitively as match_pattern. */
export function matchGlob(name: string, pattern: string): boolean {
  return globToRegExp(pattern).test(name);
}

function matchesHashedName(name: string, hosts: string): boolean {
  // `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`; only magic "1" exists and its salt is 20 bytes.
  const parts = hosts.split('|');
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2]!, 'base64');
  if (salt.length !== 20) return false;
  return createHmac('sha1', salt).update(name).digest('base64') === parts[3];
}

const globCache = new Map<string, RegExp>();
function globToRegExp(pattern: string): RegExp {
  let re = globCache.get(pattern);
  if (!re) {
    const body = pattern.replace(/[.+^${}()|[\]\\*?]/g, (c) => (c === '*' ? '[^]*' : c === '?' ? '[^]' : `\\${c}`));
    re = new RegExp(`^${body}$`);
    globCache.set(pattern, re);
  }
  return re;
}

// The base64 blob must decode to a key whose embedded type is the declared one, as sshkey_read demands.
function decodeKeyBlob(keyType: string, base64: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return null;
  const blob = Buffer.from(base64, 'base64');
  return keyTypeOf(blob) === keyType ? blob : null;
}

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? homedir() + path.slice(1) : path;
}
