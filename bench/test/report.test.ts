// The benchmark's pure parts: reading vdeploy's event lines, medians, the table and targets, flags.
import { expect } from 'chai';
import { parseFreeze, pinnedRequirements } from '../contenders.js';
import { parseBenchOptions } from '../options.js';
import type { LayoutRow } from '../layouts.js';
import { median, parseDuration, profileRun, venvApplyTimes } from '../profile.js';
import { checkLayoutTargets, checkTargets, renderLayoutTable, renderMarkdown, renderTable } from '../report.js';
import type { RowResult } from '../scenarios.js';

function row(scenario: RowResult['scenario'], group: RowResult['group'], hosts: number, venvs: number, t: { vdeploy: number[]; baseline: number[]; floor: number[] }, rssKiB = [100 * 1024]): RowResult {
  return { scenario, group, hosts, venvs, runs: t, rssKiB, cpuMs: t.vdeploy.map((ms) => ms / 2), profiles: [profileRun([], t.vdeploy[0]!)], load: [1, 2], resetMs: 0, measuredAt: '2026-01-01T00:00:00Z', session: '2026-01-01T00:00:00Z' };
}

describe('bench profile', () => {
  it('reads vdeploy\'s durations', () => {
    expect(parseDuration('45ms')).to.equal(45);
    expect(parseDuration('1.2s')).to.equal(1200);
  });

  it('turns the event timeline of a deploy into stages', () => {
    const lines = [
      { ms: 600, text: 'host1: connected (100ms)' },
      { ms: 650, text: 'host2: connected (120ms)' },
      { ms: 900, text: 'host1: probed (300ms)' },
      { ms: 1000, text: 'host2: probed (0.4s)' },
      { ms: 1200, text: 'host1: pushing 5 wheels' },
      { ms: 1700, text: 'host1: pushed 5 wheels, 8.1 MiB (0.5s)' },
      { ms: 5000, text: 'host1:/srv/venv1: install ok (3.1s)' },
      { ms: 5100, text: 'host1:/srv/venv1: verify ok (20ms)' },
      { ms: 5200, text: 'host1:/srv/venv1: deployed (3.5s)' },
      { ms: 9000, text: 'host1:/srv/venv 2: install ok (3.3s)' },
      { ms: 9100, text: 'host1:/srv/venv 2: deployed (3.9s)' },
      { ms: 9150, text: '  ↑ shopapp 1.0 → 1.1' },
    ];
    const p = profileRun(lines, 9300);
    expect(p.startup).to.equal(500);
    expect(p.connect).to.equal(120);
    expect(p.probe).to.equal(400);
    expect(p.plan).to.equal(200);
    expect(p.push).to.equal(500);
    expect(p.apply).to.equal(9100 - 1200);
    expect(p.steps).to.deep.equal({ install: 6400, verify: 20 });
    expect(p.exit).to.equal(200);
  });

  it('a no-op has no apply stage', () => {
    const p = profileRun([{ ms: 700, text: 'host1: connected (100ms)' }, { ms: 1000, text: 'host1: probed (300ms)' }], 1400);
    expect(p).to.include({ startup: 600, plan: 0, apply: 0, push: 0, exit: 400 });
  });

  it('reads each venv\'s apply time, deploys and rollbacks', () => {
    const lines = [
      { ms: 900, text: 'host1: probed (300ms)' },
      { ms: 1000, text: 'root@host1:/srv/app1: switch ok (0ms)' },
      { ms: 1100, text: 'root@host1:/srv/app1: rolled back (0.3s)' },
      { ms: 5100, text: 'root@host1:/srv/venv1: deployed (3.9s)' },
    ];
    expect(venvApplyTimes(lines)).to.deep.equal([300, 3900]);
    expect(profileRun(lines, 1200).apply).to.equal(5100 - 800);
  });

  it('takes medians', () => {
    expect(median([3, 1, 2])).to.equal(2);
    expect(median([4, 1, 2, 3])).to.equal(2.5);
  });
});

describe('bench baseline helpers', () => {
  it('reads pip freeze output by normalized name', () => {
    const have = parseFreeze('asgiref==3.12.1\nDjango==5.2.17\nshop_app==1.0\n-e git+https://x#egg=y\n');
    expect([...have]).to.deep.equal([['asgiref', '3.12.1'], ['django', '5.2.17'], ['shop-app', '1.0']]);
  });

  it('pins requirements with hashes as vdeploy does', () => {
    expect(pinnedRequirements([{ name: 'django', key: 'django', version: '5.2.17', file: '/w/django.whl', sha256: 'ab' }])).to.equal('django==5.2.17 --hash=sha256:ab\n');
  });
});

describe('bench report', () => {
  const rows = [
    row('fresh', 'main', 4, 4, { vdeploy: [30_000, 31_000, 29_000], baseline: [90_000, 91_000, 92_000], floor: [27_000, 28_000, 26_000] }),
    row('noop', 'main', 4, 4, { vdeploy: [1500], baseline: [10_000], floor: [500] }),
    row('upgrade', 'main', 4, 4, { vdeploy: [8000], baseline: [30_000], floor: [6000] }),
    row('noop', 'scale', 1, 2, { vdeploy: [1000], baseline: [1400], floor: [300] }),
    row('noop', 'scale', 32, 2, { vdeploy: [3000], baseline: [45_000], floor: [900] }, [150 * 1024, 210 * 1024]),
  ];

  it('prints medians and ratios in a Markdown table', () => {
    const table = renderTable(rows);
    expect(table[0]).to.match(/^\| scenario \| H×V \| vdeploy \| baseline \| floor \| vdeploy\/baseline \| vdeploy\/floor \| vdeploy peak RSS \| vdeploy CPU \|/);
    expect(table[2]).to.equal('| fresh | 4×4 | 30.0 s | 91.0 s | 27.0 s | 0.33 (3.0× faster) | 1.11 | 100 MiB | 15.0 s | 1.5 |');
    expect(table[6]).to.match(/^\| scale: noop \| 32×2 \| .* \| 210 MiB \|/);
  });

  it('checks each target and says which were missed', () => {
    const targets = checkTargets(rows);
    const byText = (t: string) => targets.find((x) => x.text.startsWith(t))!;
    expect(byText('noop 4×4: vdeploy ≤ 2 × the floor').met).to.equal(false); // 1.5 s vs 0.5 s
    expect(byText('noop 4×4: vdeploy ≥ 5 × faster').met).to.equal(true);
    expect(byText('fresh 4×4: vdeploy ≤ 1.3').met).to.equal(true);
    expect(byText('upgrade 4×4: vdeploy ≥ 3').met).to.equal(true);
    expect(byText('scale: no-op at 32 hosts').met).to.equal(true);
    expect(byText('scale: vdeploy peak RSS').met).to.equal(false); // 210 MiB > 200 MB
    expect(checkTargets(rows.slice(0, 1)).find((t) => t.text.startsWith('scale: no-op'))!.met).to.equal(undefined);
  });

  it('shows a scale row without baseline runs as "–", and checks the 128-host targets', () => {
    const big = [
      row('noop', 'scale', 128, 2, { vdeploy: [2500], baseline: [], floor: [9000] }, [240 * 1024]),
      row('upgrade', 'scale', 128, 2, { vdeploy: [90_000], baseline: [], floor: [80_000] }, [260 * 1024]),
    ];
    expect(renderTable(big)[2]).to.equal('| scale: noop | 128×2 | 2.50 s | – | 9.00 s | – | 0.28 | 240 MiB | 1.25 s | 1.5 |');
    const targets = checkTargets(big);
    expect(targets.find((t) => t.text === 'scale: no-op at 128 hosts ≤ 3 s')).to.include({ met: true });
    expect(targets.find((t) => t.text === 'scale: vdeploy peak RSS ≤ 250 MB at 128 hosts')).to.include({ met: false }); // 260 MiB
    const upgrade = targets.find((t) => t.text.startsWith('scale: upgrade at 128 hosts'))!;
    expect(upgrade.met).to.equal(undefined);
    expect(upgrade.actual).to.equal('90.0 s vs 80.0 s: 1.13 ×');
  });

  it('renders the whole results page', () => {
    const md = renderMarkdown({
      generatedAt: '2026-01-01T00:00:00Z',
      sessions: [{ started: '2026-01-01T00:00:00Z', command: 'npm run bench', loadAverage: [1, 1, 1] }],
      machine: { cpu: 'CPU', nproc: 2, memoryBytes: 8 * 2 ** 30, os: 'Linux', node: 'v20', python: 'Python 3.11.2', ssh: 'OpenSSH_9.2p1' },
      rssMethod: 'gnu-time',
      startup: { version: 300, venvs: 450 },
      rows,
    });
    expect(md).to.include('Measured with `npm run bench` on 2026-01-01 00:00 UTC.');
    expect(md).to.include('`nproc` 2');
    expect(md).to.include('median of 3/1 runs (scale rows: 1 run)');
    expect(md).to.include('**missed**: noop 4×4: vdeploy ≤ 2 × the floor');
    expect(md).to.include('(`vdeploy --version`): 0.30 s');
  });
});

describe('bench layout rows (in-place vs releases)', () => {
  const layoutRow = (scenario: LayoutRow['scenario'], inPlace: number[], releases: number[], venvMs: { inPlace: number[]; releases: number[] }): LayoutRow => ({
    scenario, hosts: 4, venvs: 4,
    runs: { inPlace, releases },
    venvMs,
    profiles: {
      inPlace: [profileRun([], inPlace[0]!)],
      releases: [profileRun([{ ms: 1, text: 'h:/srv/app1: clone ok (90ms)' }, { ms: 2, text: 'h:/srv/app1: relocate ok (2.4s)' }], releases[0]!)],
    },
    rssKiB: { inPlace: [1], releases: [1] },
    load: [2, 2], resetMs: 0, measuredAt: '2026-01-01T00:00:00Z', session: '2026-01-01T00:00:00Z',
  });
  const rows = [
    layoutRow('layout-upgrade', [6000, 6200, 5800], [8000, 9000, 8500], { inPlace: [1000], releases: [2000] }),
    layoutRow('layout-rollback', [5000], [1500], { inPlace: [1200], releases: [250, 300, 350] }),
  ];

  it('prints both layouts, their ratio and the per-venv apply time', () => {
    const table = renderLayoutTable(rows);
    expect(table[2]).to.equal('| upgrade | 4×4 | 6.00 s | 8.50 s | 1.42 | 1.00 s | 2.00 s | clone 0.09 s, relocate 2.40 s | 2.0 |');
    expect(table[3]).to.match(/^\| rollback \| 4×4 \| 5\.00 s \| 1\.50 s \| 0\.30 \| 1\.20 s \| 0\.30 s \| /);
  });

  it('checks issue 15\'s targets: upgrade ≤ 1.5 × in place, rollback by switch < 1 s per venv', () => {
    const [upgrade, rollback] = checkLayoutTargets(rows);
    expect(upgrade).to.include({ met: true, actual: '4×4: 8.50 s vs 6.00 s: 1.42 ×' });
    expect(rollback).to.include({ met: true });
    expect(checkLayoutTargets([layoutRow('layout-upgrade', [6000], [9100], { inPlace: [1], releases: [1] })])[0]!.met).to.equal(false);
    expect(checkLayoutTargets([])[1]!.met).to.equal(undefined);
  });

  it('adds its section to the results page', () => {
    const md = renderMarkdown({
      generatedAt: '2026-01-01T00:00:00Z',
      sessions: [{ started: '2026-01-01T00:00:00Z', command: 'npm run bench -- --scenarios layouts', loadAverage: [1, 1, 1] }],
      machine: { cpu: 'CPU', nproc: 2, memoryBytes: 8 * 2 ** 30, os: 'Linux', node: 'v20', python: 'Python 3.11.2', ssh: 'OpenSSH_9.2p1' },
      rssMethod: 'gnu-time',
      rows: [],
      layoutRows: rows,
    });
    expect(md).to.include('Measured with `npm run bench -- --scenarios layouts` on 2026-01-01 00:00 UTC.');
    expect(md).to.include('## Releases layout vs in-place (issue 15)');
    expect(md).to.include('met: releases: a rollback by switch takes < 1 s of host time per venv — 4×4: 0.30 s per venv (in place, by pip: 1.20 s)');
    expect(md).to.include('- layout-upgrade 4×4, releases:');
  });
});

describe('bench options', () => {
  it('defaults to the full benchmark written to bench/', () => {
    expect(parseBenchOptions([], '/repo/bench')).to.deep.include({ hosts: 4, venvs: 4, runs: 3, scale: true, scaleHosts: [1, 4, 16, 32, 64, 128], scaleVenvs: 2, scaleRuns: 1, scaleBaselineMax: 32, shipHosts: 4, out: '/repo/bench' });
  });

  it('--smoke is 1 × 1, one run, no scale, no ship rows, no files', () => {
    expect(parseBenchOptions(['--smoke'], '/repo/bench')).to.deep.include({
      hosts: 1, venvs: 1, runs: 1, scale: false, scenarios: ['fresh', 'noop', 'upgrade'], layouts: ['layout-upgrade', 'layout-rollback'], ship: [], out: undefined,
    });
    // A ship row in a smoke run: 2 hosts × 1 venv, so that one host receives over SSH.
    expect(parseBenchOptions(['--smoke', '--scenarios', 'ship-upgrade'], '/repo/bench')).to.deep.include({ ship: ['ship-upgrade'], shipHosts: 2, venvs: 1 });
  });

  it('"ship" names the three build once, ship rows', () => {
    expect(parseBenchOptions(['--scenarios', 'ship'], '/b')).to.deep.include({ scenarios: [], layouts: [], ship: ['ship-fresh', 'ship-upgrade', 'ship-noop'], scale: false });
  });

  it('"layouts" names the three in-place vs releases rows', () => {
    expect(parseBenchOptions(['--scenarios', 'layouts', '--merge'], '/b')).to.deep.include({ scenarios: [], layouts: ['layout-upgrade', 'layout-rollback', 'layout-fresh'], scale: false, merge: true });
    expect(parseBenchOptions([], '/b')).to.deep.include({ scenarios: ['fresh', 'noop', 'upgrade'], layouts: ['layout-upgrade', 'layout-rollback', 'layout-fresh'], scale: true });
  });

  it('refuses bad values with one line naming the flag', () => {
    expect(() => parseBenchOptions(['--runs', '0'], '/b')).to.throw('--runs must be a whole number of at least 1, got "0"');
    expect(() => parseBenchOptions(['--scenarios', 'fresh,warp'], '/b')).to.throw('--scenarios: unknown scenario "warp"');
    expect(() => parseBenchOptions(['--bogus'], '/b')).to.throw(/bogus/);
  });
});
