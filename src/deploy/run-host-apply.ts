/**
 * Running HOST_APPLY_SCRIPT on a host: the request goes in as the first stdin line, its answers are
 * read line by line as they come (so events are live), and the caller can still say "uploaded" or
 * "stop" while it runs.
 */
import { PassThrough } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { RemoteCommandError } from '../errors.js';
import type { CommandResult, Connection } from '../remote/connection.js';
import { pythonScriptArgv } from '../remote/python-script.js';
import { HOST_APPLY_SCRIPT, type HostApplyLine, type HostApplyProgress, type HostApplyRequest } from './host-apply-script.js';

const ARGV = pythonScriptArgv('vdeploy-apply', HOST_APPLY_SCRIPT);

export interface HostApplyRun {
  /** The uploads are complete: the script may check and move them into place. */
  uploaded(): void;
  /** Start no new venv; the one running finishes. Also what a failed upload says. */
  stop(): void;
  /** Every stdout line, the command's result, and how it ended. Rejects only when the command could not run to its end (lost connection). */
  done: Promise<{ lines: HostApplyLine[]; result: CommandResult; done: Extract<HostApplyLine, { done: unknown }>['done'] | undefined }>;
}

export interface HostApplyHandlers {
  onLine?: (line: HostApplyLine) => void;
  onProgress?: (progress: HostApplyProgress) => void;
}

export function runHostApply(conn: Connection, request: HostApplyRequest, handlers: HostApplyHandlers = {}): HostApplyRun {
  const stdin = new PassThrough();
  stdin.write(`${JSON.stringify(request)}\n`);
  const lines: HostApplyLine[] = [];
  const send = (line: string) => {
    if (!stdin.writableEnded) stdin.write(`${line}\n`);
  };
  const done = conn
    .exec(ARGV, {
      stdin,
      nothrow: true,
      onStdout: splitLines((text) => {
        const line = parseJson<HostApplyLine>(text);
        if (!line) return;
        lines.push(line);
        handlers.onLine?.(line);
      }),
      onStderr: splitLines((text) => {
        if (!text.startsWith('@vdeploy ')) return;
        const progress = parseJson<HostApplyProgress>(text.slice('@vdeploy '.length));
        if (progress) handlers.onProgress?.(progress);
      }),
    })
    .then((result) => {
      const last = lines.at(-1);
      const ended = last && 'done' in last ? last.done : undefined;
      if (result.exitCode !== 0 && !ended) {
        throw new RemoteCommandError('python3 -I -c <host apply script>', result, {
          message: `the apply script on ${conn.target} ${result.signal ? `was killed by ${result.signal}` : `exited with ${result.exitCode}`}: ${lastLine(result.stderr) || 'no output'}`,
          hint: "check that python3 (3.6 or newer) is on the host's PATH",
        });
      }
      return { lines, result, done: ended };
    })
    .finally(() => stdin.end());
  return {
    uploaded: () => send('uploaded'),
    stop: () => send('stop'),
    done,
  };
}

/** A chunk handler that calls `onLine` with each complete line (a line may arrive in pieces). */
function splitLines(onLine: (line: string) => void): (chunk: Buffer) => void {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  return (chunk) => {
    const parts = (pending + decoder.write(chunk)).split('\n');
    pending = parts.pop()!;
    for (const part of parts) if (part.trim()) onLine(part.trim());
  };
}

function parseJson<T>(text: string): T | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' ? (value as T) : undefined;
  } catch {
    return undefined;
  }
}

function lastLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('@vdeploy ')).at(-1) ?? '';
}
