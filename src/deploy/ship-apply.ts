/**
 * Build once, ship (the controller's half; the plan's half is ship-plan.ts, the hosts' is
 * vdeploy_remote/artifact.py). Each group's builder packs its new release; the controller downloads
 * the tar(s) into the local artifact cache (artifact-cache.ts) and the group's promise resolves; a
 * host with receivers waits for its groups' promises (holding no concurrency slot meanwhile), then
 * runs its apply with the tars among its uploads — once per host, however many of its venvs take it.
 * Whatever goes wrong (builder failed, download failed, a receive the manifest check refused) ends
 * in the venv being built with pip as without shipping, and the report says why.
 */
import { stat } from 'node:fs/promises';
import { basename, posix } from 'node:path';
import type { Connection } from '../remote/connection.js';
import { cachedArtifact, cachedDelta, cachedGroup, deltaTarName, forgetArtifact, fullTarName, recordArtifact, storeTar, touchArtifact, type CachedTar } from './artifact-cache.js';
import type { ShipInputs } from './apply-venv.js';
import type { EventSink } from './events.js';
import type { HostPlan, Plan, ShipGroup, VenvPlan } from './plan.js';
import type { ShippedReport, VenvReport } from './report.js';
import type { Upload } from './upload-wheels.js';
import { randomBytes } from 'node:crypto';

type OkPlan = Extract<VenvPlan, { status: 'ok' }>;

/** A group's release, ready to ship: in the local cache, and (for the builder's host) on that host. */
export interface GroupArtifact {
  digest: string;
  full: CachedTar;
  delta?: CachedTar & { base: string };
  releaseId: string | null;
  sourcePath: string;
  /** The builder's venv id, or 'cache'. */
  from: string;
}

/** What the builder's host has once it packed: receivers there take the tars in place, no upload. */
interface Packed {
  host: string;
  digest: string;
  full: { path: string; sha256: string; bytes: number };
  delta: { path: string; sha256: string; bytes: number; base: string } | null;
  releaseId: string | null;
  sourcePath: string;
  from: string;
}

type Ready<T> = { ok: T } | { fallback: string };

interface GroupState {
  key: string;
  info: ShipGroup | undefined;
  builder: OkPlan | undefined;
  packed: Deferred<Ready<Packed>>;
  ready: Deferred<Ready<GroupArtifact>>;
  downloading?: Promise<void>;
}

class Deferred<T> {
  value: T | undefined;
  readonly promise: Promise<T>;
  private resolveFn!: (v: T) => void;
  constructor() {
    this.promise = new Promise<T>((r) => (this.resolveFn = r));
  }
  resolve(v: T): void {
    if (this.value !== undefined) return;
    this.value = v;
    this.resolveFn(v);
  }
}

export class Shipping {
  private readonly groups = new Map<string, GroupState>();
  /** Bytes written from the controller: wheels and tars. */
  readonly bytesSent = { wheels: 0, artifacts: 0 };
  private readonly counting: Array<Promise<void>> = [];

  constructor(
    plan: Plan,
    toApply: readonly OkPlan[],
    private readonly emit: EventSink,
    private readonly signal: AbortSignal | undefined,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    for (const v of toApply) {
      if (!v.ship || !v.releases) continue;
      const state = this.groups.get(v.ship.group) ?? this.newGroup(v.ship.group, plan);
      if (v.ship.role === 'builder') state.builder = v;
    }
    for (const state of this.groups.values()) {
      if (state.info?.builder === 'cache' || (!state.builder && toApply.some((v) => v.ship?.role === 'receiver' && v.ship.group === state.key && v.ship.from === 'cache'))) {
        this.fromCache(state);
      } else if (!state.builder) {
        state.packed.resolve({ fallback: 'its builder is not deployed in this run' });
        state.ready.resolve({ fallback: 'its builder is not deployed in this run' });
      }
    }
    signal?.addEventListener('abort', () => this.settleAll('the deploy was interrupted'), { once: true });
  }

  private newGroup(key: string, plan: Plan): GroupState {
    const state: GroupState = { key, info: plan.groups?.find((g) => g.key === key), builder: undefined, packed: new Deferred(), ready: new Deferred() };
    this.groups.set(key, state);
    return state;
  }

  private fromCache(state: GroupState): void {
    const found = cachedGroup(state.key, this.env);
    const reason = 'the local artifact cache no longer holds its release';
    if (!found) {
      state.packed.resolve({ fallback: reason });
      state.ready.resolve({ fallback: reason });
      return;
    }
    touchArtifact(found.full.path);
    state.packed.resolve({ fallback: 'shipped from the local cache' });
    state.ready.resolve({ ok: { digest: found.meta.digest, full: found.full, releaseId: found.meta.releaseId, sourcePath: found.meta.sourcePath, from: 'cache' } });
  }

  /** Venvs of this host that receive a shipped release (the rest build: pip, or pip + pack). */
  receivers(venvs: readonly OkPlan[]): OkPlan[] {
    return venvs.filter((v) => v.ship?.role === 'receiver' && v.releases && this.groups.has(v.ship.group));
  }

  isBuilderHost(venvs: readonly OkPlan[]): boolean {
    return venvs.some((v) => v.ship?.role === 'builder' && this.groups.get(v.ship.group)?.builder === v);
  }

  /** Wait until every group these receivers take is settled (ready, or falling back). */
  async waitFor(receivers: readonly OkPlan[], host: string): Promise<void> {
    await Promise.all(receivers.map((v) => (this.onSameHost(v, host) ? this.group(v).packed.promise : this.group(v).ready.promise)));
  }

  private group(v: OkPlan): GroupState {
    return this.groups.get(v.ship!.group)!;
  }

  private onSameHost(v: OkPlan, host: string): boolean {
    return this.group(v).builder?.host === host;
  }

  /** The builder's pack request. */
  packInput(v: OkPlan, hostPlan: HostPlan): ShipInputs | undefined {
    if (v.ship?.role !== 'builder' || this.group(v).builder !== v) return undefined;
    const info = this.group(v).info;
    return {
      pack: {
        cacheDir: hostPlan.cacheDir,
        group: v.ship.group,
        fingerprint: info?.fingerprint ?? '',
        desired: info?.desired ?? v.desired.map((p) => p.filename).sort(),
        delta: true,
      },
    };
  }

  /**
   * For a host's receivers, once their groups settled: each one's ship input (absent: it builds with
   * pip, and the report says why), and the tars to upload to the host (each once).
   */
  planReceive(host: string, hostPlan: HostPlan, receivers: readonly OkPlan[]): { inputs: Map<string, ShipInputs>; uploads: Array<Upload & { group: string; kind: 'full' | 'delta'; bytes: number }>; shipped: Map<string, ShippedReport> } {
    const inputs = new Map<string, ShipInputs>();
    const uploads = new Map<string, Upload & { group: string; kind: 'full' | 'delta'; bytes: number }>();
    const shipped = new Map<string, ShippedReport>();
    const suffix = randomBytes(6).toString('hex');
    const dir = posix.join(hostPlan.cacheDir, 'artifacts');
    for (const v of receivers) {
      const ship = v.ship as Extract<NonNullable<OkPlan['ship']>, { role: 'receiver' }>;
      const state = this.group(v);
      const local = this.onSameHost(v, host);
      const got: Ready<Packed | GroupArtifact> | undefined = local ? state.packed.value : state.ready.value;
      if (!got || 'fallback' in got) {
        const reason = got?.fallback ?? 'its release never came';
        shipped.set(v.id, { role: 'receiver', group: ship.group, fellBack: reason });
        if (!this.signal?.aborted) this.emit({ kind: 'ship:fallback', venv: v.id, reason });
        continue;
      }
      const a = got.ok;
      const wantDelta = ship.kind === 'delta' && ship.base !== undefined && a.delta?.base === ship.base;
      const tar = wantDelta ? a.delta! : a.full;
      let remote: string;
      if (local) remote = (tar as { path: string }).path;
      else {
        const name = basename((tar as CachedTar).path);
        remote = posix.join(dir, name);
        if (!uploads.has(name)) {
          uploads.set(name, { local: (tar as CachedTar).path, tmp: posix.join(dir, `.${name}.tmp-${suffix}`), final: remote, sha256: tar.sha256, group: ship.group, kind: wantDelta ? 'delta' : 'full', bytes: tar.bytes });
        }
      }
      inputs.set(v.id, { ship: { tar: remote, kind: wantDelta ? 'delta' : 'full', digest: a.digest, base: wantDelta ? ship.base! : null, releaseId: a.releaseId, sourcePath: a.sourcePath } });
      shipped.set(v.id, { role: 'receiver', group: ship.group, kind: wantDelta ? 'delta' : 'full', from: a.from, bytes: tar.bytes });
    }
    return { inputs, uploads: [...uploads.values()], shipped };
  }

  /** Put the tars into the host's `<cacheDir>/artifacts/` under their temporary names (host_apply checks and renames). */
  async sendTars(conn: Connection, host: string, uploads: ReadonlyArray<Upload & { group: string; kind: 'full' | 'delta'; bytes: number }>): Promise<void> {
    if (uploads.length === 0) return;
    await conn.exec(['mkdir', '-p', '--', posix.dirname(uploads[0]!.final)]);
    for (const u of uploads) {
      const started = performance.now();
      touchArtifact(u.local);
      await conn.put(u.local, u.tmp, { mode: 0o644 });
      this.bytesSent.artifacts += u.bytes;
      this.emit({ kind: 'ship:sent', host, group: u.group, ship: u.kind, bytes: u.bytes, ms: Math.round(performance.now() - started) });
    }
  }

  /** Count pushed wheels (the local files' sizes); drain() waits for the count. */
  countWheels(uploads: readonly Upload[]): void {
    this.counting.push(
      (async () => {
        for (const u of uploads) this.bytesSent.wheels += await stat(u.local).then((s) => s.size, () => 0);
      })(),
    );
  }

  /**
   * A venv's answer came: for a builder, its pack. Starts the download (not awaited: the builder's
   * host carries on) and resolves the group's promises.
   */
  onAnswer(v: OkPlan, report: VenvReport, conn: Connection): void {
    if (v.ship?.role !== 'builder') return;
    const state = this.group(v);
    if (state.builder !== v) return;
    const artifact = report.release?.artifact;
    report.shipped = { role: 'builder', group: state.key, ...(artifact ? { bytes: artifact.full.bytes } : {}) };
    if (report.outcome !== 'deployed' || !artifact || !report.release?.id) {
      const why = report.outcome !== 'deployed' ? `its builder ${v.id} failed` : `its builder ${v.id} packed nothing`;
      this.settleGroup(state, why);
      return;
    }
    this.emit({ kind: 'ship:packed', venv: v.id, group: state.key, bytes: artifact.full.bytes, ...(artifact.delta ? { deltaBytes: artifact.delta.bytes } : {}), ms: Math.round(Object.values(artifact.ms).reduce((a, b) => a + b, 0)) });
    const packed: Packed = {
      host: v.host,
      digest: artifact.digest,
      full: artifact.full,
      delta: artifact.delta,
      releaseId: report.release.id,
      sourcePath: posix.join(v.path, 'releases', report.release.id),
      from: v.id,
    };
    state.packed.resolve({ ok: packed });
    state.downloading = this.download(state, packed, conn);
  }

  private async download(state: GroupState, packed: Packed, conn: Connection): Promise<void> {
    if (this.signal?.aborted) return this.settleGroup(state, 'the deploy was interrupted');
    const started = performance.now();
    try {
      if (!conn.get) throw new Error('this connection cannot download files');
      const get = conn.get.bind(conn);
      const full = cachedArtifact(packed.digest, this.env)?.full ?? (await storeTar(fullTarName(packed.digest), packed.full.sha256, (tmp) => get(packed.full.path, tmp), this.env));
      let delta: GroupArtifact['delta'];
      if (packed.delta) {
        const d = packed.delta;
        const cached = cachedDelta(packed.digest, d.base, this.env) ?? (await storeTar(deltaTarName(packed.digest, d.base), d.sha256, (tmp) => get(d.path, tmp), this.env));
        delta = { ...cached, base: d.base };
      }
      const info = state.info;
      recordArtifact(
        {
          group: state.key,
          fingerprint: info?.fingerprint ?? '',
          desired: info?.desired ?? state.builder!.desired.map((p) => p.filename).sort(),
          digest: packed.digest,
          bytes: full.bytes,
          sha256: full.sha256,
          created: new Date().toISOString(),
          releaseId: packed.releaseId,
          sourcePath: packed.sourcePath,
          ...(delta ? { deltas: { [delta.base.slice(0, 16)]: { base: delta.base, bytes: delta.bytes, sha256: delta.sha256 } } } : {}),
        },
        this.env,
      );
      this.emit({ kind: 'ship:fetched', group: state.key, host: packed.host, bytes: full.bytes + (delta?.bytes ?? 0), ms: Math.round(performance.now() - started) });
      state.ready.resolve({ ok: { digest: packed.digest, full, ...(delta ? { delta } : {}), releaseId: packed.releaseId, sourcePath: packed.sourcePath, from: packed.from } });
    } catch (err) {
      state.ready.resolve({ fallback: `downloading its release from ${packed.host} failed: ${err instanceof Error ? err.message : String(err)}` });
    }
  }

  private settleGroup(state: GroupState, why: string): void {
    state.packed.resolve({ fallback: why });
    state.ready.resolve({ fallback: why });
  }

  /** A builder host is done: groups its builders never answered for fall back. */
  settleHost(host: string, why: string): void {
    for (const state of this.groups.values()) if (state.builder?.host === host && state.packed.value === undefined) this.settleGroup(state, why);
  }

  private settleAll(why: string): void {
    for (const state of this.groups.values()) if (!state.downloading) this.settleGroup(state, why);
  }

  /** A receive of this venv's group failed the manifest check: drop the group's artifact from the local cache. */
  forget(v: OkPlan): void {
    const state = v.ship ? this.groups.get(v.ship.group) : undefined;
    const got = state?.ready.value;
    if (state && got && 'ok' in got) forgetArtifact(state.key, got.ok.digest, this.env);
  }

  /** Downloads still running (the deploy waits for them: a half-stored tar is never left behind). */
  async drain(): Promise<void> {
    await Promise.all([...[...this.groups.values()].map((s) => s.downloading), ...this.counting]);
  }
}
