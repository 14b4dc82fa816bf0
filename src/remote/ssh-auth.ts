/**
 * Which credentials to offer a host: private keys from identity files, then the ssh-agent. Never a
 * password: vdeploy runs unattended across many hosts.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, ParsedKey } from 'ssh2';
import { ConnectError } from '../errors.js';

/** What OpenSSH tries when no IdentityFile is configured. */
export const DEFAULT_IDENTITY_FILES = ['~/.ssh/id_ed25519', '~/.ssh/id_ecdsa', '~/.ssh/id_rsa'];

export interface AuthPlan {
  /** In the order ssh2 tries them. */
  methods: AnyAuthMethod[];
  /** Human names of what is offered, e.g. ["/root/.ssh/id_ed25519", "ssh-agent"], for messages. */
  offered: string[];
}

/**
 * Read identity files (undefined = OpenSSH's defaults; missing files are skipped as ssh does) and add
 * the agent when given. Throws ConnectError naming every file when nothing usable is left.
 */
export async function planAuth(
  host: string,
  username: string,
  identityFiles: readonly string[] | undefined,
  agent: string | undefined,
): Promise<AuthPlan> {
  const methods: AnyAuthMethod[] = [];
  const offered: string[] = [];
  const problems: string[] = [];
  const encrypted: string[] = [];
  for (const file of (identityFiles ?? DEFAULT_IDENTITY_FILES).map(expandHome)) {
    const loaded = await loadPrivateKey(file);
    if ('key' in loaded) {
      methods.push({ type: 'publickey', username, key: loaded.key });
      offered.push(file);
    } else if (loaded.problem === 'encrypted') {
      encrypted.push(file);
    } else if (loaded.problem !== 'missing' || identityFiles !== undefined) {
      problems.push(`${file}: ${loaded.problem === 'missing' ? 'not found' : loaded.problem}`);
    }
  }
  if (agent) {
    methods.push({ type: 'agent', username, agent });
    offered.push('ssh-agent');
  }
  if (methods.length > 0) return { methods, offered };

  if (encrypted.length > 0) {
    throw new ConnectError(host, `encrypted key, passphrase not supported yet: ${encrypted.join(', ')}`, {
      hint: `load it into ssh-agent (\`ssh-add ${encrypted[0]}\`) and keep SSH_AUTH_SOCK set, or use an unencrypted deploy key`,
    });
  }
  const tried = problems.length > 0 ? problems.join('; ') : 'no IdentityFile configured, no default key in ~/.ssh and no SSH_AUTH_SOCK';
  throw new ConnectError(host, `no usable SSH key for ${host}: ${tried}`, {
    hint: 'set IdentityFile for the host (ssh_config or the deployfile) to an unencrypted private key, or start ssh-agent with the key loaded',
  });
}

type LoadedKey = { key: ParsedKey } | { problem: 'missing' | 'encrypted' | string };

async function loadPrivateKey(file: string): Promise<LoadedKey> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { problem: code === 'ENOENT' ? 'missing' : (err as Error).message };
  }
  const parsed: ParsedKey | ParsedKey[] | Error = ssh2.utils.parseKey(data);
  if (parsed instanceof Error) {
    return { problem: /passphrase/i.test(parsed.message) ? 'encrypted' : `not a private key ssh2 can read (${parsed.message})` };
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || !key.isPrivateKey()) return { problem: 'is a public key, not a private key' };
  return { key };
}

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? homedir() + path.slice(1) : path;
}
