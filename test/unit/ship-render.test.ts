// What the plan says about shipping (issue 16): the line of each shipping venv, one line per group,
// and --builder checked before any connection.
import { expect } from 'chai';
import { stripVTControlCharacters } from 'node:util';
import { groupLine, renderPlan, shipNote } from '../../src/cli/render-plan.js';
import { parseConfig } from '../../src/config/load-deployfile.js';
import { diffPackages, type Plan, type ShipPlan, type VenvPlan } from '../../src/deploy/plan.js';
import { planDeploy } from '../../src/deploy/plan-deploy.js';
import { ConfigError } from '../../src/errors.js';
import type { ResolvedPackage } from '../../src/resolve/resolve-venv.js';

const plain = (lines: string[]) => lines.map((l) => stripVTControlCharacters(l));
const KEY = '1a2b3c4d5e6f7a8b'.padEnd(64, '0');
const pkg = (name: string, version: string): ResolvedPackage => ({ key: name, name, version, filename: `${name}-${version}-py3-none-any.whl`, sha256: 'a'.repeat(64), requiredBy: ['r:1'] });

function venv(host: string, ship?: ShipPlan, path = '/srv/app'): VenvPlan {
  const desired = [pkg('app', '1.1')];
  return {
    id: `app@${host}:${path}`, host, user: 'app', path, status: 'ok', create: '/usr/bin/python3', ...diffPackages(desired, [], false), desired, installed: [],
    releases: { keep: 5, live: null, onHost: [], build: 'fresh' }, ...(ship ? { ship } : {}),
  };
}

describe('shipping: the plan lines', () => {
  const builder: ShipPlan = { role: 'builder', group: KEY, members: 4 };
  const from = 'app@host1:/srv/app';
  const plan: Plan = {
    venvs: [
      venv('host1', builder),
      venv('host1', { role: 'receiver', group: KEY, from, kind: 'full' }, '/srv/two'),
      venv('host2', { role: 'receiver', group: KEY, from, kind: 'delta', base: 'abcdef0123456789'.repeat(4) }),
      venv('host3', { role: 'receiver', group: KEY, from, kind: 'full' }),
      venv('host4'),
    ],
    hosts: [], prune: false, recovered: [],
    groups: [{ key: KEY, fingerprint: 'f', builder: from, members: ['app@host1:/srv/app', 'app@host1:/srv/two', 'app@host2:/srv/app', 'app@host3:/srv/app'], desired: ['app-1.1-py3-none-any.whl'] }],
  };

  it('a builder, a full and a delta receiver, a cached one', () => {
    expect(shipNote(plan, builder)).to.equal('build here with pip, then ship to 3 venvs (group 1a2b3c4d5e6f7a8b)');
    expect(shipNote(plan, { role: 'builder', group: KEY, members: 2 })).to.equal('build here with pip, then ship to 1 venv (group 1a2b3c4d5e6f7a8b)');
    expect(shipNote(plan, { role: 'receiver', group: KEY, from, kind: 'full' })).to.equal('receive the release built for host1:/srv/app (full)');
    expect(shipNote(plan, { role: 'receiver', group: KEY, from, kind: 'delta', base: 'abcdef0123456789' })).to.equal('receive the release built for host1:/srv/app (delta from abcdef01)');
    expect(shipNote(plan, { role: 'receiver', group: KEY, from: 'cache', kind: 'full' })).to.equal('receive from the local artifact cache (full)');
  });

  it('every shipping venv has its line, also those listed as "the same changes as"; one line per group at the end', () => {
    const lines = plain(renderPlan(plan));
    expect(lines).to.include('    build here with pip, then ship to 3 venvs (group 1a2b3c4d5e6f7a8b)');
    expect(lines.filter((l) => l === '    receive the release built for host1:/srv/app (full)')).to.have.length(2);
    expect(lines).to.include('    receive the release built for host1:/srv/app (delta from abcdef01)');
    expect(lines.at(-1)).to.equal('group 1a2b3c4d5e6f7a8b: built on host1:/srv/app, shipped to 3 venvs on 3 hosts');
    // host4 builds alone, as without shipping: no ship line under it.
    const host4 = lines.findIndex((l) => l.startsWith('app@host4:/srv/app'));
    expect(lines[host4 + 1]).to.equal('    first release (new venv)');
    expect(lines[host4 + 2]).to.equal(lines.at(-1));
  });

  it('a group from the cache', () => {
    const line = groupLine(plan, { key: KEY, fingerprint: 'f', builder: 'cache', members: ['app@host1:/srv/app', 'app@host1:/srv/two'], desired: [] });
    expect(stripVTControlCharacters(line)).to.equal('group 1a2b3c4d5e6f7a8b: from the local artifact cache, shipped to 2 venvs on 1 host');
  });
});

describe('shipping: --builder names a host of the deployfile', () => {
  const config = parseConfig({ wheels: '/nonexistent/wheels', hosts: [{ name: 'web1' }, { name: 'web2' }], venvs: [{ host: 'web1', path: '/srv/app', releases: true }] }, '/p/deployfile.ts');
  const connector = { connect: () => Promise.reject(new Error('must not connect')), closeAll: () => Promise.resolve() };

  it('an unknown host is a ConfigError with the nearest name, before reading or connecting anything', async () => {
    const err = await planDeploy(config, { connector, ship: { enabled: true, builder: 'web3' } }).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as ConfigError).message).to.equal('builder "web3" is not a host of the deployfile');
    expect((err as ConfigError).hint).to.match(/^did you mean "web1"\? name one of its hosts \(web1, web2\)/);
  });
});
