/** The ship rows (issue 16) in the results: their table, the split of each deploy, and the targets. */
import { formatProfile, median, medianProfile, seconds } from './profile.js';
import type { Target } from './report.js';
import type { ShipRow, ShipSplit } from './ship.js';

/** Issue 16's targets, × the floor, on 4 × 4. */
export const SHIP_TARGETS: Record<ShipRow['scenario'], number> = { 'ship-fresh': 0.25, 'ship-upgrade': 0.5, 'ship-noop': 1.2 };

export interface ShipSummary {
  scenario: string;
  size: string;
  ship: number;
  floor: number;
  bytes: { wheels: number; artifacts: number };
  split: ShipSplit;
  rssKiB: number;
  cpuMs: number;
  load: number;
}

export function summarizeShipRow(row: ShipRow): ShipSummary {
  const fields = Object.keys(row.split[0] ?? {}) as Array<keyof ShipSplit>;
  return {
    scenario: row.scenario,
    size: `${row.hosts}×${row.venvs}`,
    ship: median(row.runs.ship),
    floor: median(row.runs.floor),
    bytes: { wheels: median(row.bytesSent.map((b) => b.wheels)), artifacts: median(row.bytesSent.map((b) => b.artifacts)) },
    split: Object.fromEntries(fields.map((f) => [f, median(row.split.map((s) => s[f]))])) as unknown as ShipSplit,
    rssKiB: Math.max(...row.rssKiB),
    cpuMs: median(row.cpuMs),
    load: median(row.load),
  };
}

export function renderShipTable(rows: readonly ShipRow[]): string[] {
  const lines = [
    '| scenario | H×V | vdeploy, shipping | floor | vdeploy/floor | target | sent: artifacts | sent: wheels | built, received (full + delta) | vdeploy peak RSS | vdeploy CPU | load (1 min) |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|',
  ];
  for (const row of rows) {
    const s = summarizeShipRow(row);
    const roles = row.roles.at(-1);
    const fellBack = roles ? Object.keys(roles.fellBack).length : 0;
    const who = roles ? `${roles.builders} built, ${roles.full} + ${roles.delta}${fellBack ? `, ${fellBack} fell back` : ''}${roles.unshipped ? `, ${roles.unshipped} pip without shipping` : ''}` : '–';
    lines.push(
      `| ${s.scenario.replace(/^ship-/, '')} | ${s.size} | ${seconds(s.ship)} | ${seconds(s.floor)} | ${(s.ship / s.floor).toFixed(2)} | ≤ ${SHIP_TARGETS[row.scenario]} | ${formatBytes(s.bytes.artifacts)} | ${formatBytes(s.bytes.wheels)} | ${who} | ${(s.rssKiB / 1024).toFixed(0)} MiB | ${seconds(s.cpuMs)} | ${s.load.toFixed(1)} |`,
    );
  }
  return lines;
}

/** "build 9.10 s · pack 1.20 s · fetch … · switch 0.01 s (median of 15 receiving venvs)". */
export function formatSplit(split: ShipSplit): string {
  const parts: Array<[string, number]> = [
    ['build', split.build],
    ['pack', split.pack],
    ['transfer: fetch', split.fetch],
    ['send', split.send],
    ['unpack', split.unpack],
    ['verify', split.verify],
    ['relocate', split.relocate],
    ['switch', split.switch],
  ];
  return `${parts.map(([name, ms]) => `${name} ${seconds(ms)}`).join(' · ')} (receivers: the median of ${split.receivers} receiving venvs)`;
}

export function checkShipTargets(rows: readonly ShipRow[]): Target[] {
  return (Object.keys(SHIP_TARGETS) as Array<ShipRow['scenario']>).map((scenario) => {
    const max = SHIP_TARGETS[scenario];
    const row = rows.find((r) => r.scenario === scenario && r.hosts === 4 && r.venvs === 4);
    const s = row && summarizeShipRow(row);
    return {
      text: `${scenario.replace(/^ship-/, 'shipping: ')} 4×4: vdeploy ≤ ${max} × the floor`,
      ...(s ? { actual: `${seconds(s.ship)} vs ${seconds(s.floor)}: ${(s.ship / s.floor).toFixed(2)} ×`, met: s.ship <= max * s.floor } : {}),
    };
  });
}

export function renderShipSection(rows: readonly ShipRow[]): string[] {
  return [
    '## Build once, ship (issue 16)',
    '',
    'App roots in the releases layout deployed by `vdeploy deploy --yes --json` with shipping on (the default): each group of venvs with the same interpreter and desired set is built once with pip on one member (the builder), packed, fetched to the controller\'s artifact cache and sent to every other member\'s host, which unpacks it (every file checked against the manifest), relocates it and switches `current`. The floor is the same as the main rows\' (the pip installs run directly on as many in-place venvs of the same hosts, no SSH; a no-op: `ssh host true`). "Sent" is what the controller wrote to the hosts (the report\'s `bytesSent`).',
    '',
    ...renderShipTable(rows),
    '',
    ...rows.flatMap((r) => {
      const s = summarizeShipRow(r);
      return [`- ${r.scenario} ${s.size}: ${formatSplit(s.split)}; stages: ${formatProfile(medianProfile(r.profiles))}`];
    }),
    '',
    '- **fresh**: the app roots are empty and the controller\'s local artifact cache too (nothing was ever built: the group\'s one pip build is part of the run); **upgrade** (app 1.0 → 1.1): the roots and the local artifact cache as deploying 1.0 with shipping left them (the builder clones its live release and installs the app; receivers whose live release came from the same artifact get a delta); **no-op**: everything at 1.1.',
    '- Every host has its own directory here, so every app root\'s path differs between hosts and every received release is relocated (a real fleet uses one path everywhere: no relocation).',
    '',
  ];
}

function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '–';
  if (n < 1024) return `${n} B`;
  if (n < 2 ** 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 2 ** 20).toFixed(1)} MiB`;
}
