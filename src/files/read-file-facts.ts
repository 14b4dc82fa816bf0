/**
 * Reading a host's side of its config files (issue 17): for each desired path, whether a file is there,
 * its sha256, mode and owner (and its content when it differs and is small, for the plan's diff), plus
 * vdeploy's record on the host (managed paths, pending handlers). One run of the files script
 * (vdeploy_remote/files.py, contract files-contract.ts), as root through `sudo -n` when the host's
 * files need it.
 */
import { InterruptedError, lastLines, ProtocolError, RemoteCommandError, VdeployError } from '../errors.js';
import type { CommandResult, Connection } from '../remote/connection.js';
import { readAnswer } from '../remote/contracts.js';
import { describeScript, pythonArgv, pythonStdin } from '../remote/remote-python.js';
import { sudoRefusal } from '../remote/sudo.js';
import { contracts, type FilesFactsRequest } from './files-contract.js';
import type { HostFileFacts } from './types.js';

/** Generous: the script hashes a few files, but interpreters on a loaded host start slowly. */
const FACTS_TIMEOUT_MS = 120_000;

export interface FileFactsRequest {
  /** Where the record is kept on the host; absent: the default (docs/files.md). */
  stateDir?: string;
  /** The host's name in the deployfile (written into the record, used in messages). */
  host: string;
  /** Each desired path with its desired sha256; `content`: send the current content when it differs. */
  files: Array<{ path: string; sha256: string; content: boolean }>;
}

export interface FileFactsOptions {
  /** Run the script as root through `sudo -n`. */
  sudo: boolean;
  signal?: AbortSignal;
  /** The login user, for the message when sudo refuses; default: read from the connection's target. */
  login?: string;
  /** Default 120 s. */
  timeoutMs?: number;
}

/** The host's files at the asked paths (in the order asked) and vdeploy's record there. */
export async function readFileFacts(conn: Connection, request: FileFactsRequest, opts: FileFactsOptions): Promise<HostFileFacts> {
  const script: FilesFactsRequest = { op: 'facts', stateDir: request.stateDir ?? null, host: request.host, files: request.files };
  let result: CommandResult;
  try {
    result = await conn.exec(pythonArgv('files', opts.sudo ? { runAs: 'root' } : {}), {
      stdin: pythonStdin('files', script),
      nothrow: true,
      timeoutMs: opts.timeoutMs ?? FACTS_TIMEOUT_MS,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (err) {
    throw shortenError(err, request.host);
  }
  const from = { host: request.host, script: 'files' };
  const last = result.stdout.trimEnd().split('\n').at(-1)!.trim();
  if (!last.startsWith('{')) throw scriptDied(result, request.host, opts, conn.target);
  const answer = readAnswer(contracts['files.facts'], result.stdout, from);
  if ('error' in answer) {
    throw new VdeployError(`cannot read the files of ${request.host}: ${answer.error}`, answer.hint ? { hint: answer.hint } : {});
  }
  const asked = request.files.map((f) => f.path);
  if (answer.files.length !== asked.length || answer.files.some((f, i) => f.path !== asked[i])) {
    throw new ProtocolError(request.host, 'files', `it answered for other paths than asked (${answer.files.length} of ${asked.length})`, {
      hint: 'this is a vdeploy bug; please report it',
    });
  }
  const { v: _v, ...facts } = answer;
  return facts;
}

/** The login user named by a target like "deploy@127.0.0.2:22". */
function loginOf(target: string): string | undefined {
  const at = target.lastIndexOf('@');
  return at > 0 ? target.slice(0, at) : undefined;
}

function scriptDied(result: CommandResult, host: string, opts: FileFactsOptions, target: string): VdeployError {
  const login = opts.login ?? loginOf(target) ?? 'the login user';
  const refused = opts.sudo ? sudoRefusal(result.stderr, { host, login, owner: 'root', what: 'the files script', instead: 'log in as root (hosts[].user)' }) : undefined;
  if (refused) {
    // A refused `sudo -n` nearly always says "a password is required": say it plainly, with the rule that fixes it.
    const message = /password/i.test(result.stderr)
      ? `cannot read the files of ${host}: sudo asked ${login} for a password to run the files script as root (vdeploy runs \`sudo -n\`, which never prompts)`
      : `cannot read the files of ${host}: ${refused.message}`;
    return new VdeployError(message, { hint: refused.hint });
  }
  if (result.exitCode === 127) {
    return new VdeployError(`cannot read the files of ${host}: ${lastLines(result.stderr, 1) || 'no python3 there'}`, {
      hint: 'install python3 (3.6 or newer) on the host (vdeploy runs a Python script there to compare files)',
    });
  }
  const how = result.signal ? `was killed by ${result.signal}` : `exited with ${result.exitCode}`;
  const tail = lastLines(result.stderr, 3);
  return new VdeployError(`reading the files of ${host}: the files script ${how}${tail ? `: ${tail}` : ''}`, {
    hint: 'this is likely a vdeploy bug; please report it with this message',
  });
}

/** Timeout and interrupt messages quote the command, which here is the whole script: say it briefly instead. */
function shortenError(err: unknown, host: string): unknown {
  if (err instanceof RemoteCommandError) {
    return new RemoteCommandError(describeScript('files'), err.result, {
      message: `reading the files of ${host} did not finish: ${err.message.replace(/^`[^]*` /, '')}`,
      ...(err.hint ? { hint: err.hint } : {}),
    });
  }
  if (err instanceof InterruptedError && err.message.startsWith('`')) {
    return new InterruptedError(`reading the files of ${host} was interrupted`, { cause: err.cause });
  }
  return err;
}
