/** What the CLI says about the releases layout (issue 15): plan lines, summary, history, status, `vdeploy releases`. */
import { expect } from 'chai';
import { stripVTControlCharacters } from 'node:util';
import type { Report, VenvReport } from '../../src/deploy/apply-plan.js';
import type { ReleasePlan } from '../../src/deploy/plan.js';
import { describeChanges, renderReleases } from '../../src/cli/commands/releases.js';
import { renderHistories, renderStatus } from '../../src/cli/commands/status.js';
import { releaseNote, releaseSize, renderSummary } from '../../src/cli/render-plan.js';
import type { HistoryEntry } from '../../src/history/history-entry.js';
import type { FleetStatus } from '../../src/status/fleet-status.js';
import type { ReleaseRow } from '../../src/status/list-releases.js';

const plain = (lines: string[]) => lines.map((l) => stripVTControlCharacters(l));
const A = '20261203T100000Z-0001';
const B = '20261203T110000Z-0002';
const C = '20261203T120000Z-0003';

describe('releases: the plan line of each releases venv', () => {
  const plan = (p: Partial<ReleasePlan>): ReleasePlan => ({ keep: 5, live: null, build: 'fresh', onHost: [], ...p });
  const cases: Array<[string, ReleasePlan, number, string]> = [
    ['first deploy', plan({}), 1, 'first release (new venv)'],
    ['clone', plan({ live: A, build: 'clone', onHost: [A] }), 2, `new release: clone of ${A} + 2 changes`],
    ['one change', plan({ live: A, build: 'clone', onHost: [A] }), 1, `new release: clone of ${A} + 1 change`],
    ['switch', plan({ live: B, build: 'switch', switchTo: A, onHost: [A, B] }), 1, `rollback: switch current to ${A} (no pip)`],
    ['cleaned up', plan({ live: C, build: 'clone', cleanedUp: A, onHost: [B, C] }), 1, `release ${A} was cleaned up: rebuilding it from the release log (a clone of ${C} + 1 change)`],
    ['releases but none live', plan({ onHost: [A] }), 1, 'new release (new venv: no release is live)'],
  ];
  for (const [name, r, changes, line] of cases) {
    it(name, () => expect(releaseNote(r, changes)).to.equal(line));
  }
});

describe('releases: the summary', () => {
  const venv = (r: Partial<VenvReport>): VenvReport => ({ id: 'u@h:/srv/app', host: 'h', user: 'u', path: '/srv/app', outcome: 'deployed', changes: [], created: false, ms: 1000, steps: [], ...r });
  const report = (...venvs: VenvReport[]): Report => ({ venvs, hosts: [], ok: true, interrupted: false, bytesSent: { wheels: 0, artifacts: 0 } });

  it('names the release that went live with its size, and what cleanup removed and freed', () => {
    const lines = plain(renderSummary(report(venv({ release: { id: C, previous: B, live: C, removed: [{ id: A, bytes: 2048, why: 'beyond keep' }], freedBytes: 3 * 1024 * 1024, bytes: 25 * 1024 * 1024, ownBytes: 512 * 1024 } }))));
    expect(lines).to.include(`  u@h:/srv/app: release ${C} is live (25.0 MiB, 512.0 KiB its own)`);
    expect(lines).to.include(`  u@h:/srv/app: removed 1 release: ${A} (beyond keep, 2.0 KiB); freed 3.0 MiB`);
  });

  it('a first release (nothing shared) shows one size; a migrate-only apply (live unchanged) says nothing', () => {
    const first = plain(renderSummary(report(venv({ release: { id: A, previous: null, live: A, removed: [], bytes: 1024, ownBytes: 1024 } }))));
    expect(first).to.include(`  u@h:/srv/app: release ${A} is live (1.0 KiB)`);
    const same = plain(renderSummary(report(venv({ outcome: 'migrated', release: { id: A, previous: A, live: A, removed: [] } }))));
    expect(same.join('\n')).not.to.include('is live');
  });

  it('a failure after the switch says "switched current back to <id>", not "rolled back to the previous set"', () => {
    const failed = venv({
      outcome: 'restored', message: 'u@h:/srv/app: healthcheck failed', rolledBack: { reason: 'healthcheck failed', ok: true },
      release: { id: C, previous: B, live: B, removed: [{ id: C, bytes: 100, why: 'failed' }], switchedBack: { ok: true } },
    });
    const lines = plain(renderSummary({ ...report(failed), ok: false }));
    expect(lines).to.include(`  ↩ switched current back to ${B} (healthcheck failed)`);
    expect(lines).to.include(`  u@h:/srv/app: removed 1 release: ${C} (failed, 100 B)`);
    expect(lines.join('\n')).not.to.include('rolled back to the previous set');
    const first = plain(renderSummary(report(venv({ outcome: 'restored', rolledBack: { reason: 'reload failed', ok: true }, release: { id: A, previous: null, live: null, removed: [], switchedBack: { ok: true } } }))));
    expect(first).to.include('  ↩ removed current: the first release failed, so no release is live (reload failed)');
  });

  it('an in-place venv still says "rolled back to the previous set"', () => {
    const lines = plain(renderSummary(report(venv({ outcome: 'restored', rolledBack: { reason: 'migrate failed', ok: true } }))));
    expect(lines).to.include('  ↩ rolled back to the previous set (migrate failed)');
  });

  it('sizes: one figure when all of it is its own, else both', () => {
    expect(releaseSize(undefined, undefined)).to.equal('');
    expect(releaseSize(2048, 2048)).to.equal('2.0 KiB');
    expect(releaseSize(3 * 1024 * 1024 * 1024, 10)).to.equal('3.0 GiB, 10 B its own');
  });
});

describe('releases: history and status', () => {
  const entry = (number: number, release: string | undefined, extra: Partial<HistoryEntry> = {}): HistoryEntry => ({
    number, action: 'deploy', time: `2026-12-03T1${number}:00:00.000Z`, localUser: 'ana', localHost: 'laptop', outcome: 'deployed', failedStep: null,
    before: {}, after: {}, packages: [], changes: [{ kind: 'install', key: 'app', name: 'app', to: `1.${number}` }], ...(release ? { release } : {}), ...extra,
  });

  it('history: the live release in the venv line, each entry\'s release, "(live)" on the entries naming it, a switch back', () => {
    const lines = plain(renderHistories([
      { id: 'u@h:/srv/app', host: 'h', path: '/srv/app', ok: true, live: B, entries: [entry(1, A), entry(2, B), entry(3, C, { outcome: 'failed', failedStep: 'healthcheck', switchedBack: true, previousRelease: B })] },
      { id: 'u@h:/srv/venv', host: 'h', path: '/srv/venv', ok: true, entries: [entry(1, undefined)] },
    ]));
    expect(lines[0]).to.equal(`u@h:/srv/app  live release: ${B}`);
    expect(lines[1]).to.match(new RegExp(`^  #3 .* failed at healthcheck  ${C}\\s+\\+app 1\\.3; switched back to ${B}$`));
    expect(lines[2]).to.match(new RegExp(`^  #2 .* deployed\\s+${B} \\(live\\)\\s+\\+app 1\\.2$`));
    expect(lines[3]).to.match(new RegExp(`^  #1 .* deployed\\s+${A}\\s+\\+app 1\\.1$`));
    // An in-place venv: no release column, no live line.
    expect(lines[4]).to.equal('u@h:/srv/venv');
    expect(lines[5]).to.match(/^  #1  2026-12-03 11:00Z  ana@laptop  deployed  \+app 1\.1$/);
  });

  it('history: an app root with no live release yet says so', () => {
    const lines = plain(renderHistories([{ id: 'u@h:/srv/app', host: 'h', path: '/srv/app', ok: true, live: null, entries: [] }]));
    expect(lines).to.deep.equal(['u@h:/srv/app  live release: none yet', '  no deploys recorded']);
  });

  it('status: a LIVE RELEASE column only when a venv uses releases', () => {
    const last = { number: 2, action: 'deploy', time: '2026-12-03T11:00:00.000Z', localUser: 'ana', localHost: 'laptop', outcome: 'deployed', release: B };
    const status: FleetStatus = {
      venvs: [
        { id: 'u@h:/srv/app', host: 'h', path: '/srv/app', state: 'in-sync', differing: 0, live: B, last },
        { id: 'u@h:/srv/new', host: 'h', path: '/srv/new', state: 'drift', differing: 1, live: null },
        { id: 'u@h:/srv/venv', host: 'h', path: '/srv/venv', state: 'in-sync', differing: 0 },
      ],
      matrix: [],
      hosts: [],
      recovered: [],
    };
    const lines = plain(renderStatus(status, false, 120));
    expect(lines[0]).to.match(/^VENV\s+STATE\s+LIVE RELEASE\s+LAST DEPLOY$/);
    expect(lines[1]).to.match(new RegExp(`^u@h:/srv/app\\s+in sync\\s+${B}\\s+2026-12-03 11:00Z ana deployed$`));
    expect(lines[2]).to.match(/^u@h:\/srv\/new\s+drift \(1\)\s+none yet\s+never deployed$/);
    expect(lines[3]).to.match(/^u@h:\/srv\/venv\s+in sync\s+in place\s+never deployed$/);
    const inPlace = plain(renderStatus({ ...status, venvs: [status.venvs[2]!] }, false, 120));
    expect(inPlace[0]).to.match(/^VENV\s+STATE\s+LAST DEPLOY$/);
  });
});

describe('releases: `vdeploy releases` rendering', () => {
  const row = (r: Partial<ReleaseRow>): ReleaseRow => ({ id: A, live: false, rollbackTarget: false, installed: { app: '1.0', pip: '23' }, changes: null, ...r });

  it('changes from the release before: installs, upgrades, removals; the oldest counts its packages; many are elided', () => {
    expect(stripVTControlCharacters(describeChanges(row({})))).to.equal('oldest here: 2 packages');
    expect(stripVTControlCharacters(describeChanges(row({ changes: [] })))).to.equal('the same packages');
    const changes = row({ changes: [{ kind: 'upgrade', key: 'app', name: 'app', from: '1.0', to: '1.1' }, { kind: 'install', key: 'b', name: 'b', to: '2' }, { kind: 'remove', key: 'c', name: 'c', from: '3' }] });
    expect(describeChanges(changes)).to.equal('app 1.0→1.1, +b 2, -c 3');
    const many = row({ changes: 'abcdefg'.split('').map((k) => ({ kind: 'install' as const, key: k, name: k, to: '1' })) });
    expect(describeChanges(many)).to.equal('+a 1, +b 1, +c 1, +d 1, +e 1, … 2 more');
  });

  it('a venv per block, newest first, live and rollback target marked; unreachable hosts and in-place venvs noted', () => {
    const lines = plain(renderReleases({
      venvs: [
        {
          id: 'u@h:/srv/app', host: 'h', path: '/srv/app', ok: true, keep: 5, live: B,
          releases: [
            row({ id: B, live: true, bytes: 2 * 1024 * 1024, ownBytes: 1024, installed: { app: '1.1' }, changes: [{ kind: 'upgrade', key: 'app', name: 'app', from: '1.0', to: '1.1' }], madeBy: { number: 2, action: 'deploy', time: '2026-12-03T11:00:00.000Z', localUser: 'ana', localHost: 'laptop' } }),
            row({ id: A, rollbackTarget: true, bytes: 2 * 1024 * 1024, ownBytes: 2 * 1024 * 1024 }),
          ],
        },
        { id: 'u@g:/srv/app', host: 'g', path: '/srv/app', ok: false, message: 'g: connection refused' },
        { id: 'u@k:/srv/app', host: 'k', path: '/srv/app', ok: true, keep: 3, live: null, releases: [] },
      ],
      inPlace: ['u@h:/srv/venv'],
    }));
    expect(lines[0]).to.equal(`u@h:/srv/app  keep 5; 2 releases on the host; live: ${B}`);
    expect(lines[1]).to.match(/^  RELEASE\s+SIZE\s+MADE BY\s+CHANGES \(from the release before\)$/);
    expect(lines[2]).to.match(new RegExp(`^  ${B}  live\\s+2\\.0 MiB, 1\\.0 KiB its own  #2 2026-12-03 11:00Z ana@laptop  app 1\\.0→1\\.1$`));
    expect(lines[3]).to.match(new RegExp(`^  ${A}  rollback target  2\\.0 MiB\\s+not in the history\\s+oldest here: 2 packages$`));
    expect(lines.slice(4)).to.deep.equal([
      'u@g:/srv/app',
      '  unreachable: g: connection refused',
      'u@k:/srv/app  keep 3; 0 releases on the host; live: none yet',
      '  no releases yet: the next deploy creates the first',
      'u@h:/srv/venv: an in-place venv (no `releases` in the deployfile): no releases',
    ]);
  });
});
