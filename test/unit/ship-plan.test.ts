// Shipping at plan time (issue 16), table-tested without SSH: groups, builders, full or delta, the cache.
import { expect } from 'chai';
import { diffPackages, type Plan, type ReleasePlan, type VenvPlan } from '../../src/deploy/plan.js';
import { groupKey, interpreterFingerprint, planShipping, type ShipFacts, type ShipOptions } from '../../src/deploy/ship-plan.js';
import type { InstalledPackage, InterpreterFacts } from '../../src/facts/types.js';
import { liveArtifact, parseHistory } from '../../src/history/history-entry.js';
import type { ResolvedPackage } from '../../src/resolve/resolve-venv.js';

const pkg = (name: string, version: string): ResolvedPackage => ({
  key: name, name, version, filename: `${name}-${version}-py3-none-any.whl`, sha256: 'a'.repeat(64), requiredBy: ['requirements.txt:1'],
});
const have = (name: string, version: string): InstalledPackage => ({ name, key: name, version });

const interpreter = (version = '3.11.2', libc = '2_36'): InterpreterFacts => ({
  version,
  markers: {
    implementation_name: 'cpython', implementation_version: version, os_name: 'posix', platform_machine: 'x86_64', platform_release: '6.1.0',
    platform_system: 'Linux', platform_version: '#1 SMP', python_full_version: version, platform_python_implementation: 'CPython',
    python_version: version.split('.').slice(0, 2).join('.'), sys_platform: 'linux',
  },
  supportedTags: [`cp311-cp311-manylinux_${libc}_x86_64`, 'py3-none-any'],
});

const APP1 = [pkg('django', '5.2'), pkg('app', '1.0')];
const APP2 = [pkg('django', '5.2'), pkg('app', '1.1')];
const LIVE = '20261203T100000Z-0001';

interface VenvSpec {
  host: string;
  path?: string;
  desired?: ResolvedPackage[];
  /** Live release's installed set: a clone; absent: a fresh first release. */
  installed?: InstalledPackage[];
  build?: ReleasePlan['build'];
  releases?: false;
  rollback?: true;
}

function venv(s: VenvSpec): VenvPlan {
  const path = s.path ?? '/srv/app';
  const desired = s.desired ?? APP2;
  const installed = s.installed ?? [];
  const clone = s.installed !== undefined;
  const releases: ReleasePlan = { keep: 5, live: clone ? LIVE : null, onHost: clone ? [LIVE] : [], build: s.build ?? (clone ? 'clone' : 'fresh') };
  return {
    id: `app@${s.host}:${path}`, host: s.host, user: 'app', path, status: 'ok', create: clone ? null : '/usr/bin/python3',
    ...diffPackages(desired, installed, false), desired, installed,
    ...(s.releases === false ? {} : { releases }),
    ...(s.rollback ? { rollback: { undoes: 2, migrations: [], unapplyMigrations: false } } : {}),
  };
}

const plan = (...venvs: VenvPlan[]): Plan => ({ venvs, hosts: [], prune: false, recovered: [] });

function facts(p: Plan, over: Record<string, Partial<ShipFacts>> = {}): Map<string, ShipFacts> {
  return new Map(p.venvs.map((v) => [v.id, { python: '/usr/bin/python3', interpreter: interpreter(), ...over[v.id] }]));
}

const ON: ShipOptions = { enabled: true };
const ships = (p: Plan) => Object.fromEntries(p.venvs.flatMap((v) => (v.status === 'ok' && v.ship ? [[v.id, v.ship]] : [])));

describe('ship-plan: fingerprint and group key', () => {
  it('the fingerprint is the configured path, version, markers (in any order) and tags', () => {
    const a = interpreter();
    const reordered: InterpreterFacts = { ...a, markers: Object.fromEntries(Object.entries(a.markers).reverse()) as InterpreterFacts['markers'] };
    expect(interpreterFingerprint('/usr/bin/python3', a)).to.match(/^[0-9a-f]{64}$/).and.equal(interpreterFingerprint('/usr/bin/python3', reordered));
    expect(interpreterFingerprint('/usr/bin/python3', a)).not.to.equal(interpreterFingerprint('/opt/py/bin/python3', a));
    expect(interpreterFingerprint('/usr/bin/python3', a)).not.to.equal(interpreterFingerprint('/usr/bin/python3', interpreter('3.11.4')));
    expect(interpreterFingerprint('/usr/bin/python3', a)).not.to.equal(interpreterFingerprint('/usr/bin/python3', interpreter('3.11.2', '2_17')));
  });

  it('the group key is the fingerprint and the desired filenames, whatever their order', () => {
    expect(groupKey('f', ['b.whl', 'a.whl'])).to.equal(groupKey('f', ['a.whl', 'b.whl'])).and.match(/^[0-9a-f]{64}$/);
    expect(groupKey('f', ['a.whl'])).not.to.equal(groupKey('g', ['a.whl']));
    expect(groupKey('f', ['a.whl'])).not.to.equal(groupKey('f', ['a.whl', 'b.whl']));
  });
});

describe('ship-plan: groups', () => {
  it('venvs with the same interpreter and desired set form one group: the first builds, the rest receive', () => {
    const p = plan(venv({ host: 'h1' }), venv({ host: 'h1', path: '/srv/two' }), venv({ host: 'h2' }));
    const out = planShipping(p, facts(p), ON);
    const key = out.groups![0]!.key;
    expect(out.groups).to.deep.equal([{
      key, fingerprint: interpreterFingerprint('/usr/bin/python3', interpreter()), builder: 'app@h1:/srv/app',
      members: ['app@h1:/srv/app', 'app@h1:/srv/two', 'app@h2:/srv/app'], desired: ['app-1.1-py3-none-any.whl', 'django-5.2-py3-none-any.whl'],
    }]);
    expect(key).to.equal(groupKey(out.groups![0]!.fingerprint, out.groups![0]!.desired));
    expect(ships(out)).to.deep.equal({
      'app@h1:/srv/app': { role: 'builder', group: key, members: 3 },
      'app@h1:/srv/two': { role: 'receiver', group: key, from: 'app@h1:/srv/app', kind: 'full' },
      'app@h2:/srv/app': { role: 'receiver', group: key, from: 'app@h1:/srv/app', kind: 'full' },
    });
  });

  it('another interpreter version, libc or configured path, or another desired set, is another group', () => {
    const p = plan(
      venv({ host: 'h1' }), venv({ host: 'h2' }),
      venv({ host: 'h3' }), venv({ host: 'h4' }),
      venv({ host: 'h5' }), venv({ host: 'h6', desired: APP1 }),
    );
    const out = planShipping(p, facts(p, {
      'app@h3:/srv/app': { interpreter: interpreter('3.11.4') },
      'app@h4:/srv/app': { interpreter: interpreter('3.11.2', '2_17') },
      'app@h5:/srv/app': { python: '/opt/python3.11/bin/python3' },
    }), ON);
    // Only h1 and h2 share everything; the others are groups of one and build with pip as before.
    expect(out.groups!.map((g) => g.members)).to.deep.equal([['app@h1:/srv/app', 'app@h2:/srv/app']]);
    expect(Object.keys(ships(out))).to.deep.equal(['app@h1:/srv/app', 'app@h2:/srv/app']);
  });

  it('two groups: each has its own builder, groups in the order of their first venv', () => {
    const p = plan(venv({ host: 'h1', desired: APP1 }), venv({ host: 'h2' }), venv({ host: 'h3', desired: APP1 }), venv({ host: 'h4' }));
    const out = planShipping(p, facts(p), ON);
    expect(out.groups!.map((g) => [g.builder, g.members.length])).to.deep.equal([['app@h1:/srv/app', 2], ['app@h2:/srv/app', 2]]);
  });

  it('not candidates: up to date, in place, a rollback, a switch, a venv that failed to plan, no facts', () => {
    const upToDate = venv({ host: 'h1', installed: APP2.map((p) => have(p.key, p.version)) });
    const error: VenvPlan = { id: 'app@h6:/srv/app', host: 'h6', user: 'app', path: '/srv/app', status: 'error', stage: 'connect', message: 'down' };
    const p = plan(upToDate, venv({ host: 'h2', releases: false }), venv({ host: 'h3', rollback: true }), venv({ host: 'h4', installed: [], build: 'switch' }), error, venv({ host: 'h7' }), venv({ host: 'h8' }));
    const f = facts(p);
    f.delete('app@h8:/srv/app');
    expect(planShipping(p, f, ON)).to.equal(p);
  });

  it('disabled (--no-ship): the plan is returned as it was, no ship, no groups', () => {
    const p = plan(venv({ host: 'h1' }), venv({ host: 'h2' }));
    expect(planShipping(p, facts(p), { enabled: false })).to.equal(p);
  });

  it('a group of one does not ship', () => {
    const p = plan(venv({ host: 'h1' }));
    const out = planShipping(p, facts(p), ON);
    expect(out.groups).to.equal(undefined);
    expect(ships(out)).to.deep.equal({});
  });
});

describe('ship-plan: the builder', () => {
  const p = plan(venv({ host: 'h1' }), venv({ host: 'h2' }), venv({ host: 'h2', path: '/srv/b' }), venv({ host: 'h3', desired: APP1 }), venv({ host: 'h4', desired: APP1 }));

  it('--builder HOST: the group\'s first venv on that host builds', () => {
    const out = planShipping(p, facts(p), { enabled: true, builder: 'h2' });
    expect(out.groups!.map((g) => g.builder)).to.deep.equal(['app@h2:/srv/app', 'app@h3:/srv/app']);
    expect(ships(out)['app@h1:/srv/app']).to.include({ role: 'receiver', from: 'app@h2:/srv/app' });
    expect(ships(out)['app@h2:/srv/b']).to.include({ role: 'receiver', from: 'app@h2:/srv/app' });
  });

  it('a group with no venv on the named host builds on its first venv', () => {
    const out = planShipping(p, facts(p), { enabled: true, builder: 'h4' });
    expect(out.groups!.map((g) => g.builder)).to.deep.equal(['app@h1:/srv/app', 'app@h4:/srv/app']);
  });
});

describe('ship-plan: full or delta', () => {
  const clone = (host: string) => venv({ host, installed: APP1.map((p) => have(p.key, p.version)) });
  const p = plan(clone('h1'), clone('h2'), clone('h3'), venv({ host: 'h4' }));
  const ids = p.venvs.map((v) => v.id);

  it('a receiver whose live release has the builder\'s live artifact gets a delta on it; others get it full', () => {
    const out = planShipping(p, facts(p, {
      [ids[0]!]: { liveArtifact: 'd1' }, [ids[1]!]: { liveArtifact: 'd1' }, [ids[2]!]: { liveArtifact: 'd0' },
    }), ON);
    const s = ships(out);
    expect(s[ids[1]!]).to.deep.include({ kind: 'delta', base: 'd1' });
    expect(s[ids[2]!]).to.deep.include({ kind: 'full' }).and.not.have.property('base');
    expect(s[ids[3]!]).to.deep.include({ kind: 'full' });
  });

  it('no delta when the builder\'s own live release has no artifact, or the builder builds fresh', () => {
    const none = planShipping(p, facts(p, { [ids[1]!]: { liveArtifact: 'd1' } }), ON);
    expect(Object.values(ships(none)).filter((s) => s.role === 'receiver').map((s) => s.role === 'receiver' && s.kind)).to.deep.equal(['full', 'full', 'full']);
    // The fresh venv h4 builds: a new venv has no previous release to diff against.
    const fresh = planShipping(p, facts(p, { [ids[0]!]: { liveArtifact: 'd1' }, [ids[1]!]: { liveArtifact: 'd1' } }), { enabled: true, builder: 'h4' });
    expect(ships(fresh)[ids[1]!]).to.deep.include({ kind: 'full', from: ids[3] });
  });
});

describe('ship-plan: the local artifact cache', () => {
  it('a group the cache holds has no builder: every venv receives it from the cache, a venv alone too', () => {
    const p = plan(venv({ host: 'h1' }), venv({ host: 'h2' }), venv({ host: 'h3', desired: APP1 }));
    const f = facts(p);
    const cachedKey = groupKey(interpreterFingerprint('/usr/bin/python3', interpreter()), APP2.map((x) => x.filename));
    const aloneKey = groupKey(interpreterFingerprint('/usr/bin/python3', interpreter()), APP1.map((x) => x.filename));
    const out = planShipping(p, f, { enabled: true, cachedGroup: (k) => (k === cachedKey || k === aloneKey ? 'digest' : undefined) });
    expect(out.groups!.map((g) => [g.builder, g.members.length])).to.deep.equal([['cache', 2], ['cache', 1]]);
    expect(Object.values(ships(out))).to.deep.equal([
      { role: 'receiver', group: cachedKey, from: 'cache', kind: 'full' },
      { role: 'receiver', group: cachedKey, from: 'cache', kind: 'full' },
      { role: 'receiver', group: aloneKey, from: 'cache', kind: 'full' },
    ]);
  });
});

describe('history: the artifact of the live release', () => {
  const lines = [
    { action: 'deploy', outcome: 'deployed', release: 'r1', artifact: 'a1' },
    { action: 'deploy', outcome: 'deployed', release: 'r2', artifact: 'a2' },
    { action: 'rollback', outcome: 'deployed', release: 'r1' },
    { action: 'deploy', outcome: 'deployed', release: 'r4' },
  ];
  const history = parseHistory(lines);
  it('reads `artifact` from the line that built the release; a switch back to it records none', () => {
    expect(history[0]!.artifact).to.equal('a1');
    expect(liveArtifact(history, 'r1')).to.equal('a1');
    expect(liveArtifact(history, 'r2')).to.equal('a2');
  });
  it('none for a release built without shipping, or no live release', () => {
    expect(liveArtifact(history, 'r4')).to.equal(undefined);
    expect(liveArtifact(history, null)).to.equal(undefined);
  });
});
