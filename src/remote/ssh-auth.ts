/**
 * Which credentials to offer a host: the ssh-agent's keys, then private keys from identity files,
 * decrypting encrypted ones with a passphrase (VDEPLOY_SSH_PASSPHRASE or a prompt the CLI provides).
 * Never a password: vdeploy runs unattended across many hosts.
 *
 * A KeyRing is shared by every connection of a run, so a passphrase is asked once per key file and
 * the agent is listed once, however many hosts there are.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, IdentityCallback, ParsedKey } from 'ssh2';
import { ConnectError } from '../errors.js';
import { Semaphore } from './semaphore.js';

/** What OpenSSH tries when no IdentityFile is configured. */
export const DEFAULT_IDENTITY_FILES = ['~/.ssh/id_ed25519', '~/.ssh/id_ecdsa', '~/.ssh/id_rsa'];

/** Asked for the passphrase of an encrypted key; undefined means "none" (skip the key). */
export type PassphraseSource = (keyFile: string, attempt: number) => Promise<string | undefined>;

export interface KeyRingOptions {
  /** Tried first when set (VDEPLOY_SSH_PASSPHRASE): one passphrase for every encrypted key. */
  passphrase?: string;
  /** Then this (the CLI's terminal prompt), up to three times per key. */
  askPassphrase?: PassphraseSource;
}

export interface AuthOptions {
  /** Private key files; undefined means OpenSSH's defaults, which are skipped silently when missing. */
  identityFiles?: readonly string[];
  /** Offer only the agent keys that belong to identityFiles (OpenSSH IdentitiesOnly). */
  identitiesOnly?: boolean;
  /** SSH_AUTH_SOCK of an ssh-agent. */
  agent?: string;
  keyRing?: KeyRing;
}

export interface AuthPlan {
  /** In the order ssh2 tries them. */
  methods: AnyAuthMethod[];
  /** Human names of what is offered, e.g. ["ssh-agent (2 keys)", "/root/.ssh/id_ed25519"], for messages. */
  offered: string[];
  /** Keys that were left out and why, for the message when the server refuses what was offered. */
  skipped: string[];
}

type KeyFile =
  | { status: 'key'; key: ParsedKey; publicBlob: Buffer }
  | { status: 'encrypted'; data: Buffer; publicBlob: Buffer | undefined }
  | { status: 'missing' }
  | { status: 'unusable'; why: string };

const MAX_PASSPHRASE_ATTEMPTS = 3;

export class KeyRing {
  private readonly files = new Map<string, Promise<KeyFile>>();
  private readonly decrypted = new Map<string, Promise<ParsedKey | undefined | WrongPassphrase>>();
  private readonly agents = new Map<string, Promise<Buffer[] | Error>>();
  /** One prompt on the terminal at a time. */
  private readonly prompts = new Semaphore(1);

  constructor(private readonly options: KeyRingOptions = {}) {}

  /** A key file read once per run, decrypted or not. */
  read(file: string): Promise<KeyFile> {
    let loaded = this.files.get(file);
    if (!loaded) this.files.set(file, (loaded = readKeyFile(file)));
    return loaded;
  }

  /**
   * The decrypted key, or undefined when no passphrase was available; a ConnectError naming `host`
   * when every passphrase given was wrong. Asked once per file for the whole run.
   */
  async decrypt(host: string, file: string, data: Buffer): Promise<ParsedKey | undefined> {
    let outcome = this.decrypted.get(file);
    if (!outcome) this.decrypted.set(file, (outcome = this.tryPassphrases(file, data)));
    const result = await outcome;
    if (!(result instanceof WrongPassphrase)) return result;
    throw new ConnectError(host, result.message, { hint: result.hint });
  }

  /** The agent's public keys (wire format), listed once; an Error when the agent cannot be reached. */
  agentKeys(socket: string): Promise<Buffer[] | Error> {
    let keys = this.agents.get(socket);
    if (!keys) {
      keys = new Promise((resolve) => {
        new ssh2.OpenSSHAgent(socket).getIdentities((err, found) =>
          resolve(err ? err : (found ?? []).map(agentKeyBlob)),
        );
      });
      this.agents.set(socket, keys);
    }
    return keys;
  }

  private async tryPassphrases(file: string, data: Buffer): Promise<ParsedKey | undefined | WrongPassphrase> {
    const env = this.options.passphrase;
    if (env !== undefined) {
      return (
        decryptKey(data, env) ??
        new WrongPassphrase(
          `wrong passphrase for encrypted key ${file} (from VDEPLOY_SSH_PASSPHRASE)`,
          "set VDEPLOY_SSH_PASSPHRASE to this key's passphrase, unset it to be asked on a terminal, or load the key with `ssh-add`",
        )
      );
    }
    const ask = this.options.askPassphrase;
    if (!ask) return undefined;
    return this.prompts.run(async () => {
      for (let attempt = 1; attempt <= MAX_PASSPHRASE_ATTEMPTS; attempt++) {
        const passphrase = await ask(file, attempt);
        if (passphrase === undefined) return undefined;
        const key = decryptKey(data, passphrase);
        if (key) return key;
      }
      return new WrongPassphrase(
        `wrong passphrase for encrypted key ${file} (${MAX_PASSPHRASE_ATTEMPTS} attempts)`,
        `check the passphrase with \`ssh-keygen -y -f ${file}\`, or load the key with \`ssh-add ${file}\``,
      );
    });
  }
}

/** The cached outcome of a key whose passphrases were all wrong (turned into a ConnectError per host). */
class WrongPassphrase {
  constructor(
    readonly message: string,
    readonly hint: string,
  ) {}
}

/**
 * Decide what to offer. Agent keys go first (as ssh does), then identity files the agent does not
 * already hold; an encrypted file is decrypted only then, so a key loaded into ssh-agent never
 * prompts. Throws a ConnectError when nothing at all can be offered.
 */
export async function planAuth(host: string, username: string, options: AuthOptions = {}): Promise<AuthPlan> {
  const keyRing = options.keyRing ?? new KeyRing();
  const explicitFiles = options.identityFiles !== undefined;
  const files = (options.identityFiles ?? DEFAULT_IDENTITY_FILES).map(expandHome);
  const defaults = new Set(DEFAULT_IDENTITY_FILES.map(expandHome));
  const methods: AnyAuthMethod[] = [];
  const offered: string[] = [];
  const skipped: string[] = [];
  const problems: string[] = [];

  const read = await Promise.all(files.map(async (file) => ({ file, loaded: await keyRing.read(file) })));
  const filePublicBlobs = read.flatMap(({ loaded }) => ('publicBlob' in loaded && loaded.publicBlob ? [loaded.publicBlob] : []));

  let agentBlobs: Buffer[] = [];
  if (options.agent) {
    const listed = await keyRing.agentKeys(options.agent);
    if (listed instanceof Error) {
      skipped.push(`ssh-agent at ${options.agent}: ${listed.message}`);
    } else {
      // IdentitiesOnly: only agent keys that are also identity files (e.g. an encrypted key, ssh-added).
      const allowed = options.identitiesOnly ? listed.filter((b) => filePublicBlobs.some((f) => f.equals(b))) : listed;
      if (allowed.length > 0) {
        agentBlobs = allowed;
        methods.push({ type: 'agent', username, agent: new SelectedKeysAgent(options.agent, allowed) });
        offered.push(`ssh-agent (${allowed.length} key${allowed.length === 1 ? '' : 's'})`);
      } else if (listed.length === 0) {
        skipped.push('ssh-agent: holds no keys');
      }
    }
  }

  for (const { file, loaded } of read) {
    if ('publicBlob' in loaded && loaded.publicBlob && agentBlobs.some((b) => b.equals(loaded.publicBlob!))) continue;
    switch (loaded.status) {
      case 'key':
        methods.push({ type: 'publickey', username, key: loaded.key });
        offered.push(file);
        break;
      case 'encrypted': {
        const key = await keyRing.decrypt(host, file, loaded.data);
        if (key) {
          methods.push({ type: 'publickey', username, key });
          offered.push(file);
        } else {
          skipped.push(`${file}: encrypted and no passphrase given`);
        }
        break;
      }
      case 'missing':
        if (explicitFiles && !defaults.has(file)) problems.push(`${file}: not found`);
        break;
      case 'unusable':
        problems.push(`${file}: ${loaded.why}`);
    }
  }
  if (methods.length > 0) return { methods, offered, skipped: [...skipped, ...problems] };

  const encrypted = skipped.filter((s) => s.endsWith('encrypted and no passphrase given')).map((s) => s.split(': ')[0]!);
  if (encrypted.length > 0) {
    throw new ConnectError(host, `encrypted key ${encrypted.join(', ')} needs a passphrase and none was given`, {
      hint: `run vdeploy on a terminal to be asked for it, set VDEPLOY_SSH_PASSPHRASE, or load the key into ssh-agent (\`ssh-add ${encrypted[0]}\`)`,
    });
  }
  const tried = [...problems, ...skipped];
  const what =
    tried.length > 0
      ? tried.join('; ')
      : `no IdentityFile configured, no default key (${DEFAULT_IDENTITY_FILES.join(', ')})${options.agent ? '' : ' and no SSH_AUTH_SOCK'}`;
  throw new ConnectError(host, `no usable SSH key for ${host}: ${what}`, {
    hint: 'set IdentityFile for the host (ssh_config, or ssh.identityFile in the deployfile), or start ssh-agent and `ssh-add` the key',
  });
}

/**
 * The agent, offering only the keys chosen here (IdentitiesOnly), in the agent's own order. ssh2 asks
 * the agent for its identities on each connection; the filter keeps that list to `allowed`.
 */
class SelectedKeysAgent extends ssh2.OpenSSHAgent {
  constructor(
    socket: string,
    private readonly allowed: readonly Buffer[],
  ) {
    super(socket);
  }

  override getIdentities(cb: IdentityCallback<ParsedKey>): void {
    super.getIdentities((err, keys) => {
      if (err) return cb(err);
      cb(undefined, (keys ?? []).filter((k) => this.allowed.some((b) => b.equals(agentKeyBlob(k)))));
    });
  }
}

// ssh2's OpenSSHAgent lists its keys as ParsedKeys (the wider type is for custom agents).
function agentKeyBlob(key: unknown): Buffer {
  return (key as ParsedKey).getPublicSSH();
}

async function readKeyFile(file: string): Promise<KeyFile> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? { status: 'missing' } : { status: 'unusable', why: (err as Error).message };
  }
  const parsed: ParsedKey | ParsedKey[] | Error = ssh2.utils.parseKey(data);
  if (parsed instanceof Error) {
    if (/no passphrase given/i.test(parsed.message)) {
      return { status: 'encrypted', data, publicBlob: openSshPublicBlob(data) ?? (await publicFileBlob(file)) };
    }
    return { status: 'unusable', why: `not a private key ssh2 can read (${parsed.message})` };
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || !key.isPrivateKey()) return { status: 'unusable', why: 'is a public key, not a private key' };
  return { status: 'key', key, publicBlob: key.getPublicSSH() };
}

function decryptKey(data: Buffer, passphrase: string): ParsedKey | undefined {
  const parsed: ParsedKey | ParsedKey[] | Error = ssh2.utils.parseKey(data, passphrase);
  if (parsed instanceof Error) return undefined;
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  return key?.isPrivateKey() ? key : undefined;
}

/**
 * The public key of an "openssh-key-v1" private key file, which is stored unencrypted even when the
 * private part is encrypted (PROTOCOL.key). undefined for other formats.
 */
export function openSshPublicBlob(data: Buffer): Buffer | undefined {
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(data.toString('latin1'));
  if (!m) return undefined;
  const raw = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  const magic = Buffer.from('openssh-key-v1\0', 'latin1');
  if (!raw.subarray(0, magic.length).equals(magic)) return undefined;
  let pos = magic.length;
  const readString = (): Buffer | undefined => {
    if (pos + 4 > raw.length) return undefined;
    const length = raw.readUInt32BE(pos);
    if (pos + 4 + length > raw.length) return undefined;
    const value = raw.subarray(pos + 4, pos + 4 + length);
    pos += 4 + length;
    return value;
  };
  for (let i = 0; i < 3; i++) if (!readString()) return undefined; // cipher, kdf, kdf options
  if (pos + 4 > raw.length || raw.readUInt32BE(pos) < 1) return undefined;
  pos += 4;
  return readString();
}

// The `.pub` beside a key file (PEM-encrypted keys carry no public part of their own).
async function publicFileBlob(file: string): Promise<Buffer | undefined> {
  try {
    const [, base64] = (await readFile(`${file}.pub`, 'utf8')).trim().split(/\s+/);
    return base64 ? Buffer.from(base64, 'base64') : undefined;
  } catch {
    return undefined;
  }
}

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? homedir() + path.slice(1) : path;
}
