// Shipping in the plan (issue 16) through the built binary against a real sshd fleet: which venvs form
// a group (same interpreter path and facts, same desired wheels), who builds it, --builder, --no-ship.
// Plans only: the apply side is tested with the deploys (ship*.test.ts).
import { expect } from 'chai';
import { join } from 'node:path';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir, type CliResult } from '../helpers/cli.js';
import { makeDeployProject, type DeployProject } from '../helpers/deploy-project.js';
import { startFleet, type Fleet } from '../helpers/fleet.js';

interface JsonPlan {
  plan: {
    venvs: Array<{ id: string; ship?: { role: string; group: string; from?: string; kind?: string; members?: number } }>;
    groups?: Array<{ key: string; builder: string; members: string[]; desired: string[]; fingerprint: string }>;
  };
}

function ok(r: CliResult): CliResult {
  expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
  return r;
}

describe('shipping: the plan (real sshd fleet)', function () {
  this.timeout(300_000);
  let fleet: Fleet;
  let project: DeployProject;
  let ids: string[];

  before(async () => {
    fleet = await startFleet({ hosts: 2 });
    const [h1, h2] = fleet.hosts as [Fleet['hosts'][number], Fleet['hosts'][number]];
    const wheel = await buildWheel(await makeTempDir('vdeploy-shipplan-wheels-'), { name: 'shipapp', version: '1.0', files: { 'shipapp/__init__.py': '' } });
    project = await makeDeployProject(fleet, {
      venvs: [
        { host: h1, path: join(h1.root, 'srv', 'a'), releases: true },
        { host: h1, path: join(h1.root, 'srv', 'b'), releases: true },
        { host: h2, path: join(h2.root, 'srv', 'a'), releases: true },
        // The same interpreter by another path: a venv made with it names that path, so it is another group.
        { host: h2, path: join(h2.root, 'srv', 'c'), releases: true, python: '/usr/bin/python3.11' },
        // In place: never shipped.
        { host: h2, path: join(h2.root, 'srv', 'd') },
      ],
      requirements: 'shipapp\n',
      wheels: [wheel],
    });
    ids = [
      `${fleet.user}@${h1.name}:${join(h1.root, 'srv', 'a')}`,
      `${fleet.user}@${h1.name}:${join(h1.root, 'srv', 'b')}`,
      `${fleet.user}@${h2.name}:${join(h2.root, 'srv', 'a')}`,
    ];
  });
  after(async () => fleet?.stop());

  it('one group of the three alike venvs: the first builds, the others receive from it; the odd ones build alone', async () => {
    const r = ok(await project.run(['plan', '--json']));
    const { plan } = JSON.parse(r.stdout) as JsonPlan;
    expect(plan.groups).to.have.length(1);
    const g = plan.groups![0]!;
    expect(g).to.deep.include({ builder: ids[0], members: ids, desired: ['shipapp-1.0-py3-none-any.whl'] });
    expect(plan.venvs.map((v) => v.ship)).to.deep.equal([
      { role: 'builder', group: g.key, members: 3 },
      { role: 'receiver', group: g.key, from: ids[0], kind: 'full' },
      { role: 'receiver', group: g.key, from: ids[0], kind: 'full' },
      undefined,
      undefined,
    ]);
    const text = ok(await project.run(['plan'])).stdout;
    expect(text).to.include(`    build here with pip, then ship to 2 venvs (group ${g.key.slice(0, 16)})`);
    expect(text).to.include(`    receive the release built for ${ids[0]!.split('@')[1]} (full)`);
    expect(text).to.include(`group ${g.key.slice(0, 16)}: built on ${ids[0]!.split('@')[1]}, shipped to 2 venvs on 2 hosts`);
  });

  it('--builder host2 builds there; --no-ship plans no shipping at all', async () => {
    const { plan } = JSON.parse(ok(await project.run(['plan', '--json', '--builder', 'host2'])).stdout) as JsonPlan;
    expect(plan.groups!.map((g) => g.builder)).to.deep.equal([ids[2]]);
    const off = JSON.parse(ok(await project.run(['plan', '--json', '--no-ship'])).stdout) as JsonPlan;
    expect(off.plan.groups).to.equal(undefined);
    expect(off.plan.venvs.every((v) => v.ship === undefined)).to.equal(true);
    expect(ok(await project.run(['plan', '--no-ship'])).stdout).not.to.match(/build here with pip|receive the release|group [0-9a-f]{16}/);
  });
});
