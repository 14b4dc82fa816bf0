/**
 * A Connection to this machine: commands run with child_process.spawn (no shell), files are copied
 * with fs. Used for local operations and as the stand-in for SSH in unit tests.
 */
import { spawn } from 'node:child_process';
import { chmod, copyFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { Readable } from 'node:stream';
import { RemoteCommandError, VdeployError } from '../errors.js';
import type { CommandResult } from './command-result.js';
import { abortError, timeoutError, type Connection, type ExecOptions, type PutOptions } from './connection.js';
import { localFiles, type RemoteFiles } from './remote-files.js';
import { quoteCommand } from './shell-quote.js';

/** How long a timed-out or aborted command gets between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 2000;

export class LocalConnection implements Connection {
  readonly target = 'local';

  exec(argv: string[], opts: ExecOptions = {}): Promise<CommandResult> {
    const command = quoteCommand(argv);
    const [file, ...args] = argv as [string, ...string[]];
    const { signal, timeoutMs } = opts;
    if (signal?.aborted) return Promise.reject(abortError(signal, command));
    const started = performance.now();

    return new Promise<CommandResult>((resolve, reject) => {
      const child = spawn(file, args, {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: opts.env ? { ...process.env, ...opts.env } : process.env,
      });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      child.stdout.on('data', (chunk: Buffer) => {
        stdout.push(chunk);
        opts.onStdout?.(chunk);
      });
      child.stderr.on('data', (chunk: Buffer) => {
        stderr.push(chunk);
        opts.onStderr?.(chunk);
      });
      // A command that exits without reading its stdin makes the write fail with EPIPE; not our error.
      child.stdin.on('error', () => {});
      if (opts.stdin instanceof Readable) {
        opts.stdin.on('error', () => {});
        opts.stdin.pipe(child.stdin);
      } else {
        child.stdin.end(opts.stdin ?? '');
      }

      const resultOf = (exitCode: number | null, sig: string | null, errText?: string): CommandResult => ({
        exitCode,
        signal: sig,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: errText ?? Buffer.concat(stderr).toString('utf8'),
        ms: Math.round(performance.now() - started),
      });

      // Why we killed the command, if we did: decides what the promise rejects with once it is gone.
      let stopped: 'timeout' | Error | undefined;
      let killTimer: NodeJS.Timeout | undefined;
      const stop = (why: 'timeout' | Error) => {
        if (stopped) return;
        stopped = why;
        child.kill('SIGTERM');
        killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
      };
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => stop('timeout'), timeoutMs);
      const onAbort = () => stop(abortError(signal!, command));
      signal?.addEventListener('abort', onAbort, { once: true });

      let done = false;
      const finish = (result: CommandResult) => {
        if (done) return; // 'close' can follow 'error'
        done = true;
        if (opts.stdin instanceof Readable) opts.stdin.unpipe(child.stdin);
        clearTimeout(timer);
        clearTimeout(killTimer);
        signal?.removeEventListener('abort', onAbort);
        if (stopped === 'timeout') reject(timeoutError(command, timeoutMs!, result));
        else if (stopped) reject(stopped);
        else if (result.exitCode === 0 || opts.nothrow) resolve(result);
        else reject(new RemoteCommandError(command, result));
      };

      child.on('error', (err: NodeJS.ErrnoException) => {
        // Report a missing or non-executable program the way a shell (and so the SSH side) would.
        if (err.code === 'ENOENT') return finish(resultOf(127, null, `${file}: command not found\n`));
        if (err.code === 'EACCES') return finish(resultOf(126, null, `${file}: permission denied\n`));
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        reject(new VdeployError(`could not run \`${command}\`: ${err.message}`, { hint: 'check the program and its permissions', cause: err }));
      });
      child.on('close', (exitCode, sig) => finish(resultOf(exitCode, sig)));
    });
  }

  async put(localPath: string, remotePath: string, opts: PutOptions = {}): Promise<void> {
    try {
      await copyFile(localPath, remotePath);
      if (opts.mode !== undefined) await chmod(remotePath, opts.mode);
    } catch (err) {
      throw new VdeployError(`copying ${localPath} to ${remotePath} failed: ${(err as Error).message}`, {
        hint: 'check that the source file exists and the destination directory exists and is writable',
        cause: err,
      });
    }
  }

  async get(remotePath: string, localPath: string): Promise<void> {
    try {
      await copyFile(remotePath, localPath);
    } catch (err) {
      throw new VdeployError(`copying ${remotePath} to ${localPath} failed: ${(err as Error).message}`, {
        hint: 'check that the source file exists and the destination directory exists and is writable',
        cause: err,
      });
    }
  }

  async files(): Promise<RemoteFiles> {
    return localFiles(homedir());
  }

  async close(): Promise<void> {}
}
