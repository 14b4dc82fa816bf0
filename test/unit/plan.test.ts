// The plan's rules, table-tested without SSH: what changes, what is unneeded, what gets pushed.
import { expect } from 'chai';
import { diffPackages, hasChanges, pinnedRequirements, wheelsToPush, type HostPlan, type VenvPlan } from '../../src/deploy/plan.js';
import type { InstalledPackage } from '../../src/facts/types.js';
import type { ResolvedPackage } from '../../src/resolve/resolve-venv.js';

const pkg = (name: string, version: string): ResolvedPackage => ({
  key: name.toLowerCase(),
  name,
  version,
  filename: `${name}-${version}-py3-none-any.whl`,
  sha256: 'a'.repeat(64),
  requiredBy: ['requirements.txt:1'],
});
const have = (name: string, version: string): InstalledPackage => ({ name, key: name.toLowerCase(), version });

describe('diffPackages', () => {
  const cases: Array<[string, ResolvedPackage[], InstalledPackage[], boolean, string[], string[]]> = [
    ['fresh venv: everything is an install', [pkg('Django', '5.2'), pkg('asgiref', '3.8')], [have('pip', '23.0.1')], false, ['install asgiref -> 3.8', 'install django -> 5.2'], []],
    ['same versions: nothing', [pkg('app', '1.0')], [have('app', '1.0')], false, [], []],
    ['1.0 and 1.0.0 are the same release', [pkg('app', '1.0')], [have('app', '1.0.0')], false, [], []],
    ['upgrade and downgrade by PEP 440, not text', [pkg('a', '1.10'), pkg('b', '2.0rc1')], [have('a', '1.9'), have('b', '2.0')], false, ['upgrade a 1.9 -> 1.10', 'downgrade b 2.0 -> 2.0rc1'], []],
    ['unneeded packages are reported, not removed', [pkg('app', '1.0')], [have('app', '1.0'), have('requests', '2.0'), have('pip', '23'), have('setuptools', '66')], false, [], ['requests']],
    ['--prune removes them (never pip/setuptools/wheel)', [pkg('app', '1.0')], [have('app', '1.0'), have('requests', '2.0'), have('pip', '23'), have('wheel', '0.40')], true, ['remove requests 2.0 -> '], ['requests']],
  ];
  for (const [title, desired, installed, prune, changes, unneeded] of cases) {
    it(title, () => {
      const d = diffPackages(desired, installed, prune);
      expect(d.changes.map((c) => `${c.kind} ${c.key} ${c.from ? `${c.from} ` : ''}-> ${c.to ?? ''}`.trim())).to.deep.equal(changes.map((c) => c.trim()));
      expect(d.unneeded.map((p) => p.key)).to.deep.equal(unneeded);
    });
  }
});

describe('wheelsToPush', () => {
  const host: HostPlan = { name: 'web1', cacheDir: '/c', cachedWheels: ['django-5.2-py3-none-any.whl'] };
  const venv = (id: string, desired: ResolvedPackage[], installed: InstalledPackage[], create: string | null = null): VenvPlan => ({
    id, host: 'web1', user: 'app', path: `/srv/${id}`, status: 'ok', create, ...diffPackages(desired, installed, false), desired, installed,
  });
  it('pushes each missing wheel once per host, whatever the number of venvs', () => {
    const desired = [pkg('django', '5.2'), pkg('app', '1.1')];
    const a = venv('a', desired, [have('django', '5.2'), have('app', '1.0')]);
    const b = venv('b', desired, [], '/usr/bin/python3');
    expect(wheelsToPush(host, [a, b]).map((w) => w.filename)).to.deep.equal(['app-1.1-py3-none-any.whl']);
  });
  it('pushes nothing for a venv with nothing to do, or on another host', () => {
    const same = venv('a', [pkg('x', '1')], [have('x', '1')]);
    const other: VenvPlan = { ...venv('b', [pkg('y', '1')], []), host: 'web2' };
    expect(hasChanges(same)).to.equal(false);
    expect(wheelsToPush(host, [same, other])).to.deep.equal([]);
  });
  it('an upgrade of one package moves one wheel', () => {
    const v = venv('a', [pkg('x', '2'), pkg('y', '1')], [have('x', '1'), have('y', '1')]);
    expect(wheelsToPush({ ...host, cachedWheels: [] }, [v]).map((w) => w.key)).to.deep.equal(['x']);
  });
});

describe('pinnedRequirements', () => {
  it('pins every package of the closure to its wheel hash', () => {
    expect(pinnedRequirements([pkg('Django', '5.2')])).to.equal(`Django==5.2 --hash=sha256:${'a'.repeat(64)}\n`);
  });
});
