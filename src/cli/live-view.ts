/**
 * The live view on a terminal: one listr2 line per host (planning) or per venv (applying), updated
 * from the core's events. The core knows nothing of it; off a terminal the CLI prints plain lines.
 */
import chalk from 'chalk';
import type { ListrTaskWrapper } from 'listr2';
import { SUCCESS_OUTCOMES, type DeployEvent } from '../deploy/events.js';
import { formatDuration } from '../remote/connection.js';
import { formatBytes } from './render-events.js';

interface Row {
  done: Promise<void>;
  settle: (error?: Error) => void;
  task?: ListrTaskWrapper<unknown, never, never>;
  /** The latest title, kept until listr2 has started the row's task. */
  title: string;
  started: number;
}

export interface LiveView {
  onEvent(e: DeployEvent): void;
  /** End a row the events will not end (a venv with nothing to do, or that failed to plan). */
  settleRow(key: string, text: string, ok: boolean): void;
  /** Settle every row still open and wait for the renderer to finish drawing. */
  close(): Promise<void>;
}

/**
 * Rows keyed by host name (`by: 'host'`) or venv id (`by: 'venv'`). Rows settle on their final event;
 * the renderer runs concurrently with the core call and never throws into it.
 */
export async function createLiveView(keys: readonly string[], by: 'host' | 'venv', colour: boolean): Promise<LiveView> {
  // Only a terminal gets the live view: plain runs (CI, pipes) don't pay for loading listr2.
  const { Listr, ListrDefaultRendererLogLevels: Level } = await import('listr2');
  // listr2 colours its icons by its own rules (colorette's, fixed at import: an empty NO_COLOR turns
  // colour off, FORCE_COLOR=0 turns it on); the CLI's decision for stdout (colour.ts) replaces them.
  const paint = (style: (s: string) => string) => (colour ? (s = '') => style(s) : (s = '') => s);
  const iconColour = {
    [Level.PENDING]: paint(chalk.yellow),
    [Level.COMPLETED]: paint(chalk.green),
    [Level.FAILED]: paint(chalk.red),
    [Level.COMPLETED_WITH_FAILED_SISTER_TASKS]: paint(chalk.red),
    [Level.WAITING]: paint(chalk.dim),
  };
  const rows = new Map<string, Row>();
  for (const key of keys) {
    let settle!: Row['settle'];
    const done = new Promise<void>((resolve, reject) => (settle = (err) => (err ? reject(err) : resolve())));
    rows.set(key, { done, settle, title: key, started: performance.now() });
  }
  const list = new Listr(
    keys.map((key) => {
      const row = rows.get(key)!;
      return {
        title: key,
        task: (_ctx: unknown, task: ListrTaskWrapper<unknown, never, never>) => {
          row.task = task;
          task.title = row.title;
          return row.done;
        },
      };
    }),
    {
      concurrent: true,
      exitOnError: false,
      collectErrors: false,
      rendererOptions: { collapseErrors: false, color: iconColour },
      renderer: 'default',
      // listr2's own SIGINT handler calls process.exit(127) at once: Ctrl-C belongs to the CLI's
      // interrupt handling (interrupt.ts: stop starting work, let the running venvs finish, record).
      registerSignalListeners: false,
    } as never,
  );
  // However the process ends while the view is up (Ctrl-C during planning, a second Ctrl-C during an
  // apply), the terminal gets the final rows, whatever was written meanwhile, and its cursor back.
  let ended = false;
  const endNow = () => {
    if (ended) return;
    ended = true;
    try {
      (list as unknown as { renderer?: { end(): void } }).renderer?.end();
    } catch {
      // Not drawn yet (listr2 loads its renderer lazily): nothing was hidden or hijacked.
    }
  };
  process.once('exit', endNow);
  // Rows settled early (failed before listr2 drew them) must not surface as unhandled rejections.
  for (const row of rows.values()) row.done.catch(() => {});
  const running = list.run().catch(() => {});
  const elapsed = (row: Row) => formatDuration(Math.round(performance.now() - row.started));
  const set = (key: string, text: string) => {
    const row = rows.get(key);
    if (!row) return;
    row.title = `${key}  ${text}`;
    if (row.task) row.task.title = row.title;
  };
  const settle = (key: string, text: string, ok: boolean) => {
    const row = rows.get(key);
    if (!row) return;
    set(key, `${text} (${elapsed(row)})`);
    rows.delete(key);
    row.settle(ok ? undefined : new Error(`${key}  ${text}`));
  };
  return {
    onEvent(e) {
      if (by === 'host') {
        if (e.kind === 'host:connect') set(e.host, 'connecting…');
        else if (e.kind === 'host:connected') set(e.host, 'probing…');
        else if (e.kind === 'host:probed') settle(e.host, 'planned', true);
        else if (e.kind === 'host:failed') settle(e.host, `${e.stage} failed: ${e.message}`, false);
        return;
      }
      // One view for planning and applying (deploy --yes): a host's connect and probe show on its venvs' rows.
      // A host's config files have a row of their own, `files:host1` (filesId).
      if (e.kind === 'files:start') return set(`files:${e.host}`, 'applying files…');
      if (e.kind === 'files:end') return settle(`files:${e.host}`, e.ok ? `${e.written} written, ${e.handlers} handler(s) run` : 'files failed', e.ok);
      if (e.kind === 'host:connect' || e.kind === 'host:connected' || e.kind === 'host:probed' || e.kind === 'host:failed') {
        const ofHost = [...rows.keys()].filter((key) => key.includes(`@${e.host}:`) || key === `files:${e.host}`);
        if (e.kind === 'host:failed') for (const key of ofHost) settle(key, `${e.stage} failed: ${e.message}`, false);
        else for (const key of ofHost) set(key, e.kind === 'host:connect' ? 'connecting…' : e.kind === 'host:connected' ? 'probing…' : 'planned');
        return;
      }
      if (e.kind === 'interrupt') {
        // Shown under the first open row at once (stderr is held back by listr2 until the view ends).
        const first = [...rows.values()].find((r) => r.task);
        if (first?.task) first.task.output = e.message;
        return;
      }
      if (e.kind === 'venv:start') {
        const row = rows.get(e.venv);
        if (row) row.started = performance.now();
        set(e.venv, 'applying…');
      }
      else if (e.kind === 'step:end') set(e.venv, `${e.step} ${e.ok ? 'done' : 'failed'}`);
      else if (e.kind === 'venv:hold') set(e.venv, 'waiting for files…');
      else if (e.kind === 'venv:end') settle(e.venv, e.outcome, SUCCESS_OUTCOMES.has(e.outcome));
      else if (e.kind === 'ship:packed') set(e.venv, `packed ${formatBytes(e.bytes)}, shipping…`);
      else if (e.kind === 'ship:fallback') set(e.venv, `building with pip: ${e.reason}`);
      else if (e.kind === 'ship:sent') {
        for (const key of rows.keys()) if (key.includes(`@${e.host}:`)) set(key, `received ${formatBytes(e.bytes)} (${e.ship}), waiting…`);
      }
      else if (e.kind === 'push:start' || e.kind === 'push:end') {
        const text = e.kind === 'push:start' ? `pushing ${e.wheels.length} wheel(s)…` : `pushed ${formatBytes(e.bytes)}, waiting…`;
        for (const key of rows.keys()) if (key.includes(`@${e.host}:`)) set(key, text);
      }
    },
    settleRow(key, text, ok) {
      settle(key, text, ok);
    },
    async close() {
      for (const [key, row] of rows) {
        set(key, 'not started');
        row.settle();
      }
      rows.clear();
      await running;
      process.off('exit', endNow);
    },
  };
}
