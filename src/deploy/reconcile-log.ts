/**
 * Reconcile the release log with the hosts. A run records its `install:` lines only at its end, so
 * when vdeploy is killed or loses its connection mid-apply, a remote apply that went on to finish is
 * in the venv's history (`deployed`) but not in release_log, and the next plan shows it `unchanged`.
 * The next run that probes the venv finds such history entries and records them, marked
 * `(recovered from history #N)`, so the log and the hosts agree again.
 *
 * An entry is recovered when it is a deploy or rollback that deployed, every wheel it installed was
 * released in this repository before it started (so it came from here, not from another repository
 * or from before this log), and some wheel it installed has no `install:` line for that venv written
 * at or after its start. An entry whose vdeploy still runs on this machine is left to that run.
 * Times compared are all the controller's clock (history `time`, release and install lines).
 */
import { hostname } from 'node:os';
import type { HistoryEntry } from '../history/history-entry.js';
import { processExists } from '../process-exists.js';
import { normalizeName } from '../requirements/names.js';
import { appendReleaseLog, formatInstallLine, readReleaseLog, type ReleaseLogEntry } from '../wheels/release-log.js';
import { withRepoLock } from '../wheels/repo-lock.js';
import type { EventSink } from './events.js';

/** One history entry recorded by a later run: what the `install:` lines it wrote say. */
export interface RecoveredInstall {
  venv: string;
  host: string;
  path: string;
  /** The history entry's number (1 is the venv's oldest). */
  history: number;
  action: string;
  /** When the apply started (its history `time`; the lines are written with it) and finished (the host's clock). */
  time: string;
  finishedAt?: string;
  /** The wheels whose `install:` lines were missing, and now are written. */
  wheels: string[];
  /** Set when release_log could not be written (read-only repository, lock held too long): still missing. */
  notRecorded?: string;
}

export interface VenvWithHistory {
  /** The venv's id, and the host name and path its `install:` lines name. */
  id: string;
  host: string;
  path: string;
  history: readonly HistoryEntry[];
}

/** The entries of these venvs' histories that release_log lacks (pure: reads nothing). */
export function findUnrecorded(venvs: readonly VenvWithHistory[], log: readonly ReleaseLogEntry[], isAlive: (pid: number) => boolean = processExists): RecoveredInstall[] {
  const released = new Map<string, number>();
  const installed = new Map<string, number>();
  for (const e of log) {
    if (e.kind === 'release') released.set(e.filename, Math.min(released.get(e.filename) ?? Infinity, timeOf(e.time)));
    if (e.kind === 'install') {
      const key = `${e.host}\0${e.path}\0${e.filename}`;
      installed.set(key, Math.max(installed.get(key) ?? -Infinity, timeOf(e.time)));
    }
  }
  const found: RecoveredInstall[] = [];
  for (const v of venvs) {
    for (const entry of v.history) {
      if ((entry.action !== 'deploy' && entry.action !== 'rollback') || entry.outcome !== 'deployed') continue;
      const started = timeOf(entry.time);
      if (Number.isNaN(started) || stillRunning(entry, isAlive)) continue;
      const wheels = installedWheels(entry);
      if (wheels.length === 0 || !wheels.every((w) => (released.get(w) ?? Infinity) <= started)) continue;
      const missing = wheels.filter((w) => !((installed.get(`${v.host}\0${v.path}\0${w}`) ?? -Infinity) >= started));
      if (missing.length === 0) continue;
      found.push({
        venv: v.id, host: v.host, path: v.path, history: entry.number, action: entry.action, time: entry.time,
        ...(entry.finishedAt ? { finishedAt: entry.finishedAt } : {}),
        wheels: missing,
      });
    }
  }
  return found;
}

/**
 * Finds what release_log lacks and appends it (under the repository lock, re-reading the log there
 * so two runs never record the same entry twice); emits one `log:recovered` event per entry.
 */
export async function recordUnrecorded(repoDir: string, venvs: readonly VenvWithHistory[], emit: EventSink = () => {}): Promise<RecoveredInstall[]> {
  const missing = findUnrecorded(venvs, (await readReleaseLog(repoDir)).entries);
  // Almost always nothing is missing: don't take the lock for nothing.
  if (missing.length === 0) return [];
  let recovered: RecoveredInstall[];
  try {
    recovered = await withRepoLock(repoDir, async () => {
      const found = findUnrecorded(venvs, (await readReleaseLog(repoDir)).entries);
      const lines = found.flatMap((r) => r.wheels.map((filename) => formatInstallLine({ host: r.host, path: r.path, filename, time: r.time, recovered: r.history })));
      if (lines.length > 0) await appendReleaseLog(repoDir, lines);
      return found;
    });
  } catch (err) {
    // Someone who may only read the repository can still plan: the lines stay missing, and say so.
    const notRecorded = err instanceof Error ? err.message : String(err);
    recovered = missing.map((r) => ({ ...r, notRecorded }));
  }
  for (const r of recovered) emit({ kind: 'log:recovered', ...r });
  return recovered;
}

/** The wheels an entry put in: those of the packages its changes installed, upgraded or downgraded. */
function installedWheels(entry: HistoryEntry): string[] {
  const keys = new Set(entry.changes.filter((c) => c.kind !== 'remove').map((c) => c.key));
  return entry.packages.filter((p) => typeof p.name === 'string' && typeof p.wheel === 'string' && keys.has(normalizeName(p.name))).map((p) => p.wheel);
}

/** Its vdeploy still runs here: that run records it itself when it ends. */
function stillRunning(entry: HistoryEntry, isAlive: (pid: number) => boolean): boolean {
  return entry.localPid !== undefined && entry.localHost === hostname() && entry.localPid !== process.pid && isAlive(entry.localPid);
}

function timeOf(text: string): number {
  return Date.parse(text);
}
