/**
 * Deciding whether to trust the key a host presents, and the error that explains a refusal. Kept apart
 * from ssh2 so the wording and the policy are unit-testable without a server.
 */
import type { ServerHostKeyAlgorithm } from 'ssh2';
import { ConnectError } from '../errors.js';
import { fingerprintSha256, hostPortName, keyTypeOf, type HostKeyVerdict, type KnownHosts } from './known-hosts.js';

export interface HostKeyContext {
  /** The host's name as the user knows it (messages, and the second known_hosts lookup name). */
  host: string;
  address: string;
  port: number;
  /**
   * 'yes' refuses keys not in known_hosts; 'accept-new' records them (the caller does); 'no' accepts
   * them unrecorded, with a warning. Changed and revoked keys are refused in every mode: deploying as
   * root to a host that may be an impostor is never what the user wants.
   */
  strictHostKeyChecking: 'yes' | 'accept-new' | 'no';
  /** The ProxyJump hop the connection goes through, if any: such a host cannot be ssh-keyscanned directly. */
  via?: string;
}

/** Check a presented key under the address and the host name (`[name]:port` off port 22). */
export function judgeHostKey(knownHosts: KnownHosts, ctx: HostKeyContext, keyBlob: Buffer): HostKeyVerdict {
  const names = ctx.host === ctx.address ? [ctx.address] : [ctx.address, ctx.host];
  return knownHosts.check(names, ctx.port, keyTypeOf(keyBlob) ?? 'unknown', keyBlob);
}

/**
 * The ConnectError that refuses a verdict, or null when the key may be used: a match, or an unknown key
 * under 'accept-new' (to be recorded) or 'no' (to be warned about).
 */
export function hostKeyError(
  verdict: HostKeyVerdict,
  ctx: HostKeyContext,
  keyBlob: Buffer,
  knownHostsPaths: readonly string[],
): ConnectError | null {
  const where = `${ctx.host} (${ctx.address}:${ctx.port}${ctx.via ? ` via ${ctx.via}` : ''})`;
  const keyType = keyTypeOf(keyBlob) ?? 'unknown';
  const presented = `${describeKeyType(keyType)} ${fingerprintSha256(keyBlob)}`;
  const hostSideCheck = `\`ssh-keygen -lf /etc/ssh/ssh_host_${hostKeyFileType(keyType)}_key.pub\``;
  switch (verdict.status) {
    case 'match':
      return null;
    case 'unknown': {
      if (ctx.strictHostKeyChecking !== 'yes') return null;
      const file = knownHostsPaths[0] ?? '~/.ssh/known_hosts';
      // Behind a jump host keyscan cannot reach it; the line itself is exactly the key whose fingerprint is shown.
      const add = ctx.via
        ? `\`echo '${hostPortName(ctx.address, ctx.port)} ${keyType} ${keyBlob.toString('base64')}' >> ${file}\``
        : `\`ssh-keyscan -p ${ctx.port} ${ctx.address} >> ${file}\``;
      return new ConnectError(ctx.host, `host key of ${where} is not in known_hosts: ${presented}`, {
        hint: `compare the fingerprint with the host's own ${hostSideCheck}; if they agree, add it with ${add}`,
      });
    }
    case 'changed': {
      const { known } = verdict;
      return new ConnectError(
        ctx.host,
        `host key of ${where} has CHANGED: it presented ${presented} but ${known.file}:${known.line} has ${describeKeyType(known.keyType)} ${known.fingerprint}`,
        {
          hint: `if the host was reinstalled, check the new key with ${hostSideCheck} on the host and delete line ${known.line} of ${known.file}; otherwise someone may be intercepting the connection`,
        },
      );
    }
    case 'revoked':
      return new ConnectError(
        ctx.host,
        `host key of ${where} is revoked: ${presented} is marked @revoked at ${verdict.file}:${verdict.line}`,
        { hint: 'vdeploy never connects with a revoked key; give the host a new host key and add that to known_hosts' },
      );
  }
}

/** How OpenSSH names key types in messages: ED25519, ECDSA, RSA. */
export function describeKeyType(keyType: string): string {
  if (keyType === 'ssh-ed25519') return 'ED25519';
  if (keyType.startsWith('ecdsa-')) return 'ECDSA';
  if (keyType === 'ssh-rsa') return 'RSA';
  return keyType;
}

// The `/etc/ssh/ssh_host_<type>_key.pub` file that holds a key of this type on a stock sshd.
function hostKeyFileType(keyType: string): string {
  if (keyType.startsWith('ecdsa-')) return 'ecdsa';
  if (keyType === 'ssh-rsa') return 'rsa';
  return keyType.replace(/^ssh-/, '');
}

// ssh2's own preference order for host key algorithms (ssh-dss left out: OpenSSH dropped it).
const HOST_KEY_ALGORITHMS: ServerHostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

/**
 * Host key algorithms with those matching already-known key types first, as OpenSSH orders them, so
 * the server presents a key we can actually compare.
 */
export function orderHostKeyAlgorithms(knownKeyTypes: readonly string[]): ServerHostKeyAlgorithm[] {
  const known = (alg: ServerHostKeyAlgorithm) =>
    knownKeyTypes.includes(alg.startsWith('rsa-sha2-') ? 'ssh-rsa' : alg);
  return [...HOST_KEY_ALGORITHMS.filter(known), ...HOST_KEY_ALGORITHMS.filter((alg) => !known(alg))];
}
