/**
 * The one way vdeploy runs commands and copies files, whether the target is a host over SSH or this
 * machine. Everything above this layer talks to a `Connection` and never to ssh2 or child_process.
 */
import type { Readable } from 'node:stream';
import { InterruptedError, RemoteCommandError, VdeployError } from '../errors.js';
import type { CommandResult } from './command-result.js';
import type { RemoteFiles } from './remote-files.js';
import { quoteCommand } from './shell-quote.js';

export type { CommandResult } from './command-result.js';

export interface ExecOptions {
  /**
   * Written to the command's stdin, which is then closed. Without it stdin is closed at once. A stream
   * is piped as it produces data and stdin closes when it ends: a long-running command can be told
   * things while it runs (the host apply script reads "stop" there).
   */
  stdin?: string | Buffer | Readable;
  /** Called with each piece of stdout as it arrives (it is also collected into the result). */
  onStdout?: (chunk: Buffer) => void;
  /** Called with each piece of stderr as it arrives (it is also collected into the result). */
  onStderr?: (chunk: Buffer) => void;
  /** Kill the command and reject after this long, counted from its start (not time queued). Rejects even with `nothrow`. */
  timeoutMs?: number;
  /** Resolve with the result on a non-zero exit instead of rejecting with RemoteCommandError. */
  nothrow?: boolean;
  /** Aborting kills the command and rejects with the reason if it is a VdeployError, else an InterruptedError. */
  signal?: AbortSignal;
  /** Extra environment variables, added to the target's own environment. */
  env?: Record<string, string>;
}

export interface PutOptions {
  /** Permission bits for the uploaded file, e.g. 0o755; set explicitly, so the remote umask does not apply. */
  mode?: number;
}

export interface Connection {
  /** Who this connection talks to, e.g. "root@127.0.0.2:2201"; for messages only. */
  readonly target: string;
  /** Run argv (no shell unless argv asks for one). Rejects with RemoteCommandError on non-zero unless nothrow. */
  exec(argv: string[], opts?: ExecOptions): Promise<CommandResult>;
  /** Copy a local file to remotePath (whose directory must exist), replacing it. */
  put(localPath: string, remotePath: string, opts?: PutOptions): Promise<void>;
  /**
   * Copy remotePath to a local file (whose directory must exist), streamed to disk, replacing it.
   * Optional: test stand-ins may lack it (a download then fails, and shipping falls back to pip).
   */
  get?(remotePath: string, localPath: string): Promise<void>;
  /**
   * Read-only file access that runs no command on the target (SFTP over SSH). Optional: fact readers
   * fall back to a command (the probe script) where it is absent.
   */
  files?(): Promise<RemoteFiles>;
  /** Release the connection; safe to call more than once. */
  close(): Promise<void>;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The argv that runs `argv` with `env` added: an `env NAME=value ...` prefix, because sshd refuses
 * SSH "env" requests for anything not in its AcceptEnv list.
 */
export function prefixEnv(argv: string[], env: Record<string, string> | undefined): string[] {
  const entries = Object.entries(env ?? {});
  if (entries.length === 0) return argv;
  for (const [name] of entries) {
    if (!ENV_NAME.test(name)) {
      throw new VdeployError(`environment variable name ${JSON.stringify(name)} is not valid`, {
        hint: 'use letters, digits and underscores, not starting with a digit',
      });
    }
  }
  return ['env', ...entries.map(([name, value]) => `${name}=${value}`), ...argv];
}

/** The one-line command string used in messages and sent over SSH. */
export function formatCommand(argv: string[], env?: Record<string, string>): string {
  return quoteCommand(prefixEnv(argv, env));
}

/** The rejection for a command that ran out of time; carries the output it produced so far. */
export function timeoutError(command: string, timeoutMs: number, result: CommandResult): RemoteCommandError {
  return new RemoteCommandError(command, result, {
    message: `\`${command}\` timed out after ${formatDuration(timeoutMs)}`,
    hint: 'raise the timeout if the command is just slow, or find out why it hangs',
  });
}

/** What an aborted command rejects with: the signal's reason when it is one of ours, else an InterruptedError. */
export function abortError(signal: AbortSignal, command: string): Error {
  if (signal.reason instanceof VdeployError) return signal.reason;
  return new InterruptedError(`\`${command}\` was interrupted`, { cause: signal.reason });
}

/** A limit for messages: "20ms", "0.5s", "15s". */
export function formatDuration(ms: number): string {
  return ms < 100 ? `${ms}ms` : `${Number((ms / 1000).toFixed(1))}s`;
}
