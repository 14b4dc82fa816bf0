/**
 * Opening connections to the deployfile's hosts: one per connection path (jump hosts, user, address,
 * port), reused for every command and upload to that host, closed together at the end. The one place
 * that turns a ResolvedHost, the deployfile's SSH settings, the user's ssh_config and the command
 * line into ssh2 connections, so deploy, plan and later commands connect alike.
 *
 * Shared by all connections of a connector: ssh_config (read once), known_hosts files (re-read after
 * accept-new appends to one), decrypted keys and the agent's key list (asked once), and ProxyJump
 * hop connections (one per jump path, carrying a forwarded channel per target behind it).
 */
import type { Duplex } from 'node:stream';
import type { ResolvedConfig, ResolvedHost } from '../config/resolve-config.js';
import type { StrictHostKeyChecking } from '../config/schema.js';
import { ConnectError } from '../errors.js';
import type { Connection } from './connection.js';
import { formatDuration } from './connection.js';
import { KnownHosts, loadKnownHosts, type KnownHostEntry } from './known-hosts.js';
import { KeyRing, type PassphraseSource } from './ssh-auth.js';
import { readSshConfig, type SshConfig } from './ssh-config.js';
import { connectSsh } from './ssh-connection.js';
import { openSshClient, type HandshakeOptions, type SshClient } from './ssh-handshake.js';
import { endpointKey, resolveSshTarget, type SshEndpoint, type SshTarget } from './ssh-target.js';

export interface HostConnector {
  /** The connection to `host` (opened on first use, shared afterwards); rejects with ConnectError. */
  connect(host: ResolvedHost): Promise<Connection>;
  /** Close every connection opened here. */
  closeAll(): Promise<void>;
}

export interface HostConnectorOptions {
  /** known_hosts files consulted before the deployfile's (e.g. --known-hosts); accept-new records in the first. */
  extraKnownHosts?: readonly string[];
  /** SSH_AUTH_SOCK; default: the environment's. '' = no agent. */
  agent?: string;
  /** The ssh_config file to read (--ssh-config); default ~/.ssh/config, if it exists. */
  sshConfigFile?: string;
  /** An ssh_config already read; wins over sshConfigFile. */
  sshConfig?: SshConfig;
  /** --strict-host-key-checking: wins over the deployfile and ssh_config. */
  strictHostKeyChecking?: StrictHostKeyChecking;
  /**
   * Asked for an encrypted key's passphrase (the CLI prompts on a terminal), once per key file per
   * run, again (attempt 2, 3) after a wrong one; undefined = skip the key. VDEPLOY_SSH_PASSPHRASE,
   * when set, is used instead.
   */
  passphrase?: PassphraseSource;
  /** Warnings for the user: unverified host keys (mode 'no'), keys recorded by accept-new. */
  onWarning?: (message: string) => void;
  /** Where SSH_AUTH_SOCK and VDEPLOY_SSH_PASSPHRASE are read; default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
}

export function createHostConnector(config: ResolvedConfig, options: HostConnectorOptions = {}): HostConnector {
  const env = options.env ?? process.env;
  const agent = options.agent ?? env.SSH_AUTH_SOCK;
  const passphrase = env.VDEPLOY_SSH_PASSPHRASE;
  const keyRing = new KeyRing({
    ...(passphrase !== undefined && passphrase !== '' ? { passphrase } : {}),
    ...(options.passphrase ? { askPassphrase: options.passphrase } : {}),
  });
  let sshConfig = options.sshConfig;
  const knownHostsFiles = new Map<string, KnownHostEntry[]>();
  const open = new Map<string, Promise<Connection>>();
  const hops = new Map<string, Promise<SshClient>>();

  const knownHostsFor = (paths: readonly string[]): KnownHosts => {
    const entries = paths.flatMap((path) => {
      let found = knownHostsFiles.get(path);
      if (!found) knownHostsFiles.set(path, (found = [...loadKnownHosts([path]).entries]));
      return found;
    });
    return new KnownHosts(paths, entries);
  };

  const handshake = (endpoint: SshEndpoint, sock: Duplex | undefined, via: string | undefined): HandshakeOptions => ({
    host: endpoint.name,
    address: endpoint.address,
    port: endpoint.port,
    username: endpoint.user,
    ...(endpoint.identityFiles ? { identityFiles: endpoint.identityFiles } : {}),
    identitiesOnly: endpoint.identitiesOnly,
    ...(agent ? { agent } : {}),
    keyRing,
    knownHosts: knownHostsFor(endpoint.knownHostsFiles),
    strictHostKeyChecking: endpoint.strictHostKeyChecking,
    readyTimeoutMs: endpoint.connectTimeoutMs,
    keepaliveIntervalMs: endpoint.keepaliveIntervalMs,
    keepaliveCountMax: endpoint.keepaliveCountMax,
    ...(sock ? { sock } : {}),
    ...(via ? { via } : {}),
    ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    onHostKeyRecorded: (recorded) => knownHostsFiles.delete(recorded.file),
  });

  // The stream to `endpoint` through the last hop of `path` (whose client is opened or reused).
  const tunnel = async (path: readonly SshEndpoint[], endpoint: SshEndpoint): Promise<Duplex> => {
    const jump = path.at(-1)!;
    const client = await hop(path);
    return forward(client, jump.name, endpoint);
  };

  // A jump host's client, shared by everything behind it; forgotten when it drops, so later hosts reconnect.
  const hop = (path: readonly SshEndpoint[]): Promise<SshClient> => {
    const key = endpointKey(path);
    let client = hops.get(key);
    if (!client) {
      const endpoint = path.at(-1)!;
      const before = path.slice(0, -1);
      client = (async () => {
        const sock = before.length > 0 ? await tunnel(before, endpoint) : undefined;
        const opened = await openSshClient(handshake(endpoint, sock, before.at(-1)?.name));
        opened.on('close', () => hops.delete(key));
        return opened;
      })();
      hops.set(key, client);
    }
    return client;
  };

  return {
    connect(host) {
      let target: SshTarget;
      try {
        sshConfig ??= readSshConfig(options.sshConfigFile);
        target = resolveSshTarget(config, host, {
          sshConfig,
          ...(options.extraKnownHosts ? { extraKnownHosts: options.extraKnownHosts } : {}),
          ...(options.strictHostKeyChecking ? { strictHostKeyChecking: options.strictHostKeyChecking } : {}),
        });
      } catch (err) {
        return Promise.reject(err);
      }
      const key = endpointKey([...target.jumps, target]);
      let conn = open.get(key);
      if (!conn) {
        const { jumps } = target;
        conn = (async () => {
          let sock: Duplex | undefined;
          if (jumps.length > 0) {
            try {
              sock = await tunnel(jumps, target);
            } catch (err) {
              throw throughJumpError(host.name, jumps.at(-1)!.name, err);
            }
          }
          return connectSsh(handshake(target, sock, jumps.at(-1)?.name));
        })();
        open.set(key, conn);
      }
      return conn;
    },
    async closeAll() {
      const all = [...open.values()];
      open.clear();
      await Promise.all(all.map((c) => c.then((conn) => conn.close(), () => {})));
      // Jump hosts last, the innermost (longest path) first: their channels carry the others.
      const jumpClients = [...hops.entries()].sort(([a], [b]) => b.split(' > ').length - a.split(' > ').length);
      hops.clear();
      for (const [, client] of jumpClients) {
        await client.then(
          (c) => new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              c.destroy();
              resolve();
            }, 2000);
            c.once('close', () => {
              clearTimeout(timer);
              resolve();
            });
            c.end();
          }),
          () => {},
        );
      }
    },
  };
}

/**
 * A channel from the jump host to `endpoint` (ssh -W). Bounded by the endpoint's connect timeout: a jump
 * host that cannot reach the target may otherwise wait for its own TCP timeout, minutes.
 */
function forward(client: SshClient, jumpName: string, endpoint: SshEndpoint): Promise<Duplex> {
  const where = `${endpoint.name} (${endpoint.address}:${endpoint.port})`;
  return new Promise<Duplex>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(
        new ConnectError(endpoint.name, `cannot connect to ${where} via ${jumpName}: no answer within ${formatDuration(endpoint.connectTimeoutMs)}`, {
          hint: `check that ${endpoint.address} port ${endpoint.port} is reachable from ${jumpName}`,
        }),
      );
    }, endpoint.connectTimeoutMs);
    try {
      client.forwardOut('127.0.0.1', 0, endpoint.address, endpoint.port, (err, stream) => {
        clearTimeout(timer);
        if (!err) return resolve(stream);
        stream?.destroy();
        reject(
          new ConnectError(endpoint.name, `cannot connect to ${where} via ${jumpName}: ${jumpName} could not open a connection to it (${err.message})`, {
            hint: `check that sshd runs on ${endpoint.address} port ${endpoint.port} as seen from ${jumpName}, and that ${jumpName} allows TCP forwarding (AllowTcpForwarding)`,
            cause: err,
          }),
        );
      });
    } catch (err) {
      clearTimeout(timer);
      reject(new ConnectError(endpoint.name, `cannot connect to ${where} via ${jumpName}: the connection to ${jumpName} is gone`, { cause: err }));
    }
  });
}

// A hop that failed is reported for the deployfile host that needed it, keeping the hop's reason.
function throughJumpError(host: string, jumpName: string, err: unknown): unknown {
  if (!(err instanceof ConnectError) || err.host === host) return err;
  return new ConnectError(host, `cannot reach ${host} through ${jumpName}: ${err.message}`, {
    ...(err.hint !== undefined ? { hint: err.hint } : {}),
    cause: err,
  });
}
