/**
 * The ship rows (issue 16, "build once, ship everywhere"): app roots in the releases layout deployed
 * by vdeploy with shipping on (one pip build per group, the release packed, fetched to the controller
 * and sent to every other member), against the same floors as the main rows (the pip installs run
 * directly on as many in-place venvs of the same hosts; a no-op: `ssh host true`). Each run is reset
 * (untimed) to its start — app roots, the hosts' wheel caches AND the controller's local artifact
 * cache — and checked after: every app root's live release (through `current`) must hold exactly the
 * expected versions. What vdeploy did is read from its `--json` report: bytes sent, who built and who
 * received (full or delta), and the fresh deploy's split (build, pack, transfer, unpack, verify, switch).
 */
import { cpSync, existsSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import type { DeployProject } from '../test/helpers/deploy-project.js';
import type { BenchFleet, VenvState } from './bench-fleet.js';
import { timeFloorInstall, timeFloorNoop, timeVdeploy, type FleetTarget, type RssMethod, type TimedLine } from './contenders.js';
import { median, parseDuration, profileRun, seconds, type RunProfile } from './profile.js';
import { WrongResultError } from './scenarios.js';
import { APP } from './wheel-set.js';

export type ShipScenario = 'ship-fresh' | 'ship-upgrade' | 'ship-noop';
export const SHIP_SCENARIOS: readonly ShipScenario[] = ['ship-fresh', 'ship-upgrade', 'ship-noop'];
export type ShipContender = 'ship' | 'floor';

/** Where a shipped deploy's time went (ms): the builder's side once, the receivers' as the median receiver venv. */
export interface ShipSplit {
  /** The builder's release built with pip: create (or clone + relocate) + install, slowest builder. */
  build: number;
  /** Manifest + tar on the builder's host (its "pack" step). */
  pack: number;
  /** Builder's host → controller (ship:fetched), slowest group. */
  fetch: number;
  /** Controller → each receiver host (ship:sent), the slowest host. */
  send: number;
  /** A receiver's unpack with every file checked against the manifest while written (one pass). */
  unpack: number;
  /** The receiver's final checks: the manifest's file set, then the versions (verify step). */
  verify: number;
  /** Relocating the received release to the receiver's path. */
  relocate: number;
  switch: number;
  receivers: number;
}

/** Who did what, from the report's `shipped` per venv. */
export interface ShipRoles {
  builders: number;
  full: number;
  delta: number;
  /** Receivers or builders that fell back to pip: venv → why. */
  fellBack: Record<string, string>;
  /** Venvs that built with pip without any shipping (a group of one, or shipping off). */
  unshipped: number;
}

export interface ShipRow {
  scenario: ShipScenario;
  hosts: number;
  venvs: number;
  runs: Record<ShipContender, number[]>;
  rssKiB: number[];
  cpuMs: number[];
  /** Per vdeploy run: bytes written from the controller (report.bytesSent). */
  bytesSent: Array<{ wheels: number; artifacts: number }>;
  split: ShipSplit[];
  roles: ShipRoles[];
  profiles: RunProfile[];
  load: number[];
  resetMs: number;
  measuredAt: string;
  session: string;
}

export interface ShipContext {
  bench: BenchFleet;
  /** App roots deployed with shipping, and in-place venvs of the same hosts for the floor. */
  targets: { releases: FleetTarget[]; inPlace: FleetTarget[] };
  project: DeployProject;
  floor: { requirements: string; findLinks: string };
  /** The controller's local artifact cache and its saved state after each state's deploy. */
  artifacts: LocalArtifacts;
  rss: RssMethod;
  log: (line: string) => void;
  session: string;
}

const START: Record<ShipScenario, VenvState> = { 'ship-fresh': 'empty', 'ship-upgrade': 'app-1.0', 'ship-noop': 'app-1.1' };

/**
 * vdeploy's local artifact cache (`$VDEPLOY_CACHE_DIR/artifacts`), saved per state as a copy (not
 * hard links: vdeploy may touch the tars' times to track use). A fresh deploy starts from an empty
 * one: nothing was ever built, so the group's one build is part of the run.
 */
export class LocalArtifacts {
  private readonly saved = new Map<VenvState, string>();
  constructor(readonly dir: string, private readonly stash: string) {}

  save(state: VenvState): void {
    const copy = `${this.stash}/${state}`;
    rmSync(copy, { recursive: true, force: true });
    if (existsSync(this.dir)) cpSync(this.dir, copy, { recursive: true, preserveTimestamps: true });
    this.saved.set(state, copy);
  }

  restore(state: VenvState): void {
    rmSync(this.dir, { recursive: true, force: true });
    const copy = state === 'empty' ? undefined : this.saved.get(state);
    if (copy && existsSync(copy)) cpSync(copy, this.dir, { recursive: true, preserveTimestamps: true });
  }
}

export async function measureShipRow(ctx: ShipContext, scenario: ShipScenario, runs: number): Promise<ShipRow> {
  const hosts = ctx.targets.releases.length;
  const venvs = ctx.targets.releases[0]?.venvs.length ?? 0;
  const label = `${scenario} ${hosts}×${venvs}`;
  const start = START[scenario];
  const row: ShipRow = {
    scenario, hosts, venvs,
    runs: { ship: [], floor: [] },
    rssKiB: [], cpuMs: [], bytesSent: [], split: [], roles: [], profiles: [], load: [], resetMs: 0,
    measuredAt: new Date().toISOString(),
    session: ctx.session,
  };
  await ctx.project.setRequirements(`${APP}==1.1\n`);
  const run: Record<ShipContender, () => Promise<number>> = {
    ship: async () => {
      const r = await timeVdeploy(ctx.project.dir, ['deploy', '--yes', '--json'], ctx.rss);
      const report = parseReport(r.stdout, label);
      row.rssKiB.push(r.rssKiB);
      row.cpuMs.push(r.cpuMs);
      row.bytesSent.push(report.bytesSent ?? { wheels: NaN, artifacts: NaN });
      row.roles.push(shipRoles(report));
      row.split.push(shipSplit(report, r.lines));
      row.profiles.push(profileRun(r.lines, r.ms));
      const fellBack = Object.entries(row.roles.at(-1)!.fellBack);
      if (fellBack.length > 0) ctx.log(`  warning: ${fellBack.length} venvs fell back to pip: ${fellBack.slice(0, 3).map(([v, why]) => `${v}: ${why}`).join('; ')}`);
      return r.ms;
    },
    floor: () =>
      scenario === 'ship-noop' ? timeFloorNoop(ctx.bench.fleet, ctx.targets.inPlace) : timeFloorInstall(ctx.targets.inPlace, ctx.floor.requirements, ctx.floor.findLinks),
  };
  const targetsOf: Record<ShipContender, FleetTarget[]> = { ship: ctx.targets.releases, floor: ctx.targets.inPlace };
  for (let i = 0; i < runs; i++) {
    // Take turns going first, so a drift in the machine's load does not always land on one contender.
    const order: ShipContender[] = i % 2 === 0 ? ['ship', 'floor'] : ['floor', 'ship'];
    const took: string[] = [];
    for (const contender of order) {
      const targets = targetsOf[contender];
      const reset = performance.now();
      await ctx.bench.reset(start, targets);
      if (contender === 'ship') ctx.artifacts.restore(start);
      row.resetMs += performance.now() - reset;
      row.load.push(loadavg()[0]!);
      const ms = await run[contender]();
      row.load.push(loadavg()[0]!);
      const problems = ctx.bench.check('app-1.1', targets);
      if (problems.length > 0) {
        throw new WrongResultError(`${label}, run ${i + 1}: ${contender} left the fleet wrong (${problems.length} problems):\n  ${problems.slice(0, 10).join('\n  ')}`);
      }
      row.runs[contender].push(ms);
      took.push(`${contender} ${seconds(ms)}`);
    }
    const bytes = row.bytesSent.at(-1)!;
    const roles = row.roles.at(-1)!;
    ctx.log(
      `  ${label} run ${i + 1}/${runs}: ${took.join(', ')}; sent ${mib(bytes.artifacts)} of artifacts, ${mib(bytes.wheels)} of wheels; ` +
        `${roles.builders} built, ${roles.full} full + ${roles.delta} delta received; peak RSS ${(row.rssKiB.at(-1)! / 1024).toFixed(0)} MiB; load ${loadavg()[0]!.toFixed(2)}`,
    );
  }
  return row;
}

/** The parts of `vdeploy deploy --json`'s report the ship rows read (the design's fields; all optional to a reader). */
interface ShipReport {
  bytesSent?: { wheels: number; artifacts: number };
  venvs: Array<{
    id?: string;
    steps?: Array<{ name: string; ms: number }>;
    shipped?: { role: 'builder' | 'receiver'; kind?: 'full' | 'delta'; fellBack?: string };
    release?: {
      artifact?: { ms?: Record<string, number> };
      received?: { ms?: { unpack?: number; verify?: number; relocate?: number } };
    };
  }>;
}

function parseReport(stdout: string, label: string): ShipReport {
  try {
    const out = JSON.parse(stdout) as { report?: ShipReport };
    if (!out.report || !Array.isArray(out.report.venvs)) throw new Error('no report.venvs');
    return out.report;
  } catch (err) {
    throw new Error(`${label}: could not read vdeploy's --json report (${(err as Error).message}): ${stdout.slice(0, 300)}`);
  }
}

export function shipRoles(report: ShipReport): ShipRoles {
  const roles: ShipRoles = { builders: 0, full: 0, delta: 0, fellBack: {}, unshipped: 0 };
  for (const v of report.venvs) {
    const s = v.shipped;
    const built = (v.steps ?? []).some((st) => st.name === 'install' || st.name === 'create');
    if (!s) {
      if (built) roles.unshipped++;
      continue;
    }
    if (s.fellBack) roles.fellBack[v.id ?? '?'] = s.fellBack;
    else if (s.role === 'builder') roles.builders++;
    else if (s.kind === 'delta') roles.delta++;
    else roles.full++;
  }
  return roles;
}

const BUILD_STEPS = new Set(['create', 'clone', 'relocate', 'install']);
const TRANSFER = /^(\S+): (fetched|sent) group .*\(([\d.]+m?s)\)$/;

/** The split of one shipped deploy: the builder's side (slowest builder), the transfers (slowest), the median receiver's steps. */
export function shipSplit(report: ShipReport, lines: readonly TimedLine[]): ShipSplit {
  const stepMs = (v: ShipReport['venvs'][number], names: ReadonlySet<string>) => (v.steps ?? []).filter((s) => names.has(s.name)).reduce((n, s) => n + s.ms, 0);
  const builders = report.venvs.filter((v) => v.shipped?.role === 'builder' && !v.shipped.fellBack);
  const receivers = report.venvs.filter((v) => v.shipped?.role === 'receiver' && !v.shipped.fellBack);
  const max = (xs: number[]) => (xs.length ? Math.max(...xs) : 0);
  const med = (xs: number[]) => (xs.length ? median(xs) : 0);
  const transfer = { fetched: [] as number[], sent: [] as number[] };
  for (const { text } of lines) {
    const m = TRANSFER.exec(text);
    if (m) transfer[m[2] as 'fetched' | 'sent'].push(parseDuration(m[3]!));
  }
  return {
    build: max(builders.map((v) => stepMs(v, BUILD_STEPS))),
    pack: max(builders.map((v) => stepMs(v, new Set(['pack'])))),
    fetch: max(transfer.fetched),
    send: max(transfer.sent),
    unpack: med(receivers.map((v) => v.release?.received?.ms?.unpack ?? stepMs(v, new Set(['receive'])))),
    verify: med(receivers.map((v) => (v.release?.received?.ms?.verify ?? 0) + stepMs(v, new Set(['verify'])))),
    relocate: med(receivers.map((v) => v.release?.received?.ms?.relocate ?? 0)),
    switch: med(receivers.map((v) => stepMs(v, new Set(['switch'])))),
    receivers: receivers.length,
  };
}

function mib(bytes: number): string {
  return Number.isFinite(bytes) ? `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 3 : 1)} MiB` : '? MiB';
}
