/**
 * Runs a deployfile in a worker thread and hands back its default export as plain data (structured
 * clone), so that the deployfile's own code can't take vdeploy down with it: a `process.exit()` in a
 * worker ends only the worker, an endless loop there leaves the main thread free to notice Ctrl-C or
 * the time limit and terminate it, and timers it leaves behind (a deferred exit) die with it.
 *
 * The worker's code is a string run with `eval: true`: the CLI is bundled into one file
 * (scripts/bundle-cli.mjs), so a worker module next to this one would not exist at run time, and a
 * stringified TypeScript function would carry the transpiler's helpers. It is plain CommonJS.
 */
import { Worker } from 'node:worker_threads';

/** What the worker answers with (exactly one message). */
export type WorkerAnswer =
  | { kind: 'loaded'; value: unknown }
  /** Importing threw: a syntax error, a missing import, an exception in the deployfile. */
  | { kind: 'error'; message: string; stack: string }
  /** The export holds something that is not data (a function, a symbol) at `path`. */
  | { kind: 'not-data'; path: string; what: string }
  /** The deployfile called process.exit while being loaded. */
  | { kind: 'exit'; code: number; stack: string };

/** How a load ended, seen from the main thread. */
export type WorkerOutcome =
  | WorkerAnswer
  | { kind: 'timeout' }
  | { kind: 'aborted' }
  /** The worker ended without answering (nothing left to do: a top-level await that never settles). */
  | { kind: 'ended'; code: number };

const WORKER_SOURCE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const { file, jitiPath, parentUrl } = workerData;
const post = (message) => parentPort.postMessage(message);
const exit = process.exit.bind(process);
process.exit = (code) => {
  post({ kind: 'exit', code: Number(code ?? process.exitCode ?? 0), stack: String(new Error().stack) });
  exit(code);
};
function notData(value, path, seen) {
  const kind = typeof value;
  if (kind === 'function' || kind === 'symbol') return { path, what: 'a ' + kind };
  if (value === null || kind !== 'object' || seen.has(value)) return undefined;
  seen.add(value);
  for (const key of Object.keys(value)) {
    const at = Array.isArray(value) ? path + '[' + key + ']' : path ? path + '.' + key : key;
    const found = notData(value[key], at, seen);
    if (found) return found;
  }
  return undefined;
}
(async () => {
  const { createJiti } = require(jitiPath);
  // 'vdeploy' in a deployfile is for defineConfig (an identity function, for typing) and types.
  const defineConfig = (config) => config;
  const jiti = createJiti(parentUrl, { virtualModules: { vdeploy: { defineConfig } }, moduleCache: false });
  let value;
  try {
    value = await jiti.import(file, { default: true });
  } catch (error) {
    const err = error instanceof Error ? error : new Error(String(error));
    post({ kind: 'error', message: String(err.message), stack: String(err.stack ?? '') });
    return;
  }
  // jiti hands back the module namespace itself when there is no default export.
  if (Object.prototype.toString.call(value) === '[object Module]') value = undefined;
  const bad = notData(value, '', new Set());
  if (bad) post({ kind: 'not-data', path: bad.path || '(the default export)', what: bad.what });
  else {
    try {
      post({ kind: 'loaded', value });
    } catch (error) {
      post({ kind: 'not-data', path: '(the default export)', what: 'something that cannot be copied (' + error.message + ')' });
    }
  }
})();
`;

export interface RunDeployfileOptions {
  file: string;
  /** jiti's CommonJS entry, resolved by the caller. */
  jitiPath: string;
  /** Where jiti resolves bare imports from. */
  parentUrl: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Loads the deployfile in a worker; the worker is always terminated before this returns. */
export async function runDeployfileWorker(options: RunDeployfileOptions): Promise<WorkerOutcome> {
  const { file, jitiPath, parentUrl } = options;
  // The same arguments and (a copy of) the environment as vdeploy: a deployfile may read them.
  const worker = new Worker(WORKER_SOURCE, { eval: true, argv: process.argv.slice(2), workerData: { file, jitiPath, parentUrl } });
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await new Promise<WorkerOutcome>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'timeout' }), options.timeoutMs);
      onAbort = () => resolve({ kind: 'aborted' });
      if (options.signal?.aborted) onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      worker.once('message', (answer: WorkerAnswer) => resolve(answer));
      worker.once('error', (err) => resolve({ kind: 'error', message: err.message, stack: String(err.stack ?? '') }));
      worker.once('exit', (code) => resolve({ kind: 'ended', code }));
    });
  } finally {
    clearTimeout(timer);
    if (onAbort) options.signal?.removeEventListener('abort', onAbort);
    // Also ends whatever the deployfile left running: timers, a deferred process.exit, a busy loop.
    await worker.terminate();
  }
}
