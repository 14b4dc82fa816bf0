/**
 * Running the host apply script (vdeploy_remote/host_apply.py) on a host: its payload and request go
 * in on stdin, its answers are read line by line as they come (so events are live), each checked
 * against its contract (apply-contract.ts), and the caller can still say "uploaded" or "stop" while
 * it runs.
 */
import { PassThrough } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { ProtocolError, RemoteCommandError } from '../errors.js';
import type { CommandResult, Connection } from '../remote/connection.js';
import { checkAnswer, readAnswerLine, type AnswerSource } from '../remote/contracts.js';
import { describeScript, payloadFor, PROTOCOL, pythonArgv } from '../remote/remote-python.js';
import * as z from 'zod';
import { hostApplyLineKinds, hostApplyProgress, type HostApplyLine, type HostApplyProgress, type HostApplyRequest } from './apply-contract.js';

const SCRIPT = 'host apply';

export interface HostApplyRun {
  /** The uploads are complete: the script may check and move them into place. */
  uploaded(): void;
  /** Start no new venv; the one running finishes. Also what a failed upload says. */
  stop(): void;
  /**
   * Every stdout line, the command's result, and how it ended. Rejects when the command could not run
   * to its end (lost connection, no python3) or printed a line its contract does not allow (a
   * ProtocolError; the lines after it are not passed on).
   */
  done: Promise<{ lines: HostApplyLine[]; result: CommandResult; done: Extract<HostApplyLine, { done: unknown }>['done'] | undefined }>;
}

export interface HostApplyHandlers {
  onLine?: (line: HostApplyLine) => void;
  onProgress?: (progress: HostApplyProgress) => void;
}

export function runHostApply(conn: Connection, request: Omit<HostApplyRequest, 'v'>, handlers: HostApplyHandlers = {}): HostApplyRun {
  const from: AnswerSource = { host: conn.target, script: SCRIPT };
  const stdin = new PassThrough();
  stdin.write(payloadFor('host_apply'));
  stdin.write(`${JSON.stringify({ ...request, v: PROTOCOL })}\n`);
  const lines: HostApplyLine[] = [];
  let malformed: ProtocolError | undefined;
  const send = (line: string) => {
    if (!stdin.writableEnded) stdin.write(`${line}\n`);
  };
  const done = conn
    .exec(pythonArgv('host_apply'), {
      stdin,
      nothrow: true,
      onStdout: splitLines((text) => {
        if (malformed) return;
        // A login shell's rc files may print before the script starts (the probe reads its last line for
        // the same reason): text before the script's first line is not the script's.
        if (lines.length === 0 && !text.startsWith('{')) return;
        let line: HostApplyLine;
        try {
          line = readLine(text, from);
        } catch (err) {
          // Nothing it says from here on can be trusted: start nothing new, and fail the host once it ends.
          malformed = err instanceof ProtocolError ? err : new ProtocolError(from.host, SCRIPT, String(err));
          send('stop');
          return;
        }
        lines.push(line);
        handlers.onLine?.(line);
      }),
      onStderr: splitLines((text) => {
        if (!text.startsWith('@vdeploy ')) return;
        // A progress line only drives the live view: the results come from the stdout lines, which are
        // checked. One that does not fit its contract (a newer child, a stray "@vdeploy" from a hook) is
        // dropped rather than failing a deploy that is going fine.
        const progress = hostApplyProgress.safeParse(parseJson(text.slice('@vdeploy '.length)));
        if (progress.success) handlers.onProgress?.(progress.data);
      }),
    })
    .then((result) => {
      if (malformed) throw malformed;
      const last = lines.at(-1);
      const ended = last && 'done' in last ? last.done : undefined;
      if (!ended && result.exitCode === 0 && !result.signal) throw new ProtocolError(from.host, SCRIPT, 'it ended without its "done" line');
      if (!ended) throw notRun(conn.target, result);
      return { lines, result, done: ended };
    })
    .finally(() => stdin.end());
  return {
    uploaded: () => send('uploaded'),
    stop: () => send('stop'),
    done,
  };
}

function notRun(target: string, result: CommandResult): RemoteCommandError {
  const how = result.signal ? `was killed by ${result.signal}` : `exited with ${result.exitCode}`;
  return new RemoteCommandError(describeScript('host_apply'), result, {
    message: `the apply script on ${target} ${how}: ${lastLine(result.stderr) || 'no output'}`,
    hint:
      result.exitCode === 127
        ? 'install python3 (3.6 or newer) on the host: vdeploy looks for /usr/bin/python3, then python3 on the PATH'
        : "the last line of the script's stderr is quoted above; check the host's python3 (3.6 or newer)",
  });
}

const KINDS = Object.keys(hostApplyLineKinds) as Array<keyof typeof hostApplyLineKinds>;

/** One stdout line, checked against the schema of its kind (so a problem is named by its path). */
function readLine(text: string, from: AnswerSource): HostApplyLine {
  const json = readAnswerLine(z.record(z.string(), z.unknown()), text, from);
  const kind = KINDS.find((k) => k in json);
  if (kind === undefined) throw new ProtocolError(from.host, from.script, `a line with none of ${KINDS.join(', ')}: ${JSON.stringify(text.slice(0, 80))}`);
  return checkAnswer<HostApplyLine>(hostApplyLineKinds[kind], json, from);
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

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function lastLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('@vdeploy ')).at(-1) ?? '';
}
