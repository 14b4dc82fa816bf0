// What the user sees of the releases layout (issue 15), through the built CLI against a real sshd
// fleet: the plan's release lines, the summary's live release and cleanup, `vdeploy releases`,
// history and status with release ids, relocate's refusal, and `vdeploy init`'s deployfile.
import { expect } from 'chai';
import { readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir, runVdeploy } from '../helpers/cli.js';
import { makeDeployProject, type DeployProject } from '../helpers/deploy-project.js';
import { startFleet, type Fleet, type FleetHost } from '../helpers/fleet.js';

function relapp(dir: string, version: string, broken = false): Promise<string> {
  const init = `__version__ = "${version}"\n${broken ? `raise RuntimeError("relapp ${version} is broken")\n` : ''}`;
  return buildWheel(dir, { name: 'relapp', version, files: { 'relapp/__init__.py': init } });
}

interface ReleasesJson {
  venvs: Array<{
    id: string;
    ok: boolean;
    keep: number;
    live: string | null;
    releases: Array<{ id: string; live: boolean; rollbackTarget: boolean; bytes: number; ownBytes: number; installed: Record<string, string>; changes: unknown[] | null; madeBy?: { number: number; action: string } }>;
  }>;
  inPlace: string[];
}

const RELEASE_ID = /\d{8}T\d{6}Z-\d{4}/;

describe('releases layout: what the CLI shows (real sshd fleet)', function () {
  this.timeout(600_000);
  let fleet: Fleet;
  let host: FleetHost;
  let wheels: string;
  let project: DeployProject;
  let root: string;
  let sel: string;
  let inPlaceSel: string;
  const ids: string[] = [];
  const live = async () => (await readlink(join(root, 'current'))).replace('releases/', '');

  before(async () => {
    fleet = await startFleet({ hosts: 1 });
    host = fleet.hosts[0]!;
    wheels = await makeTempDir('vdeploy-rcli-wheels-');
    root = join(host.root, 'srv', 'app');
    const inPlace = join(host.root, 'srv', 'tools', 'venv');
    sel = `${host.name}:${root}`;
    inPlaceSel = `${host.name}:${inPlace}`;
    project = await makeDeployProject(fleet, {
      venvs: [
        // keep 1: the third deploy removes the first release (the second is the rollback target).
        { host, path: root, releases: { keep: 1 }, healthcheck: { command: 'bin/python -c "import relapp"', retries: 0 } },
        { host, path: inPlace },
      ],
      requirements: 'relapp\n',
      wheels: [await relapp(wheels, '1.0')],
    });
  });
  after(async () => fleet?.stop());

  it('plan says "first release (new venv)"; the summary names the release that went live and its size', async () => {
    const plan = await project.run(['plan', sel]);
    expect(plan.exitCode, plan.stderr).to.equal(0);
    expect(plan.stdout).to.include('first release (new venv)');
    const deploy = await project.run(['deploy', '--yes', sel]);
    expect(deploy.exitCode, deploy.stdout + deploy.stderr).to.equal(0);
    ids.push(await live());
    expect(deploy.stdout).to.match(new RegExp(`: release ${ids[0]} is live \\(\\d+\\.\\d (KiB|MiB)\\)`));
  });

  it('plan says "new release: clone of <live> + 1 change"; the third deploy removes the release beyond keep', async () => {
    await project.addWheels([await relapp(wheels, '1.1')]);
    const plan = await project.run(['plan', sel]);
    expect(plan.exitCode, plan.stderr).to.equal(0);
    expect(plan.stdout).to.include(`new release: clone of ${ids[0]} + 1 change`);
    const second = await project.run(['deploy', '--yes', sel]);
    expect(second.exitCode, second.stdout + second.stderr).to.equal(0);
    ids.push(await live());
    // A hardlink clone: most of its size is shared with the release it was cloned from.
    expect(second.stdout).to.match(new RegExp(`release ${ids[1]} is live \\(\\d+\\.\\d MiB, \\d+(\\.\\d)? (B|KiB|MiB) its own\\)`));
    expect(second.stdout).not.to.include('removed');

    await project.addWheels([await relapp(wheels, '1.2')]);
    const third = await project.run(['deploy', '--yes', sel]);
    expect(third.exitCode, third.stdout + third.stderr).to.equal(0);
    ids.push(await live());
    expect(third.stdout).to.match(new RegExp(`removed 1 release: ${ids[0]} \\(beyond keep, \\d+(\\.\\d)? (B|KiB|MiB)\\); freed \\d+(\\.\\d)? (B|KiB|MiB)`));
  });

  it('`vdeploy releases` lists each release newest first: live, rollback target, size, the deploy that made it, what changed', async () => {
    const r = await project.run(['releases', sel]);
    expect(r.exitCode, r.stderr).to.equal(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).to.match(new RegExp(`^root@${host.name}:${root}  keep 1; 2 releases on the host; live: ${ids[2]}$`));
    expect(lines[1]).to.match(/^\s+RELEASE\s+SIZE\s+MADE BY\s+CHANGES/);
    expect(lines[2]).to.match(new RegExp(`^\\s+${ids[2]}\\s+live\\s+\\d+\\.\\d MiB, .* its own\\s+#3 \\S+ \\S+Z \\S+@\\S+\\s+relapp 1\\.1→1\\.2$`));
    expect(lines[3]).to.match(new RegExp(`^\\s+${ids[1]}\\s+rollback target\\s+\\d+\\.\\d MiB.*#2 .*oldest here: \\d+ packages$`));
    expect(r.stdout).not.to.include(ids[0]!);

    const json = await project.run(['releases', '--json', sel]);
    expect(json.exitCode, json.stderr).to.equal(0);
    const listing = JSON.parse(json.stdout) as ReleasesJson;
    expect(listing.inPlace).to.deep.equal([]);
    const v = listing.venvs[0]!;
    expect(v).to.include({ ok: true, keep: 1, live: ids[2] });
    expect(v.releases.map((x) => [x.id, x.live, x.rollbackTarget, x.madeBy?.number])).to.deep.equal([
      [ids[2], true, false, 3],
      [ids[1], false, true, 2],
    ]);
    expect(v.releases[0]!.changes).to.deep.equal([{ kind: 'upgrade', key: 'relapp', name: 'relapp', from: '1.1', to: '1.2' }]);
    expect(v.releases[1]!.changes).to.equal(null);
    expect(v.releases[0]!.installed.relapp).to.equal('1.2');
    for (const x of v.releases) expect(x.ownBytes).to.be.greaterThan(0).and.below(x.bytes);
  });

  it('`vdeploy releases` on an in-place venv says it has no releases (exit 2); with a releases venv it is a note', async () => {
    const r = await project.run(['releases', inPlaceSel]);
    expect(r.exitCode).to.equal(2);
    expect(r.stderr).to.match(new RegExp(`^error: root@${host.name}:${inPlaceSel.split(':')[1]} is an in-place venv \\(no \`releases\` in the deployfile\\): it has no releases to list\\nhint: `));
    expect(r.stdout).to.equal('');
    const both = await project.run(['releases', host.name]);
    expect(both.exitCode, both.stderr).to.equal(0);
    expect(both.stdout).to.include(`root@${inPlaceSel}: an in-place venv (no \`releases\` in the deployfile): no releases`);
  });

  it('history shows each entry\'s release and which is live; status has a LIVE RELEASE column', async () => {
    const h = await project.run(['history', sel]);
    expect(h.exitCode, h.stderr).to.equal(0);
    const lines = h.stdout.split('\n');
    expect(lines[0]).to.equal(`root@${host.name}:${root}  live release: ${ids[2]}`);
    expect(lines[1]).to.match(new RegExp(`^\\s+#3 .* deployed\\s+${ids[2]} \\(live\\)\\s+relapp 1\\.1→1\\.2$`));
    expect(lines[2]).to.match(new RegExp(`^\\s+#2 .* deployed\\s+${ids[1]}\\s+relapp 1\\.0→1\\.1$`));
    expect(lines[3]).to.match(new RegExp(`^\\s+#1 .* deployed\\s+${ids[0]}\\s+\\+relapp 1\\.0$`));
    const hj = JSON.parse((await project.run(['history', '--json', sel])).stdout) as Array<{ live: string; entries: Array<{ release: string; previousRelease?: string }> }>;
    expect(hj[0]!.live).to.equal(ids[2]);
    expect(hj[0]!.entries.map((e) => e.release)).to.deep.equal([ids[2], ids[1], ids[0]]);

    const s = await project.run(['status', host.name]);
    expect(s.exitCode, s.stderr).to.equal(0);
    const rows = s.stdout.split('\n');
    expect(rows[0]).to.match(/^VENV\s+STATE\s+LIVE RELEASE\s+LAST DEPLOY$/);
    // The id column is elided to fit 80 columns: its end is kept.
    expect(s.stdout).to.match(new RegExp(`srv/app\\s+in sync\\s+${ids[2]}\\s+\\S+ \\S+Z \\S+ deployed`));
    expect(s.stdout).to.match(/tools\/venv\s+drift \(2\)\s+in place\s+never deployed/);
    const sj = JSON.parse((await project.run(['status', '--json', host.name])).stdout) as { venvs: Array<{ live?: string | null; last?: { release?: string } }> };
    expect(sj.venvs[0]).to.deep.include({ live: ids[2] });
    expect(sj.venvs[0]!.last?.release).to.equal(ids[2]);
    expect(sj.venvs[1]).not.to.have.property('live');
  });

  it('rollback plans say "switch current to <id> (no pip)", or that the release was cleaned up and is rebuilt', async () => {
    const back = await project.run(['rollback', '--dry-run', sel]);
    expect(back.exitCode, back.stderr).to.equal(0);
    expect(back.stdout).to.include(`rollback: switch current to ${ids[1]} (no pip)`);
    const toFirst = await project.run(['rollback', '--to', '1', '--dry-run', sel]);
    expect(toFirst.exitCode, toFirst.stderr).to.equal(0);
    expect(toFirst.stdout).to.include(`release ${ids[0]} was cleaned up: rebuilding it from the release log`);
    const json = JSON.parse((await project.run(['plan', '--json', sel])).stdout) as { plan: { venvs: Array<{ releases: { live: string; build: string; onHost: string[] } }> } };
    expect(json.plan.venvs[0]!.releases).to.deep.include({ live: ids[2], build: 'clone', onHost: [ids[1], ids[2]] });
    expect(await live()).to.equal(ids[2]);
  });

  it('relocate refuses a venv declared with releases (exit 2), before connecting', async () => {
    const r = await project.run(['relocate', sel, '--update-path', 'auto']);
    expect(r.exitCode).to.equal(2);
    expect(r.stderr).to.match(new RegExp(`^error: root@${host.name}:${root} is declared with \`releases\`: each deploy builds a new, relocated release there, so relocate \\(for in-place venvs\\) leaves it alone\\nhint: deploy it instead`));
    expect(r.stdout).to.equal('');
    // The same with a selector that also names an in-place venv: nothing is relocated.
    const both = await project.run(['relocate', host.name, '--reinitialize']);
    expect(both.exitCode).to.equal(2);
    expect(both.stderr).to.include('is declared with `releases`');
  });

  it('`vdeploy init` writes a deployfile in the releases layout that passes validation', async () => {
    const dir = await makeTempDir('vdeploy-rcli-init-');
    const init = await runVdeploy(['init'], { cwd: dir });
    expect(init.exitCode, init.stderr).to.equal(0);
    expect(await readFile(join(dir, 'deployfile.ts'), 'utf8')).to.match(/releases: \{ keep: 5 \}/);
    const venvs = await runVdeploy(['venvs', '--json'], { cwd: dir });
    expect(venvs.exitCode, venvs.stderr).to.equal(0);
    const declared = JSON.parse(venvs.stdout) as Array<Record<string, unknown>>;
    expect(declared).to.have.length(1);
    expect(declared[0]).to.deep.include({ id: 'deploy@web1:/srv/app', path: '/srv/app', python: 'python3', releases: { keep: 5 } });
  });
});
