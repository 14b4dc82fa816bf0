/**
 * Turning what ssh2 and the socket report during connect into a ConnectError that names the host and
 * says what to do. ssh2's errors carry a `level` ('client-socket', 'client-timeout', 'handshake',
 * 'client-authentication', 'protocol') and socket errors a `code`.
 */
import { ConnectError } from '../errors.js';
import { formatDuration } from './connection.js';

export interface ConnectFailureContext {
  host: string;
  address: string;
  port: number;
  username: string;
  readyTimeoutMs: number;
  /** What was offered for authentication, for the "rejected" message. */
  offered: readonly string[];
  /** Keys left out and why (e.g. an encrypted key without passphrase), for the same message. */
  skipped?: readonly string[];
  /** The ProxyJump hop this connection went through, if any (named in messages). */
  via?: string;
}

export function describeConnectFailure(err: Error & { level?: string; code?: string | number }, ctx: ConnectFailureContext): ConnectError {
  const target = `${ctx.username}@${ctx.address}:${ctx.port}`;
  const route = ctx.via ? ` via ${ctx.via}` : '';
  const fail = (what: string, hint: string) =>
    new ConnectError(ctx.host, `cannot connect to ${ctx.host} (${target}${route}): ${what}`, { hint, cause: err });

  switch (err.code) {
    case 'ECONNREFUSED':
      return fail('connection refused', `check that sshd is running on ${ctx.address} and listening on port ${ctx.port}, and that the host's port is right`);
    case 'ETIMEDOUT':
      return fail('connection timed out', `check that ${ctx.address} is reachable (network, firewall) and the port is right`);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return fail('host unreachable', `check the address ${ctx.address} and the network route to it`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return fail(`cannot resolve ${ctx.address}`, 'check the host name, or give the address in the deployfile');
    case 'ECONNRESET':
      return fail('the server dropped the connection', "look at the host's sshd log (MaxStartups, AllowUsers, tcp wrappers)");
  }
  switch (err.level) {
    case 'client-timeout':
      return fail(
        `no SSH handshake within ${formatDuration(ctx.readyTimeoutMs)}`,
        'check that the port really is sshd and the host is not overloaded, or raise the connect timeout',
      );
    case 'client-authentication':
      return fail(
        `${ctx.username} was refused with every key offered (${ctx.offered.join(', ') || 'none'})${
          ctx.skipped?.length ? `; not offered: ${ctx.skipped.join('; ')}` : ''
        }`,
        `add the public key to ~${ctx.username}/.ssh/authorized_keys on the host (e.g. \`ssh-copy-id -p ${ctx.port} ${target.replace(/:\d+$/, '')}\`), or set the right User/IdentityFile`,
      );
    case 'handshake':
    case 'protocol':
      return fail(`SSH handshake failed: ${err.message}`, 'check that the port is an SSH server and it offers algorithms ssh2 supports (ed25519, ecdsa, rsa-sha2)');
  }
  return fail(err.message, "look at the host's sshd log for why it closed the connection");
}
