// The history rules a deploy plan reads after a rollback (issue 14): what the newest rollback took off.
import { expect } from 'chai';
import { chooseRollbackTarget, parseHistory, rolledBackVersions } from '../../src/history/history-entry.js';

const entry = (r: Record<string, unknown>) => ({ outcome: 'deployed', before: {}, after: {}, packages: [], ...r });

describe('rolledBackVersions', () => {
  it('names what the newest successful rollback downgraded or removed', () => {
    const h = parseHistory([
      entry({ action: 'deploy', changes: [{ kind: 'upgrade', key: 'shopapp', name: 'shopapp', from: '1.0', to: '1.1' }] }),
      entry({
        action: 'rollback',
        undoes: 1,
        changes: [
          { kind: 'downgrade', key: 'shopapp', name: 'shopapp', from: '1.1', to: '1.0' },
          { kind: 'remove', key: 'extra', name: 'extra', from: '2.0' },
          { kind: 'upgrade', key: 'other', name: 'other', from: '1', to: '2' },
        ],
      }),
      // --migrate always on the rolled-back venv changes no packages: the rollback is still the newest.
      entry({ action: 'migrate', changes: [] }),
      entry({ action: 'deploy', outcome: 'failed', changes: [] }),
    ]);
    expect(rolledBackVersions(h)).to.deep.equal({ entry: 2, versions: { shopapp: '1.1', extra: '2.0' } });
  });

  it('nothing once a later deploy (or an automatic rollback) succeeded, or when there was no rollback', () => {
    const rollback = entry({ action: 'rollback', changes: [{ kind: 'downgrade', key: 'a', name: 'a', from: '2', to: '1' }] });
    expect(rolledBackVersions(parseHistory([rollback, entry({ action: 'deploy', changes: [] })]))).to.equal(undefined);
    expect(rolledBackVersions(parseHistory([rollback, entry({ action: 'auto-rollback', changes: [] })]))).to.equal(undefined);
    expect(rolledBackVersions(parseHistory([entry({ action: 'deploy', changes: [] })]))).to.equal(undefined);
    expect(rolledBackVersions([])).to.equal(undefined);
  });
});

describe('chooseRollbackTarget in the releases layout (issue 15)', () => {
  const deploy = (release: string, previousRelease: string | null, before: Record<string, string>, after: Record<string, string>) =>
    entry({ action: 'deploy', release, previousRelease, before, after });

  it('a plain rollback returns to the release that was live before the newest deploy no rollback undid', () => {
    const raw = [
      deploy('r-0001', null, {}, { app: '1.0' }),
      deploy('r-0002', 'r-0001', { app: '1.0' }, { app: '1.1' }),
      deploy('r-0003', 'r-0002', { app: '1.1' }, { app: '1.2' }),
    ];
    expect(chooseRollbackTarget(parseHistory(raw))).to.deep.include({ ok: true, undoes: 3, release: 'r-0002', packages: { app: '1.1' } });
    // The rollback by switch undid #3: the next one undoes #2, back to the release before it.
    const afterOne = parseHistory([...raw, entry({ action: 'rollback', undoes: 3, release: 'r-0002', previousRelease: 'r-0003' })]);
    expect(chooseRollbackTarget(afterOne)).to.deep.include({ undoes: 2, release: 'r-0001' });
  });

  it('--to N goes to the release entry N made live; an in-place history names no release', () => {
    const h = parseHistory([deploy('r-0001', null, {}, { app: '1.0' }), deploy('r-0002', 'r-0001', { app: '1.0' }, { app: '1.1' })]);
    expect(chooseRollbackTarget(h, 1)).to.deep.include({ restores: 1, release: 'r-0001' });
    const inPlace = parseHistory([entry({ action: 'deploy', after: { app: '1.0' } }), entry({ action: 'deploy', before: { app: '1.0' }, after: { app: '1.1' } })]);
    expect(chooseRollbackTarget(inPlace)).to.not.have.property('release');
  });
});
