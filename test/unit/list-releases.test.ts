/** `vdeploy releases`' pure parts: rows from the probed releases and the history, and the diff between installed sets. */
import { expect } from 'chai';
import type { ReleasesFacts } from '../../src/facts/types.js';
import { parseHistory } from '../../src/history/history-entry.js';
import { diffInstalled, releaseRows } from '../../src/status/list-releases.js';

const A = '20261203T100000Z-0001';
const B = '20261203T110000Z-0002';
const C = '20261203T120000Z-0003';

/** History lines as the apply writes them (only what releaseRows reads). */
function line(action: string, outcome: string, release: string | undefined, previousRelease: string | null, extra: Record<string, unknown> = {}) {
  return { action, outcome, time: '2026-12-03T10:00:00.000Z', localUser: 'ana', localHost: 'laptop', ...(release ? { release } : {}), previousRelease, ...extra };
}

describe('releases listing: diffInstalled', () => {
  it('installs, removals, upgrades and downgrades by PEP 440, sorted by key; the same version spelled otherwise is no change', () => {
    expect(diffInstalled({ app: '1.0', gone: '2', lib: '2.0', pip: '23' }, { app: '1.0.0', lib: '1.9', new: '1', pip: '24' })).to.deep.equal([
      { kind: 'remove', key: 'gone', name: 'gone', from: '2' },
      { kind: 'downgrade', key: 'lib', name: 'lib', from: '2.0', to: '1.9' },
      { kind: 'install', key: 'new', name: 'new', to: '1' },
      { kind: 'upgrade', key: 'pip', name: 'pip', from: '23', to: '24' },
    ]);
    expect(diffInstalled({}, {})).to.deep.equal([]);
  });
});

describe('releases listing: releaseRows', () => {
  const facts: ReleasesFacts = {
    live: B,
    list: [
      { id: A, bytes: 100, ownBytes: 40, installed: { app: '1.0' } },
      { id: B, bytes: 110, ownBytes: 50, installed: { app: '1.1' } },
      { id: C, bytes: 120, ownBytes: 60, installed: { app: '1.2', extra: '1' } },
    ],
  };

  it('newest first, each against the release before it; live, the rollback target, and the entry that built it', () => {
    // #1 built A, #2 built B, #3 built C, #4 rolled back (switched) to B: a later rollback undoes #2, back to A.
    const history = parseHistory([
      line('deploy', 'deployed', A, null),
      line('deploy', 'deployed', B, A),
      line('deploy', 'deployed', C, B),
      line('rollback', 'deployed', B, C, { undoes: 3 }),
    ]);
    const rows = releaseRows(facts, history);
    expect(rows.map((r) => [r.id, r.live, r.rollbackTarget, r.madeBy?.number, r.madeBy?.action])).to.deep.equal([
      [C, false, false, 3, 'deploy'],
      [B, true, false, 2, 'deploy'],
      [A, false, true, 1, 'deploy'],
    ]);
    expect(rows[0]!.changes).to.deep.equal([
      { kind: 'upgrade', key: 'app', name: 'app', from: '1.1', to: '1.2' },
      { kind: 'install', key: 'extra', name: 'extra', to: '1' },
    ]);
    expect(rows[2]!.changes).to.equal(null);
    expect(rows[1]).to.include({ bytes: 110, ownBytes: 50 });
  });

  it('a release the history does not name has no madeBy; a release rebuilt by a rollback is made by that rollback', () => {
    const history = parseHistory([line('deploy', 'failed', A, null), line('rollback', 'deployed', B, null, { restores: 1 })]);
    const rows = releaseRows({ live: B, list: [{ id: B, installed: {} }, { id: C, installed: {} }] }, history);
    expect(rows.map((r) => [r.id, r.madeBy?.number ?? null, r.madeBy?.action ?? null])).to.deep.equal([
      [C, null, null],
      [B, 2, 'rollback'],
    ]);
  });

  it('the live release is never marked as the rollback target; no releases: no rows', () => {
    const history = parseHistory([line('deploy', 'deployed', A, null), line('deploy', 'deployed', B, A), line('rollback', 'deployed', A, B, { undoes: 2 })]);
    // A rollback of #1 would go to nothing (#1 had no previous release): no target at all.
    expect(releaseRows({ live: A, list: [{ id: A, installed: {} }, { id: B, installed: {} }] }, history).map((r) => r.rollbackTarget)).to.deep.equal([false, false]);
    expect(releaseRows({ live: null, list: [] }, [])).to.deep.equal([]);
  });
});
