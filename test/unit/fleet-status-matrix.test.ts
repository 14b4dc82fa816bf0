/** The status matrix's "differs": installed against planned compares as PEP 440, as the plan and the apply do. */
import { expect } from 'chai';
import type { Plan } from '../../src/deploy/plan.js';
import { buildMatrix } from '../../src/status/fleet-status.js';

/** Only what buildMatrix reads of a plan. */
function planOf(venvs: Array<{ installed: Record<string, string>; desired: Record<string, string> }>): Plan {
  const pkgs = (m: Record<string, string>) => Object.entries(m).map(([key, version]) => ({ key, name: key, version }));
  return { venvs: venvs.map((v) => ({ status: 'ok', installed: pkgs(v.installed), desired: pkgs(v.desired) })) } as unknown as Plan;
}

describe('status matrix', () => {
  it('an installed 1.0.0 is the planned 1.0: the row does not differ', () => {
    const [row] = buildMatrix(planOf([{ installed: { shop: '1.0.0' }, desired: { shop: '1.0' } }]), new Map());
    expect(row).to.deep.equal({ key: 'shop', name: 'shop', versions: ['1.0.0'], differs: false });
  });

  it('another version, or a missing one, differs (a version that is not PEP 440 compares as text)', () => {
    const rows = buildMatrix(planOf([{ installed: { shop: '1.0.1', odd: 'build-7' }, desired: { shop: '1.0', odd: 'build-7', new: '2' } }]), new Map());
    expect(rows.map((r) => [r.key, r.differs])).to.deep.equal([['new', true], ['odd', false], ['shop', true]]);
  });
});
