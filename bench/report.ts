/**
 * The benchmark's results: medians per row, the Markdown table, the issue's targets checked against
 * the numbers (reported, never enforced), and where vdeploy's time went.
 */
import type { LayoutRow } from './layouts.js';
import { formatProfile, median, medianProfile, seconds, type RunProfile } from './profile.js';
import type { RowResult } from './scenarios.js';
import type { ShipRow } from './ship.js';
import { checkShipTargets, renderShipSection } from './ship-report.js';

export interface Machine {
  cpu: string;
  nproc: number;
  memoryBytes: number;
  os: string;
  node: string;
  python: string;
  ssh: string;
  /** What the fleet's files were on, e.g. "tmpfs (/dev/shm)". */
  storage?: string;
}

export interface StartupTimes {
  /** `vdeploy --version`: Node + the CLI's modules. */
  version: number;
  /** `vdeploy venvs`: + loading and checking the deployfile. */
  venvs: number;
}

/** One run of the benchmark command; rows name the session that measured them. */
export interface Session {
  started: string;
  command: string;
  /** 1, 5 and 15-minute load averages when it started. */
  loadAverage: number[];
}

export interface BenchResults {
  generatedAt: string;
  sessions: Session[];
  machine: Machine;
  rssMethod: string;
  startup?: StartupTimes;
  rows: RowResult[];
  /** In-place vs releases layout rows (issue 15); absent in results written before them. */
  layoutRows?: LayoutRow[];
  /** Build once, ship rows (issue 16); absent in results written before them. */
  shipRows?: ShipRow[];
}

export interface RowSummary {
  scenario: string;
  size: string;
  vdeploy: number;
  baseline: number;
  floor: number;
  /** Max over runs, KiB. */
  rssKiB: number;
  /** vdeploy's CPU time (user + system), median over runs, ms; NaN when not recorded. */
  cpuMs: number;
  load: number;
  profile: RunProfile;
}

export interface Target {
  text: string;
  /** What was measured, in words; absent when the row was not run. */
  actual?: string;
  met?: boolean;
}

const MB = 1e6;

export function summarizeRow(row: RowResult): RowSummary {
  return {
    scenario: row.scenario,
    size: `${row.hosts}×${row.venvs}`,
    vdeploy: median(row.runs.vdeploy),
    baseline: median(row.runs.baseline),
    floor: median(row.runs.floor),
    rssKiB: Math.max(...row.rssKiB),
    cpuMs: median(row.cpuMs ?? []),
    load: median(row.load),
    profile: medianProfile(row.profiles),
  };
}

export function renderTable(rows: readonly RowResult[]): string[] {
  const lines = [
    '| scenario | H×V | vdeploy | baseline | floor | vdeploy/baseline | vdeploy/floor | vdeploy peak RSS | vdeploy CPU | load (1 min) |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const row of rows) {
    const s = summarizeRow(row);
    const name = row.group === 'scale' ? `scale: ${s.scenario}` : s.scenario;
    // No baseline runs (past --scale-baseline-max hosts): "–".
    const ran = Number.isFinite(s.baseline);
    const vsBaseline = ran ? `${(s.vdeploy / s.baseline).toFixed(2)} (${(s.baseline / s.vdeploy).toFixed(1)}× faster)` : '–';
    const cpu = Number.isFinite(s.cpuMs) ? seconds(s.cpuMs) : '–';
    lines.push(
      `| ${name} | ${s.size} | ${seconds(s.vdeploy)} | ${ran ? seconds(s.baseline) : '–'} | ${seconds(s.floor)} | ${vsBaseline} | ${(s.vdeploy / s.floor).toFixed(2)} | ${formatMiB(s.rssKiB)} | ${cpu} | ${s.load.toFixed(1)} |`,
    );
  }
  return lines;
}

export interface LayoutSummary {
  scenario: string;
  size: string;
  inPlace: number;
  releases: number;
  /** Median apply time of one venv (the host's time for it), ms. */
  inPlaceVenv: number;
  releasesVenv: number;
  /** The releases runs' apply steps, summed over venvs (medians). */
  releasesSteps: Record<string, number>;
  load: number;
}

export function summarizeLayoutRow(row: LayoutRow): LayoutSummary {
  return {
    scenario: row.scenario,
    size: `${row.hosts}×${row.venvs}`,
    inPlace: median(row.runs.inPlace),
    releases: median(row.runs.releases),
    inPlaceVenv: median(row.venvMs.inPlace),
    releasesVenv: median(row.venvMs.releases),
    releasesSteps: medianProfile(row.profiles.releases).steps,
    load: median(row.load),
  };
}

export function renderLayoutTable(rows: readonly LayoutRow[]): string[] {
  const lines = [
    '| scenario | H×V | in-place | releases | releases/in-place | per venv, in-place | per venv, releases | releases: apply steps summed over venvs | load (1 min) |',
    '|---|---|---:|---:|---:|---:|---:|---|---:|',
  ];
  for (const row of rows) {
    const s = summarizeLayoutRow(row);
    const steps = Object.entries(s.releasesSteps).filter(([, ms]) => ms >= 1).map(([name, ms]) => `${name} ${seconds(ms)}`).join(', ') || '–';
    lines.push(
      `| ${s.scenario.replace(/^layout-/, '')} | ${s.size} | ${seconds(s.inPlace)} | ${seconds(s.releases)} | ${(s.releases / s.inPlace).toFixed(2)} | ${seconds(s.inPlaceVenv)} | ${seconds(s.releasesVenv)} | ${steps} | ${s.load.toFixed(1)} |`,
    );
  }
  return lines;
}

/** Issue 15's speed promises for the releases layout, on the largest layout rows measured. */
export function checkLayoutTargets(rows: readonly LayoutRow[]): Target[] {
  const largest = (scenario: string) => rows.filter((r) => r.scenario === scenario).sort((a, b) => b.hosts * b.venvs - a.hosts * a.venvs)[0];
  const upgrade = largest('layout-upgrade');
  const rollback = largest('layout-rollback');
  const u = upgrade && summarizeLayoutRow(upgrade);
  const r = rollback && summarizeLayoutRow(rollback);
  return [
    {
      text: 'releases: an upgrade of one small package ≤ 1.5 × the in-place upgrade (clone + relocate + one small install, not a full rebuild)',
      ...(u ? { actual: `${u.size}: ${seconds(u.releases)} vs ${seconds(u.inPlace)}: ${(u.releases / u.inPlace).toFixed(2)} ×`, met: u.releases <= 1.5 * u.inPlace } : {}),
    },
    {
      text: 'releases: a rollback by switch takes < 1 s of host time per venv',
      ...(r ? { actual: `${r.size}: ${seconds(r.releasesVenv)} per venv (in place, by pip: ${seconds(r.inPlaceVenv)})`, met: r.releasesVenv < 1000 } : {}),
    },
  ];
}

/** The issue's targets (for a 2-core machine), each met, missed, or not measured in this run. */
export function checkTargets(rows: readonly RowResult[]): Target[] {
  const find = (scenario: string, group: string, hosts: number, venvs?: number) =>
    rows.find((r) => r.scenario === scenario && r.group === group && r.hosts === hosts && (venvs === undefined || r.venvs === venvs));
  const targets: Target[] = [];
  const ratioTargets: Array<[string, number, number]> = [
    // scenario, min × faster than the baseline, max × the floor
    ['noop', 5, 2],
    ['upgrade', 3, 1.5],
    ['fresh', 2, 1.3],
  ];
  for (const [scenario, faster, floorMax] of ratioTargets) {
    const row = find(scenario, 'main', 4, 4);
    const s = row && summarizeRow(row);
    targets.push({
      text: `${scenario} 4×4: vdeploy ≤ ${floorMax} × the floor`,
      ...(s ? { actual: `${seconds(s.vdeploy)} vs ${seconds(s.floor)}: ${(s.vdeploy / s.floor).toFixed(2)} ×`, met: s.vdeploy <= floorMax * s.floor } : {}),
    });
    targets.push({
      text: `${scenario} 4×4: vdeploy ≥ ${faster} × faster than the baseline`,
      ...(s ? { actual: `${seconds(s.vdeploy)} vs ${seconds(s.baseline)}: ${(s.baseline / s.vdeploy).toFixed(1)} × faster`, met: s.baseline >= faster * s.vdeploy } : {}),
    });
  }
  targets.push(...checkScaleTargets(rows));
  return targets;
}

/**
 * The scale targets: issue 13's at 32 hosts, issue 16's at 128 (no-op ≤ 3 s, peak RSS ≤ 250 MB;
 * fresh and upgrade reported against their floors, no target).
 */
function checkScaleTargets(rows: readonly RowResult[]): Target[] {
  const scale = rows.filter((r) => r.group === 'scale');
  const at = (scenario: string, hosts: number) => scale.find((r) => r.scenario === scenario && r.hosts === hosts);
  const vd = (r: RowResult) => median(r.runs.vdeploy);
  const one = at('noop', 1);
  const big = at('noop', 32);
  const most = [...scale].sort((a, b) => b.hosts - a.hosts)[0];
  const rssAt = (hosts: number) => {
    const there = scale.filter((r) => r.hosts === hosts);
    return there.length ? Math.max(...there.flatMap((r) => r.rssKiB)) : undefined;
  };
  const rssTarget = (hosts: number, mb: number): Target => {
    const kib = rssAt(hosts);
    return { text: `scale: vdeploy peak RSS ≤ ${mb} MB at ${hosts} hosts`, ...(kib !== undefined ? { actual: `${formatMiB(kib)} (${((kib * 1024) / MB).toFixed(0)} MB)`, met: kib * 1024 <= mb * MB } : {}) };
  };
  const noop128 = at('noop', 128);
  const targets: Target[] = [
    {
      text: 'scale: no-op at 32 hosts ≤ 4 × no-op at 1 host',
      // The floor's own ratio goes with it: the simulated hosts share this machine's cores, so their
      // sshds' work grows with the fleet as it would not on real, separate servers.
      ...(one && big
        ? { actual: `${seconds(vd(big))} vs ${seconds(vd(one))}: ${(vd(big) / vd(one)).toFixed(2)} × (the floor, \`ssh host true\`: ${(median(big.runs.floor) / median(one.runs.floor)).toFixed(2)} ×)`, met: vd(big) <= 4 * vd(one) }
        : {}),
    },
    rssTarget(32, 200),
    {
      text: 'scale: no-op at 128 hosts ≤ 3 s',
      ...(noop128 ? { actual: `${seconds(vd(noop128))} (the floor, \`ssh host true\` on every host: ${seconds(median(noop128.runs.floor))})`, met: vd(noop128) <= 3000 } : {}),
    },
    rssTarget(128, 250),
  ];
  for (const scenario of ['fresh', 'upgrade']) {
    const r = at(scenario, 128);
    if (r) targets.push({ text: `scale: ${scenario} at 128 hosts, against its floor (reported, no target)`, actual: `${seconds(vd(r))} vs ${seconds(median(r.runs.floor))}: ${(vd(r) / median(r.runs.floor)).toFixed(2)} ×` });
  }
  if (most && most.hosts < 128 && one) targets.push({ text: `(scale measured up to ${most.hosts} hosts only)` });
  return targets;
}

export function renderMarkdown(results: BenchResults): string {
  const m = results.machine;
  const when = (iso: string) => `${iso.slice(0, 16).replace('T', ' ')} UTC`;
  const layoutRows = results.layoutRows ?? [];
  const shipRows = results.shipRows ?? [];
  const used = results.sessions.filter((s) => [...results.rows, ...layoutRows, ...shipRows].some((r) => r.session === s.started));
  const rowsOf = (s: Session) => {
    const mine = results.rows.filter((r) => r.session === s.started);
    const main = mine.filter((r) => r.group === 'main');
    const scale = mine.filter((r) => r.group === 'scale');
    const layouts = [...layoutRows, ...shipRows].filter((r) => r.session === s.started);
    return [
      ...(main.length ? [`${[...new Set(main.map((r) => r.scenario))].join(', ')} ${[...new Set(main.map((r) => `${r.hosts}×${r.venvs}`))].join(', ')}`] : []),
      ...(scale.length ? [`scale ${[...new Set(scale.map((r) => r.scenario))].join(', ')} at ${[...new Set(scale.map((r) => r.hosts))].join(', ')} hosts`] : []),
      ...(layouts.length ? [`${[...new Set(layouts.map((r) => r.scenario))].join(', ')} ${[...new Set(layouts.map((r) => `${r.hosts}×${r.venvs}`))].join(', ')}`] : []),
    ].join('; ');
  };
  const lines = [
    '# vdeploy benchmark results',
    '',
    used.length === 1
      ? `Measured with \`${used[0]!.command}\` on ${when(used[0]!.started)}.`
      : `Measured in ${used.length} sessions: ${used.map((s) => `\`${s.command}\` on ${when(s.started)} (${rowsOf(s)})`).join('; ')}.`,
    '',
    `Machine: ${m.cpu}, \`nproc\` ${m.nproc}, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB memory, ${m.os}; Node ${m.node}, ${m.python} in the venvs, ${m.ssh}${m.storage ? `; fleet on ${m.storage}` : ''}.`,
    `Each time is the median of ${describeRuns(results.rows, [...layoutRows.map((r) => r.runs.releases.length), ...shipRows.map((r) => r.runs.ship.length)])}; peak RSS is the largest over the vdeploy runs` +
      ` (${results.rssMethod === 'gnu-time' ? 'GNU time %M' : 'getrusage maxrss of the process'}). The machine may be shared: "load" is the median 1-minute load average around the row's runs.`,
    '',
    ...renderTable(results.rows),
    '',
    ...(layoutRows.length ? renderLayoutSection(layoutRows) : []),
    ...(shipRows.length ? renderShipSection(shipRows) : []),
    '## Targets',
    '',
    ...[...checkTargets(results.rows), ...checkLayoutTargets(layoutRows), ...checkShipTargets(shipRows)].map((t) => `- ${t.met === undefined ? (t.actual ? 'reported' : '–') : t.met ? 'met' : '**missed**'}: ${t.text}${t.actual ? ` — ${t.actual}` : t.text.startsWith('(') ? '' : ' — not measured'}`),
    '',
    '## Where vdeploy\'s time goes (medians)',
    '',
    ...(results.startup
      ? [`- Process start alone (\`vdeploy --version\`): ${seconds(results.startup.version)}; with the deployfile loaded (\`vdeploy venvs\`): ${seconds(results.startup.venvs)}.`]
      : []),
    ...results.rows.map((r) => `- ${r.group === 'scale' ? 'scale: ' : ''}${r.scenario} ${r.hosts}×${r.venvs}: ${formatProfile(summarizeRow(r).profile)}`),
    ...layoutRows.flatMap((r) => [
      `- ${r.scenario} ${r.hosts}×${r.venvs}, in-place: ${formatProfile(medianProfile(r.profiles.inPlace))}`,
      `- ${r.scenario} ${r.hosts}×${r.venvs}, releases: ${formatProfile(medianProfile(r.profiles.releases))}`,
    ]),
    '',
    'Stages: startup+load = process start until the first SSH connection starts; connect and probe = the slowest host; plan = last probe answered until the first apply work; push = slowest host\'s upload; apply = first apply work until the last venv finished; exit = last event until the process ended.',
    '',
    '## What was measured',
    '',
    '- **vdeploy**: `vdeploy deploy --yes` through the built CLI (`node dist/cli/main.js`), the whole process.',
    '- **baseline**: the naive tool vdeploy replaces, written in the benchmark: one venv after another, `pip freeze` over `ssh`, `scp` of the wheels that venv lacks, `pip install --upgrade --no-index --find-links` over `ssh`.',
    '- **floor**: fresh and upgrade: the pip command vdeploy runs (`pip install --no-index --require-hashes -r <pinned>`), run directly on the hosts with vdeploy\'s parallelism (hosts at once, each host\'s venvs in turn), no SSH; no-op: one `ssh host true` per host, in parallel.',
    '- Hosts are real `sshd`s on 127.0.0.2… with real venvs (Debian\'s Python); wheels: Django, asgiref, sqlparse, gunicorn and a small app (1.0, 1.1).',
    '- The hosts\' sshds all run on this machine\'s cores, beside vdeploy: their sessions skip the login user\'s `~/.bashrc` (here it runs `pyenv init`, 0.6 CPU-seconds a session, which real servers would pay on their own CPUs). vdeploy\'s CPU time (user + system, GNU time) is the controller\'s share: its SSH handshakes, planning and rendering.',
    '- vdeploy runs with `VDEPLOY_CACHE_DIR` in the benchmark\'s scratch directory: its local caches are warm as deploying the fleet leaves them, and no artifacts land in the user\'s cache.',
    '- Before every timed run, venvs and wheel caches are reset (untimed) to the scenario\'s start (fresh: empty venvs; upgrade: app 1.0; no-op: everything at 1.1); after every run each venv must hold exactly the expected versions, or the benchmark fails. vdeploy\'s local caches (interpreter facts, wheel metadata) are as deploying the fleet leaves them: every host has been deployed or probed by vdeploy before the timed runs.',
    '',
  ];
  return lines.join('\n');
}

function renderLayoutSection(rows: readonly LayoutRow[]): string[] {
  return [
    '## Releases layout vs in-place (issue 15)',
    '',
    'The same change made by `vdeploy` (the whole process) to in-place venvs and to app roots in the releases layout (`releases: true`: `<root>/releases/<id>/` venvs and a `<root>/current` symlink), on the same hosts, taking turns. "Per venv" is the median apply time of one venv as vdeploy reports it (`…: deployed (2.5s)`): the host\'s time for that venv, from its apply starting until its answer, all steps included.',
    '',
    ...renderLayoutTable(rows),
    '',
    '- **upgrade** (app 1.0 → 1.1): in place, pip upgrades the live venv; releases: the live release is cloned by hardlinks, the clone relocated to its own path (paths rewritten in scripts and bytecode), the one small wheel installed into it, verified, then `current` switched by rename(2).',
    '- **rollback** (undo the 1.1 deploy): in place, `vdeploy rollback` runs pip to install 1.0 again; releases: `current` switches back to the 1.0 release still on the host, no pip.',
    '- **fresh** (nothing deployed yet): in place, the venvs exist (made by the benchmark, with pip) and vdeploy installs into them; releases: the app root is empty and vdeploy makes the first release with `python -m venv` (ensurepip included), then installs.',
    '- After every run, every in-place venv and every app root\'s live release (through `current`, which must be a symlink `releases/<id>`) must hold exactly the expected versions, or the benchmark fails.',
    '',
  ];
}

/** "3 runs" or "3 runs (scale rows: 1 run)". */
function describeRuns(rows: readonly RowResult[], otherMainRuns: readonly number[] = []): string {
  const counts = (group: string) => [
    ...new Set([...rows.filter((r) => r.group === group).map((r) => r.runs.vdeploy.length), ...(group === 'main' ? otherMainRuns : [])]),
  ];
  const words = (ns: number[]) => `${ns.join('/')} run${ns.length === 1 && ns[0] === 1 ? '' : 's'}`;
  const main = counts('main');
  const scale = counts('scale');
  if (main.length === 0) return words(scale);
  return scale.length === 0 || words(scale) === words(main) ? words(main) : `${words(main)} (scale rows: ${words(scale)})`;
}

function formatMiB(kib: number): string {
  return `${(kib / 1024).toFixed(0)} MiB`;
}
