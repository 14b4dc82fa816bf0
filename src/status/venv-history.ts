/** `readHistories()`: the deploy history of each selected venv, read from its host with the probe. */
import type { ResolvedConfig, ResolvedHost, ResolvedVenv } from '../config/resolve-config.js';
import { DEFAULT_WHEEL_CACHE, probeHost } from '../facts/probe-host.js';
import type { VenvFacts } from '../facts/types.js';
import { historyLines, parseHistory, type HistoryEntry } from '../history/history-entry.js';
import type { HostConnector } from '../remote/connect-host.js';
import { Semaphore } from '../remote/semaphore.js';
import { selectVenvs } from '../selectors/select-venvs.js';
import { releasedWheels, type ReleasedWheel } from '../wheels/repository.js';
import { builtFrom, entryInstalled, type BuiltFrom } from './built-from.js';

/** An entry, and the packages of its resulting set that `vdeploy build` built from a git commit. */
export type HistoryEntryWithCommits = HistoryEntry & { builtFrom?: BuiltFrom[] };

/**
 * `live`: releases layout only, the release `current` points to (null: none yet). `builtFrom`: the
 * installed packages built from a git commit (what the venv runs now), when there are any.
 */
export type VenvHistory = { id: string; host: string; path: string } & (
  | { ok: true; entries: HistoryEntryWithCommits[]; live?: string | null; builtFrom?: BuiltFrom[] }
  | { ok: false; message: string }
);

export async function readHistories(
  config: ResolvedConfig,
  options: { selectors?: readonly string[]; roles?: readonly string[]; connector: HostConnector },
): Promise<VenvHistory[]> {
  const venvs = selectVenvs(config, { selectors: options.selectors ?? [], roles: options.roles ?? [] });
  // The commits are extra information: a release log that cannot be read must not hide the history.
  const released = await releasedWheels(config.wheels).catch(() => [] as ReleasedWheel[]);
  const byHost = new Map<ResolvedHost, ResolvedVenv[]>();
  for (const v of venvs) byHost.set(v.host, [...(byHost.get(v.host) ?? []), v]);
  const limit = new Semaphore(config.ssh.concurrency);
  const results = await Promise.all(
    [...byHost].map(([host, hostVenvs]) =>
      limit.run(async (): Promise<VenvHistory[]> => {
        const id = (v: ResolvedVenv) => ({ id: v.id, host: host.name, path: v.path });
        try {
          const conn = await options.connector.connect(host);
          const facts = await probeHost(conn, {
            cacheDir: host.wheelCache ?? config.ssh.wheelCache ?? DEFAULT_WHEEL_CACHE,
            venvs: hostVenvs.map((v) => ({ path: v.path, python: v.python, ...(v.releases ? { releases: true } : {}) })),
          });
          return hostVenvs.map((v, i) => ({ ...id(v), ...venvHistory(v, facts.venvs[i]!, released) }));
        } catch (err) {
          return hostVenvs.map((v) => ({ ...id(v), ok: false, message: err instanceof Error ? err.message : String(err) }));
        }
      }),
    ),
  );
  const byId = new Map(results.flat().map((r) => [r.id, r]));
  return venvs.map((v) => byId.get(v.id)!);
}

function venvHistory(v: ResolvedVenv, f: VenvFacts, released: readonly ReleasedWheel[]): { ok: true; entries: HistoryEntryWithCommits[]; live?: string | null; builtFrom?: BuiltFrom[] } {
  const live = v.releases && f.state !== 'not-a-venv' ? { live: f.releases?.live ?? null } : {};
  const entries = parseHistory(historyLines(f)).map((e): HistoryEntryWithCommits => {
    const built = builtFrom(entryInstalled(e), released);
    return built.length > 0 ? { ...e, builtFrom: built } : e;
  });
  const running = f.state === 'venv' ? builtFrom(f.installed, released) : [];
  return { ok: true, entries, ...live, ...(running.length > 0 ? { builtFrom: running } : {}) };
}
