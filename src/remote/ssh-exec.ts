/**
 * Running one command on one SSH channel: feed stdin, collect output and exit status, and make
 * timeouts and aborts really stop the remote process.
 *
 * Why the PID dance: OpenSSH (≤ 9.x) refuses SSH "signal" requests for root sessions ("session
 * signalling requires privilege separation"), and closing a channel does not end a command that is
 * not writing output — sshd even keeps the session (and its MaxSessions slot) until the process exits.
 * So a command that may need stopping is started through `sh`, which reports its PID on stderr before
 * exec'ing the real command, and stopping it means running `kill` on a second channel.
 */
import { Readable } from 'node:stream';
import type { ClientChannel } from 'ssh2';
import type { CommandResult } from './command-result.js';
import { abortError, timeoutError, type ExecOptions } from './connection.js';

const PID_MARKER = 'vdeploy-pid';
const PID_LINE = new RegExp(`^${PID_MARKER} (\\d+)$`);
const MAX_HEAD_BYTES = 64 * 1024;

/** How long to wait for the channel to close once the command was told to stop. */
export const STOP_GRACE_MS = 3000;

/** argv that runs `argv` after announcing its PID on stderr (stripped again by runChannel). */
export function wrapKillable(argv: string[]): string[] {
  return ['sh', '-c', `echo "${PID_MARKER} $$" >&2; exec "$@"`, 'sh', ...argv];
}

/** argv that kills the process group a killable command leads (or the process, if it leads none). */
export function killArgv(pid: number): string[] {
  return ['sh', '-c', `kill -s KILL -- -${pid} 2>/dev/null || kill -s KILL ${pid}`];
}

export interface RunChannelOptions extends ExecOptions {
  /** The command was started with wrapKillable: expect and strip the PID line. */
  killable: boolean;
  /** Stop the remote process with this PID (best effort); the channel then closes by itself. */
  kill(pid: number): void;
  /** Why the connection is gone, if it is: a channel closing without an exit status is a lost connection. */
  lostError(): Error | undefined;
}

/** Resolves with the result whatever the exit code; rejects only on timeout, abort or a lost connection. */
export function runChannel(channel: ClientChannel, command: string, opts: RunChannelOptions): Promise<CommandResult> {
  const started = performance.now();
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  let exitCode: number | null = null;
  let exitSignal: string | null = null;
  let pid: number | undefined;
  let stopped: 'timeout' | Error | undefined;
  // Until the PID line has been seen, stderr is held here: a login shell's rc files may print first.
  let head: Buffer | undefined = opts.killable ? Buffer.alloc(0) : undefined;

  const addStderr = (chunk: Buffer) => {
    stderr.push(chunk);
    opts.onStderr?.(chunk);
  };
  channel.on('data', (chunk: Buffer) => {
    stdout.push(chunk);
    opts.onStdout?.(chunk);
  });
  channel.stderr.on('data', (chunk: Buffer) => {
    if (!head) return void addStderr(chunk);
    head = Buffer.concat([head, chunk]);
    let newline: number;
    while (head && (newline = head.indexOf(0x0a)) !== -1) {
      const match = PID_LINE.exec(head.subarray(0, newline).toString('latin1'));
      if (match) {
        pid = Number(match[1]);
        addStderr(head.subarray(newline + 1));
        head = undefined;
        if (stopped) opts.kill(pid);
      } else {
        addStderr(head.subarray(0, newline + 1));
        head = head.subarray(newline + 1);
      }
    }
    // Something is badly off if this much came first; stop looking rather than hoard output.
    if (head && head.length > MAX_HEAD_BYTES) {
      addStderr(head);
      head = undefined;
    }
  });
  channel.on('exit', (code: number | null, sig?: string) => {
    exitCode = code ?? null;
    exitSignal = sig ?? null;
  });
  if (opts.stdin instanceof Readable) {
    // A remote that exits without reading all of it is not an error of ours.
    opts.stdin.on('error', () => {});
    opts.stdin.pipe(channel);
  } else {
    channel.end(opts.stdin ?? '');
  }

  return new Promise<CommandResult>((resolve, reject) => {
    let graceTimer: NodeJS.Timeout | undefined;
    const result = (): CommandResult => ({
      exitCode,
      signal: exitSignal,
      stdout: Buffer.concat(stdout).toString('utf8'),
      stderr: Buffer.concat(head ? [...stderr, head] : stderr).toString('utf8'),
      ms: Math.round(performance.now() - started),
    });
    const finish = () => {
      // The command is gone: whatever the caller still writes to a stdin stream goes nowhere.
      if (opts.stdin instanceof Readable) opts.stdin.unpipe(channel);
      clearTimeout(timer);
      clearTimeout(graceTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      const lost = opts.lostError();
      if (stopped === 'timeout') reject(timeoutError(command, opts.timeoutMs!, result()));
      else if (stopped) reject(stopped);
      else if (exitCode === null && exitSignal === null && lost) reject(lost);
      else resolve(result());
    };
    const stop = (why: 'timeout' | Error) => {
      if (stopped) return;
      stopped = why;
      // Without the PID yet, the stderr handler kills as soon as it arrives.
      if (pid !== undefined) opts.kill(pid);
      graceTimer = setTimeout(() => {
        // Not even the kill closed it (dead connection, or not killable): give up on the channel.
        channel.close();
        finish();
      }, STOP_GRACE_MS);
    };
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => stop('timeout'), opts.timeoutMs);
    const onAbort = () => stop(abortError(opts.signal!, command));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    channel.once('close', finish);
  });
}
