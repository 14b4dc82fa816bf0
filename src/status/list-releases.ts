/**
 * `listReleases()`: the releases each selected app root holds on its host (releases layout), read
 * with the probe's release details: each release's installed set and disk space, which one is live,
 * which one a rollback returns to, and the history entry that made it. The pure parts
 * (releaseRows, diffInstalled) are table-tested without SSH.
 */
import type { ResolvedConfig, ResolvedHost, ResolvedVenv } from '../config/resolve-config.js';
import { compareVersions, type PackageChange } from '../deploy/plan.js';
import { ConfigError } from '../errors.js';
import { DEFAULT_WHEEL_CACHE, probeHost } from '../facts/probe-host.js';
import type { ReleasesFacts } from '../facts/types.js';
import { chooseRollbackTarget, historyLines, parseHistory, type HistoryEntry } from '../history/history-entry.js';
import type { HostConnector } from '../remote/connect-host.js';
import { Semaphore } from '../remote/semaphore.js';
import { selectVenvs } from '../selectors/select-venvs.js';

export interface ReleaseRow {
  id: string;
  /** `current` points to it. */
  live: boolean;
  /** `vdeploy rollback` (without --to) would switch to it. */
  rollbackTarget: boolean;
  /** Disk space it takes, and the part no other release shares (hardlinked clones share the rest). */
  bytes?: number;
  ownBytes?: number;
  /** package key → version. */
  installed: Record<string, string>;
  /** What differs from the release before it on the host; null for the oldest one there. */
  changes: PackageChange[] | null;
  /** The history entry that built it (absent when the history does not name it). */
  madeBy?: { number: number; action: string; time: string; localUser: string; localHost: string };
}

export type VenvReleases = { id: string; host: string; path: string } & (
  | { ok: true; keep: number; live: string | null; /** Newest first. */ releases: ReleaseRow[] }
  | { ok: false; message: string }
);

export interface ReleasesListing {
  venvs: VenvReleases[];
  /** Selected venvs the deployfile declares in place (no `releases`): they have no releases. */
  inPlace: string[];
}

export async function listReleases(
  config: ResolvedConfig,
  options: { selectors?: readonly string[]; roles?: readonly string[]; connector: HostConnector },
): Promise<ReleasesListing> {
  const selected = selectVenvs(config, { selectors: options.selectors ?? [], roles: options.roles ?? [] });
  const venvs = selected.filter((v) => v.releases);
  const inPlace = selected.filter((v) => !v.releases).map((v) => v.id);
  if (venvs.length === 0) {
    const what = inPlace.length === 1 ? `${inPlace[0]} is an in-place venv` : `the ${inPlace.length} venvs selected are in-place venvs`;
    throw new ConfigError(`${what} (no \`releases\` in the deployfile): ${inPlace.length === 1 ? 'it has' : 'they have'} no releases to list`, {
      hint: 'select an app root declared with `releases: { keep: 5 }`; `vdeploy history SELECTOR` shows an in-place venv\'s deploys',
    });
  }
  const byHost = new Map<ResolvedHost, ResolvedVenv[]>();
  for (const v of venvs) byHost.set(v.host, [...(byHost.get(v.host) ?? []), v]);
  const limit = new Semaphore(config.ssh.concurrency);
  const results = await Promise.all([...byHost].map(([host, hostVenvs]) => limit.run(() => hostReleases(config, host, hostVenvs, options.connector))));
  const byId = new Map(results.flat().map((r) => [r.id, r]));
  return { venvs: venvs.map((v) => byId.get(v.id)!), inPlace };
}

async function hostReleases(config: ResolvedConfig, host: ResolvedHost, venvs: readonly ResolvedVenv[], connector: HostConnector): Promise<VenvReleases[]> {
  const id = (v: ResolvedVenv) => ({ id: v.id, host: host.name, path: v.path });
  try {
    const conn = await connector.connect(host);
    const facts = await probeHost(conn, {
      cacheDir: host.wheelCache ?? config.ssh.wheelCache ?? DEFAULT_WHEEL_CACHE,
      venvs: venvs.map((v) => ({ path: v.path, python: v.python, releases: true })),
      releaseDetails: true,
    });
    return venvs.map((v, i): VenvReleases => {
      const f = facts.venvs[i]!;
      if (f.state === 'not-a-venv') return { ...id(v), ok: false, message: `${v.id}: ${f.detail}` };
      const releases = f.releases ?? { live: null, list: [] };
      return { ...id(v), ok: true, keep: v.releases!.keep, live: releases.live, releases: releaseRows(releases, parseHistory(historyLines(f))) };
    });
  } catch (err) {
    return venvs.map((v) => ({ ...id(v), ok: false, message: err instanceof Error ? err.message : String(err) }));
  }
}

/** The probed releases (oldest first) as rows, newest first, each compared with the one before it. */
export function releaseRows(facts: ReleasesFacts, history: readonly HistoryEntry[]): ReleaseRow[] {
  const target = chooseRollbackTarget(history);
  const rollbackTo = target.ok ? target.release : undefined;
  const rows = facts.list.map((r, i): ReleaseRow => {
    const installed = r.installed ?? {};
    const previous = i > 0 ? (facts.list[i - 1]!.installed ?? {}) : null;
    // The entry that built it: the first successful one naming it (a rollback that switches to it names it too, later).
    const entry = history.find((e) => e.release === r.id && e.outcome === 'deployed') ?? history.find((e) => e.release === r.id);
    return {
      id: r.id,
      live: r.id === facts.live,
      rollbackTarget: r.id === rollbackTo && r.id !== facts.live,
      ...(r.bytes !== undefined ? { bytes: r.bytes } : {}),
      ...(r.ownBytes !== undefined ? { ownBytes: r.ownBytes } : {}),
      installed,
      changes: previous === null ? null : diffInstalled(previous, installed),
      ...(entry ? { madeBy: { number: entry.number, action: entry.action, time: entry.time, localUser: entry.localUser, localHost: entry.localHost } } : {}),
    };
  });
  return rows.reverse();
}

/** What changed from one installed set to the next (key → version), sorted by key. */
export function diffInstalled(before: Readonly<Record<string, string>>, after: Readonly<Record<string, string>>): PackageChange[] {
  const changes: PackageChange[] = [];
  for (const key of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
    const from = before[key];
    const to = after[key];
    if (from === undefined) changes.push({ kind: 'install', key, name: key, to: to! });
    else if (to === undefined) changes.push({ kind: 'remove', key, name: key, from });
    else {
      const order = compareVersions(to, from);
      if (order !== 0) changes.push({ kind: order > 0 ? 'upgrade' : 'downgrade', key, name: key, from, to });
    }
  }
  return changes;
}
