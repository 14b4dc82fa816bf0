// The history rules a deploy plan reads after a rollback (issue 14): what the newest rollback took off.
import { expect } from 'chai';
import { parseHistory, rolledBackVersions } from '../../src/history/history-entry.js';

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
