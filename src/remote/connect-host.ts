/**
 * Opening connections to the deployfile's hosts: one per (host, login user), reused for every command
 * and upload to that host, closed together at the end. The one place that turns a ResolvedHost and the
 * deployfile's SSH settings into ssh2 options, so deploy, relocate and later commands connect alike.
 */
import type { ResolvedConfig, ResolvedHost } from '../config/resolve-config.js';
import type { Connection } from './connection.js';
import { loadKnownHosts, type KnownHosts } from './known-hosts.js';
import { connectSsh } from './ssh-connection.js';

export interface HostConnector {
  /** The connection to `host` (opened on first use, shared afterwards); rejects with ConnectError. */
  connect(host: ResolvedHost): Promise<Connection>;
  /** Close every connection opened here. */
  closeAll(): Promise<void>;
}

export interface HostConnectorOptions {
  /** known_hosts files consulted before the deployfile's (e.g. --known-hosts). */
  extraKnownHosts?: readonly string[];
  /** SSH_AUTH_SOCK; default: the environment's. */
  agent?: string;
}

export function createHostConnector(config: ResolvedConfig, options: HostConnectorOptions = {}): HostConnector {
  let knownHosts: KnownHosts | undefined;
  const open = new Map<string, Promise<Connection>>();
  const agent = options.agent ?? process.env.SSH_AUTH_SOCK;
  return {
    connect(host) {
      const key = `${host.user}@${host.address}:${host.port}`;
      let conn = open.get(key);
      if (!conn) {
        knownHosts ??= loadKnownHosts([...(options.extraKnownHosts ?? []), ...config.ssh.knownHosts]);
        conn = connectSsh({
          host: host.name,
          address: host.address,
          port: host.port,
          username: host.user,
          ...(config.ssh.identityFile ? { identityFiles: [config.ssh.identityFile] } : {}),
          ...(agent ? { agent } : {}),
          knownHosts,
          // accept-new is the trust issue's; until then an unknown host is refused, as with 'yes'.
          strictHostKeyChecking: config.ssh.strictHostKeyChecking === 'no' ? 'no' : 'yes',
          readyTimeoutMs: config.ssh.connectTimeout * 1000,
        });
        open.set(key, conn);
      }
      return conn;
    },
    async closeAll() {
      const all = [...open.values()];
      open.clear();
      await Promise.all(all.map((c) => c.then((conn) => conn.close(), () => {})));
    },
  };
}
