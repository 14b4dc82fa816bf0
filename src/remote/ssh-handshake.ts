/**
 * Opening one authenticated ssh2 client: TCP (or a stream through a jump host), the handshake, the
 * host key check against known_hosts in the StrictHostKeyChecking mode asked for, and authentication.
 * Used for the target of a Connection and for each ProxyJump hop alike.
 */
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { ConnectError } from '../errors.js';
import { describeKeyType, hostKeyError, judgeHostKey, orderHostKeyAlgorithms, type HostKeyContext } from './host-key-check.js';
import { recordHostKey, type RecordedKey } from './known-hosts-record.js';
import { fingerprintSha256, keyTypeOf, type KnownHosts } from './known-hosts.js';
import { planAuth, type KeyRing } from './ssh-auth.js';
import { describeConnectFailure } from './ssh-connect-errors.js';

export type SshClient = InstanceType<typeof ssh2.Client>;

export interface HandshakeOptions {
  /** The host's name: used in messages and as a second known_hosts lookup name. */
  host: string;
  /** What to connect to (IP or resolvable name; for a jumped connection, as the jump host sees it). */
  address: string;
  port: number;
  username: string;
  /** Private key files; undefined means OpenSSH's defaults (~/.ssh/id_ed25519, id_ecdsa, id_rsa). */
  identityFiles?: readonly string[];
  /** Offer only agent keys that belong to identityFiles. */
  identitiesOnly?: boolean;
  /** SSH_AUTH_SOCK of an ssh-agent to use as well. */
  agent?: string;
  /** Shared across connections so passphrases are asked once; default: one for this connection. */
  keyRing?: KeyRing;
  knownHosts: KnownHosts;
  /** 'accept-new' appends unknown keys to knownHosts.paths[0]; 'no' accepts them with a warning. */
  strictHostKeyChecking: 'yes' | 'accept-new' | 'no';
  /** Limit for TCP connect + handshake + authentication. Default 15000. */
  readyTimeoutMs?: number;
  /** Keepalive probe interval, 0 = none. Default 15000. */
  keepaliveIntervalMs?: number;
  /** Unanswered keepalives before the connection counts as dead. Default 3. */
  keepaliveCountMax?: number;
  /** An open stream to the server (a channel through a jump host) instead of a TCP connection. */
  sock?: Duplex;
  /** The jump host `sock` goes through, for messages. */
  via?: string;
  /** Warnings for the user (an unverified or newly recorded host key); the core never prints. */
  onWarning?: (message: string) => void;
  /** A key was appended to a known_hosts file (accept-new): cached copies of it are stale. */
  onHostKeyRecorded?: (recorded: RecordedKey) => void;
}

/** Connect, verify the host key, authenticate; rejects with a ConnectError saying what to fix. */
export async function openSshClient(opts: HandshakeOptions): Promise<SshClient> {
  const readyTimeoutMs = opts.readyTimeoutMs ?? 15000;
  const auth = await planAuth(opts.host, opts.username, {
    ...(opts.identityFiles ? { identityFiles: opts.identityFiles } : {}),
    ...(opts.identitiesOnly ? { identitiesOnly: true } : {}),
    ...(opts.agent ? { agent: opts.agent } : {}),
    ...(opts.keyRing ? { keyRing: opts.keyRing } : {}),
  });
  const hostCtx: HostKeyContext = {
    host: opts.host,
    address: opts.address,
    port: opts.port,
    strictHostKeyChecking: opts.strictHostKeyChecking,
    ...(opts.via ? { via: opts.via } : {}),
  };
  const knownTypes = opts.knownHosts.lookup([opts.address, opts.host], opts.port).map((e) => e.keyType);

  const client = new ssh2.Client();
  // ssh2 can emit more than one error while failing; an unheard 'error' event would crash the process.
  client.on('error', () => {});
  // ssh2 reports a refused host key as a generic handshake error; the verifier keeps the real reason.
  let hostKeyRefusal: ConnectError | null = null;
  const trustHostKey = async (key: Buffer): Promise<boolean> => {
    const verdict = judgeHostKey(opts.knownHosts, hostCtx, key);
    hostKeyRefusal = hostKeyError(verdict, hostCtx, key, opts.knownHosts.paths);
    if (hostKeyRefusal) return false;
    if (verdict.status !== 'unknown') return true;
    const presented = `${describeKeyType(keyTypeOf(key) ?? 'unknown')} key ${fingerprintSha256(key)}`;
    const where = `${opts.host} (${opts.address}:${opts.port}${opts.via ? ` via ${opts.via}` : ''})`;
    if (opts.strictHostKeyChecking === 'no') {
      opts.onWarning?.(
        `WARNING: host key checking is off: connected to ${where} WITHOUT verifying its ${presented}; anyone on the network path could be impersonating it`,
      );
      return true;
    }
    const file = opts.knownHosts.paths[0];
    if (!file) {
      hostKeyRefusal = new ConnectError(opts.host, `cannot record the host key of ${where}: no known_hosts file is configured`, {
        hint: 'give one with --known-hosts FILE or UserKnownHostsFile',
      });
      return false;
    }
    const recorded = await recordHostKey(opts.host, file, [opts.address, opts.host], opts.address, opts.port, key);
    if ('status' in recorded) {
      // Another process recorded a different key for this host while we were connecting.
      hostKeyRefusal = hostKeyError(recorded, hostCtx, key, opts.knownHosts.paths);
      return false;
    }
    if (recorded.added) {
      opts.onWarning?.(`Permanently added ${recorded.name} (${presented}) to ${file} for ${opts.host}`);
    }
    opts.onHostKeyRecorded?.(recorded);
    return true;
  };

  // Errors ssh2 reports while it moves on to the next key: not the end of the handshake.
  const notes: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error & { level?: string }) => {
      if (err.level === 'agent' || /^Error (while )?signing/.test(err.message)) {
        notes.push(err.level === 'agent' ? `ssh-agent: ${err.message}` : err.message);
        return;
      }
      cleanUp();
      client.destroy();
      reject(
        hostKeyRefusal ??
          describeConnectFailure(err, {
            ...opts,
            readyTimeoutMs,
            offered: auth.offered,
            skipped: [...auth.skipped, ...notes],
          }),
      );
    };
    const onClose = () => onError(hostKeyRefusal ?? new Error('the server closed the connection during the handshake'));
    const onReady = () => {
      cleanUp();
      resolve();
    };
    const cleanUp = () => {
      client.off('error', onError).off('close', onClose).off('ready', onReady);
    };
    client.on('error', onError).on('close', onClose).on('ready', onReady);
    client.connect({
      ...(opts.sock ? { sock: opts.sock } : { host: opts.address, port: opts.port }),
      username: opts.username,
      readyTimeout: readyTimeoutMs,
      keepaliveInterval: opts.keepaliveIntervalMs ?? 15000,
      keepaliveCountMax: opts.keepaliveCountMax ?? 3,
      // Ask first for the key types known_hosts has for this host, as ssh does, so a host with
      // several keys is not reported "changed" just because it offered a different type.
      algorithms: { serverHostKey: orderHostKeyAlgorithms(knownTypes) },
      authHandler: auth.methods,
      hostVerifier: (key: Buffer, verify: (valid: boolean) => void): void => {
        // ssh2 only refuses on a strict `false`: never let a failure here turn into "accept".
        trustHostKey(key).then(
          (ok) => verify(ok === true),
          (err: unknown) => {
            hostKeyRefusal =
              err instanceof ConnectError
                ? err
                : new ConnectError(opts.host, `checking the host key of ${opts.host} failed: ${(err as Error).message}`, { cause: err });
            verify(false);
          },
        );
      },
    });
  });
  // Many small packets (channel opens, requests) in flight at once: Nagle + delayed ACKs would add
  // ~40ms to each and serialize the channels. (No socket to tune behind a jump host.)
  if (!opts.sock) client.setNoDelay(true);
  return client;
}
