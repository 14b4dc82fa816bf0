/**
 * The probe: one command per host that reports every selected venv (exists? interpreter? installed
 * set?) and the wheel cache, so a deploy that changes nothing costs one round trip per host and runs
 * no pip. The work happens in a fixed Python script (src/remote/python/vdeploy_remote/probe.py, started
 * as remote-python.ts says) fed JSON on stdin; its contract is probe-contract.ts. Interpreter
 * facts vdeploy has seen before are offered from its local cache (interpreter-cache.ts), and the
 * script starts only the interpreters whose fingerprint no longer matches. Once every interpreter a
 * host uses is cached, not even the script runs: the same files are read over SFTP
 * (read-host-files.ts), which costs the host no login shell and no Python start.
 */
import { InterruptedError, ProtocolError, RemoteCommandError, VdeployError, lastLines } from '../errors.js';
import { abortError, type CommandResult, type Connection } from '../remote/connection.js';
import { defaultInterpreterCache, type InterpreterCache } from './interpreter-cache.js';
import type { ProbeScriptRequest } from './probe-contract.js';
import { readProbeAnswer, type LearnedInterpreter } from './probe-output.js';
import { describeScript, pythonArgv, pythonStdin } from '../remote/remote-python.js';
import { readHostFiles } from './read-host-files.js';
import type { HostFacts } from './types.js';

export { parseProbeOutput } from './probe-output.js';

export const DEFAULT_WHEEL_CACHE = '~/.cache/vdeploy/wheels';

/** How messages name the probe command (its argv holds whole sources). */
const PROBE_COMMAND = describeScript('probe');

/** Generous: the probe itself takes well under a second, but interpreters on a loaded host start slowly. */
const PROBE_TIMEOUT_MS = 120_000;

export interface ProbeRequest {
  /** Wheel cache dir as configured; may start with `~/` (the login user's home) — default '~/.cache/vdeploy/wheels'. */
  cacheDir: string;
  /** python = the configured interpreter for creating a missing venv, e.g. 'python3' or '/usr/bin/python3'. */
  venvs: Array<{ path: string; python: string; releases?: boolean }>;
  /** Each release's size and installed set too (`vdeploy releases`). */
  releaseDetails?: boolean;
}

export interface ProbeOptions {
  signal?: AbortSignal;
  /** Default 120 s. */
  timeoutMs?: number;
  /** Where interpreter facts are remembered between runs; default: the one the environment names; null: none. */
  interpreterCache?: InterpreterCache | null;
}

/**
 * What the script reads on stdin (pythonStdin adds "v"). The script also takes `cacheDir: null` and
 * `interpreters: false` (installed sets only), which nothing sends since apply verifies inside its
 * own script.
 */
type ScriptRequest = Omit<ProbeScriptRequest, 'v'>;

/** Facts for one host: its wheel cache and every venv in `request`, in the order asked. */
export async function probeHost(conn: Connection, request: ProbeRequest, opts: ProbeOptions = {}): Promise<HostFacts> {
  const cache = opts.interpreterCache === undefined ? defaultInterpreterCache() : opts.interpreterCache;
  // The connection's target names the host; the fingerprints, not the name, decide whether facts still hold.
  const known = cache?.known(conn.target) ?? [];
  // Sizes and installed sets of every release are the script's to tell.
  const quick = request.releaseDetails ? null : await readByFiles(conn, request, known, opts);
  if (quick !== null) {
    cache?.rememberVenvs(conn.target, quick.venvs);
    return quick;
  }
  const result = await runProbeScript(
    conn,
    {
      cacheDir: request.cacheDir,
      venvs: request.venvs.map((v) => (v.releases ? v : { path: v.path, python: v.python })),
      ...(request.releaseDetails ? { releaseDetails: true } : {}),
      interpreters: true,
      known: known.map(({ python, fingerprint, files }) => ({ python, fingerprint, files })),
    },
    opts,
  );
  const { facts, learned, confirmed } = readProbeAnswer(result.stdout, conn.target, new Map(known.map((k) => [k.fingerprint, k.facts])));
  const asked = request.venvs.map((v) => v.path);
  if (facts.venvs.length !== asked.length || facts.venvs.some((v, i) => v.path !== asked[i])) {
    throw new ProtocolError(conn.target, 'probe', `it answered for other venvs than asked (${facts.venvs.length} of ${asked.length})`, {
      hint: 'this is a vdeploy bug; please report it',
    });
  }
  cache?.remember(conn.target, learned);
  cache?.confirm(conn.target, confirmed);
  cache?.rememberVenvs(conn.target, facts.venvs);
  return facts;
}

/**
 * The probe over SFTP alone (read-host-files.ts), tried when the cache can vouch for interpreters
 * without a command; null sends the caller to the script. Interrupting it interrupts the probe.
 */
async function readByFiles(conn: Connection, request: ProbeRequest, known: LearnedInterpreter[], opts: ProbeOptions): Promise<HostFacts | null> {
  if (conn.files === undefined || !known.some((k) => k.quick !== undefined)) return null;
  const { signal } = opts;
  // The same error as an interrupted script: abortError passes a reason of ours through unchanged.
  const interrupted = () => shortenError(abortError(signal!, PROBE_COMMAND), conn.target);
  if (signal?.aborted) throw interrupted();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(interrupted());
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const read = (async () => {
      const files = await conn.files!().catch(() => null);
      return files === null ? null : readHostFiles(files, request, known);
    })();
    return await Promise.race([read, aborted]);
  } finally {
    signal?.removeEventListener('abort', onAbort!);
  }
}

async function runProbeScript(conn: Connection, request: ScriptRequest, opts: ProbeOptions): Promise<CommandResult> {
  let result: CommandResult;
  try {
    result = await conn.exec(pythonArgv('probe'), {
      stdin: pythonStdin('probe', request),
      nothrow: true,
      timeoutMs: opts.timeoutMs ?? PROBE_TIMEOUT_MS,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (err) {
    throw shortenError(err, conn.target);
  }
  if (result.exitCode === 127) {
    // start.sh found no python3, or bootstrap.py found one older than 3.6: its stderr says which.
    const tooOld = lastLines(result.stderr, 1).includes('vdeploy needs Python 3.6');
    throw new VdeployError(`cannot probe ${conn.target}: ${tooOld ? lastLines(result.stderr, 1) : "it has no /usr/bin/python3 and no python3 on the login user's PATH"}`, {
      hint: 'install python3 (3.6 or newer) on the host (vdeploy needs it to inspect venvs), or fix PATH for non-interactive SSH logins',
    });
  }
  if (result.exitCode !== 0) {
    const how = result.signal ? `was killed by ${result.signal}` : `exited with ${result.exitCode}`;
    const tail = lastLines(result.stderr, 3);
    throw new VdeployError(`the probe of ${conn.target} ${how}${tail ? `: ${tail}` : ''}`, {
      hint: 'this is likely a vdeploy bug (or a python3 older than 3.6 on the host); please report it with this message',
    });
  }
  return result;
}

/** Timeout and interrupt messages quote the command, which here is the whole script: say it briefly instead. */
function shortenError(err: unknown, target: string): unknown {
  if (err instanceof RemoteCommandError) {
    return new RemoteCommandError(PROBE_COMMAND, err.result, {
      message: `the probe of ${target} did not finish: ${err.message.replace(/^`[^]*` /, '')}`,
      ...(err.hint ? { hint: err.hint } : {}),
    });
  }
  if (err instanceof InterruptedError && err.message.startsWith('`')) {
    return new InterruptedError(`the probe of ${target} was interrupted`, { cause: err.cause });
  }
  return err;
}
