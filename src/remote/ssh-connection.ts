/**
 * A Connection to one host over a single SSH connection (ssh2): one channel per command, kept under
 * the server's MaxSessions by a semaphore, and one lazily opened SFTP session for uploads. Opening the
 * connection (host key, authentication) is ssh-handshake.ts's.
 */
import type { ClientChannel, SFTPWrapper } from 'ssh2';
import { ConfigError, ConnectError, RemoteCommandError, VdeployError } from '../errors.js';
import type { CommandResult } from './command-result.js';
import { abortError, formatCommand, prefixEnv, type Connection, type ExecOptions, type PutOptions } from './connection.js';
import { RemoteFileError, sftpFiles, type RemoteFiles } from './remote-files.js';
import { Semaphore } from './semaphore.js';
import { openSshClient, type HandshakeOptions, type SshClient } from './ssh-handshake.js';
import { killArgv, runChannel, STOP_GRACE_MS, wrapKillable } from './ssh-exec.js';
import { quoteCommand } from './shell-quote.js';

export interface SshConnectOptions extends HandshakeOptions {
  /**
   * Channels open at once (exec + SFTP). Default 8. One more is used only to kill timed-out
   * commands, so keep this below the server's MaxSessions (OpenSSH default 10).
   */
  maxSessions?: number;
}

/** Connect, verify the host key against known_hosts, authenticate; rejects with a ConnectError. */
export async function connectSsh(opts: SshConnectOptions): Promise<Connection> {
  const maxSessions = opts.maxSessions ?? 8;
  // The SFTP session keeps one slot for the connection's lifetime; with one slot execs would starve.
  if (!Number.isInteger(maxSessions) || maxSessions < 2) {
    throw new ConfigError(`maxSessions for ${opts.host} is ${maxSessions}; it must be a whole number of at least 2`, {
      hint: "set it to at most the host's sshd MaxSessions minus 1 (OpenSSH's default MaxSessions is 10)",
    });
  }
  const client = await openSshClient(opts);
  return new SshConnection(client, opts);
}

class SshConnection implements Connection {
  readonly target: string;
  private readonly sessions: Semaphore;
  /**
   * One channel beyond maxSessions, only for killing timed-out commands: those may hold every
   * regular slot. The default 8 (+1) stays below OpenSSH's MaxSessions of 10.
   */
  private readonly killSessions = new Semaphore(1);
  private sftp: Promise<SFTPWrapper> | undefined;
  /** Set once the connection is gone (dropped or closed): why further work fails. */
  private gone: VdeployError | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Rejecters of transfers in flight, called when the connection goes away. */
  private readonly onGone: Array<(err: Error) => void> = [];

  constructor(
    private readonly client: SshClient,
    private readonly opts: SshConnectOptions,
  ) {
    this.target = `${opts.username}@${opts.address}:${opts.port}${opts.via ? ` via ${opts.via}` : ''}`;
    this.sessions = new Semaphore(opts.maxSessions ?? 8);
    // Errors after the handshake (keepalive timeout, reset) end the connection; remember why.
    client.on('error', (err: Error) => this.markGone(this.lostError(err.message)));
    client.on('close', () => {
      this.closed = true;
      this.markGone(this.lostError('the connection closed'));
    });
  }

  async exec(argv: string[], opts: ExecOptions = {}): Promise<CommandResult> {
    const command = formatCommand(argv, opts.env);
    const { signal } = opts;
    // Only commands that may have to be stopped pay for the PID-announcing wrapper.
    const killable = opts.timeoutMs !== undefined || signal !== undefined;
    const wire = killable ? quoteCommand(wrapKillable(prefixEnv(argv, opts.env))) : command;
    if (signal?.aborted) throw abortError(signal, command);
    const slot = this.sessions.acquire();
    const release = await new Promise<() => void>((resolve, reject) => {
      // A command aborted while still queued gives its slot straight back when it arrives.
      const onAbort = () => {
        slot.then((r) => r(), () => {});
        reject(abortError(signal!, command));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      slot.then(resolve, reject).finally(() => signal?.removeEventListener('abort', onAbort));
    });
    try {
      const channel = await this.openChannel(wire, command);
      const result = await runChannel(channel, command, {
        ...opts,
        killable,
        kill: (pid) => this.killRemote(pid),
        lostError: () => this.gone,
      });
      if (result.exitCode === 0 || opts.nothrow) return result;
      throw new RemoteCommandError(command, result);
    } finally {
      release();
    }
  }

  async put(localPath: string, remotePath: string, opts: PutOptions = {}): Promise<void> {
    const sftp = await this.openSftp();
    try {
      await this.untilGone(
        new Promise<void>((resolve, reject) =>
          sftp.fastPut(localPath, remotePath, opts.mode === undefined ? {} : { mode: opts.mode }, (err) => (err ? reject(err) : resolve())),
        ),
      );
      // The open-time mode is filtered by the server's umask and ignored for existing files.
      if (opts.mode !== undefined) {
        await this.untilGone(new Promise<void>((resolve, reject) => sftp.chmod(remotePath, opts.mode!, (err) => (err ? reject(err) : resolve()))));
      }
    } catch (err) {
      if (this.gone) throw this.gone;
      throw new VdeployError(`uploading ${localPath} to ${this.target}:${remotePath} failed: ${(err as Error).message}`, {
        hint: 'check that the local file exists and the remote directory exists and is writable by the SSH user',
        cause: err,
      });
    }
  }

  async get(remotePath: string, localPath: string): Promise<void> {
    const sftp = await this.openSftp();
    try {
      // fastGet: several reads in flight, written to disk as they arrive (a tar can be hundreds of MiB).
      await this.untilGone(new Promise<void>((resolve, reject) => sftp.fastGet(remotePath, localPath, {}, (err) => (err ? reject(err) : resolve()))));
    } catch (err) {
      if (this.gone) throw this.gone;
      throw new VdeployError(`downloading ${this.target}:${remotePath} to ${localPath} failed: ${(err as Error).message}`, {
        hint: 'check that the file exists on the host and the local directory is writable',
        cause: err,
      });
    }
  }

  async files(): Promise<RemoteFiles> {
    let sftp: SFTPWrapper;
    try {
      sftp = await this.openSftp();
    } catch (err) {
      throw new RemoteFileError((err as Error).message, false);
    }
    return sftpFiles(sftp, (work) => this.untilGone(work));
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.markGone(new VdeployError(`the connection to ${this.target} was closed`, { hint: 'this is a bug in vdeploy: it used a connection after closing it' }));
      if (this.closed) return resolve();
      const timer = setTimeout(() => {
        this.client.destroy();
        resolve();
      }, STOP_GRACE_MS);
      this.client.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.client.end();
    });
    return this.closing;
  }

  /** Open a channel running `wire`; `command` is how messages show it. */
  private openChannel(wire: string, command: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      if (this.gone) return reject(this.gone);
      try {
        this.client.exec(wire, (err, channel) => {
          if (!err) return resolve(channel);
          reject(
            this.gone ??
              new VdeployError(`${this.target} refused to run \`${command}\`: ${err.message}`, {
                hint: "the server may allow fewer sessions per connection than vdeploy's maxSessions; lower it or raise MaxSessions in sshd_config",
                cause: err,
              }),
          );
        });
      } catch (err) {
        reject(this.gone ?? this.lostError((err as Error).message));
      }
    });
  }

  /** Best effort: if the kill fails, runChannel's grace timer still ends the wait. */
  private killRemote(pid: number): void {
    const argv = killArgv(pid);
    this.killSessions
      .run(async () => {
        const channel = await this.openChannel(quoteCommand(argv), quoteCommand(argv));
        await runChannel(channel, quoteCommand(argv), { killable: false, kill: () => {}, lostError: () => this.gone });
      })
      .catch(() => {});
  }

  private openSftp(): Promise<SFTPWrapper> {
    this.sftp ??= (async () => {
      // The SFTP channel counts against MaxSessions like any other, for as long as it stays open.
      const release = await this.sessions.acquire();
      try {
        const sftp = await new Promise<SFTPWrapper>((resolve, reject) =>
          this.client.sftp((err, s) => (err ? reject(err) : resolve(s))),
        );
        sftp.once('close', () => {
          release();
          this.sftp = undefined;
        });
        return sftp;
      } catch (err) {
        release();
        this.sftp = undefined;
        throw (
          this.gone ??
          new VdeployError(`cannot start SFTP on ${this.target}: ${(err as Error).message}`, {
            hint: 'enable it in the host\'s sshd_config, e.g. `Subsystem sftp internal-sftp`',
            cause: err,
          })
        );
      }
    })();
    return this.sftp;
  }

  private lostError(why: string): ConnectError {
    return new ConnectError(this.opts.host, `lost the connection to ${this.opts.host} (${this.target}): ${why}`, {
      hint: 'check that the host is up and reachable; vdeploy reconnects on the next run',
    });
  }

  private markGone(err: VdeployError): void {
    this.gone ??= err;
    this.sessions.close(this.gone);
    this.killSessions.close(this.gone);
    for (const fail of this.onGone.splice(0)) fail(this.gone);
  }

  /**
   * `work`, or the reason the connection went away if that happens first: ssh2 never calls back an
   * SFTP transfer whose connection dropped, and a promise nobody settles would let the process end
   * with nothing reported.
   */
  private untilGone<T>(work: Promise<T>): Promise<T> {
    if (this.gone) return Promise.reject(this.gone);
    return new Promise<T>((resolve, reject) => {
      const fail = (err: Error) => reject(err);
      this.onGone.push(fail);
      const done = () => {
        const i = this.onGone.indexOf(fail);
        if (i >= 0) this.onGone.splice(i, 1);
      };
      work.then(
        (v) => (done(), resolve(v)),
        (e: unknown) => (done(), reject(e)),
      );
    });
  }
}

