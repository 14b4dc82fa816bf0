// `vdeploy package` through the built CLI (issue 19, part PKG): bad input is one line + hint, exit 2,
// nothing written; a real build writes one line per file, the same bytes twice (reproducible), and
// nothing but the packages in --out.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { addWheels } from '../../src/wheels/repository.js';
import { makeTempDir, runVdeploy, expectOneLineError } from '../helpers/cli.js';
import { startFleet, type Fleet } from '../helpers/fleet.js';
import { sharedWheel } from '../helpers/paths.js';

const run = promisify(execFile);
const PKG = { name: 'vdeploy-pkgcli-test', venv: 'web1:/srv/app', prefix: '/opt/vdeploy-pkgcli-test', interpreter: 'system' };

async function project(packages: unknown[] | undefined, wheels = false): Promise<string> {
  const dir = await makeTempDir();
  const config = { hosts: [{ name: 'web1', address: '192.0.2.1' }], venvs: [{ host: 'web1', path: '/srv/app' }], ...(packages ? { packages } : {}) };
  await writeFile(join(dir, 'deployfile.mjs'), `export default ${JSON.stringify(config)};\n`);
  await writeFile(join(dir, 'requirements.txt'), 'sqlparse\n');
  if (wheels) await addWheels(join(dir, 'wheels'), [sharedWheel('sqlparse-0.6.0-py3-none-any.whl')]);
  return dir;
}

describe('vdeploy package: the command line (issue 19)', function () {
  this.timeout(300_000);

  it('refuses bad input with one line, exit 2, and writes nothing', async () => {
    const none = await project(undefined);
    expectOneLineError(await runVdeploy(['package', '--version', '1.0', '--out', 'out'], { cwd: none }), /declares no packages/);
    const dir = await project([PKG]);
    expectOneLineError(await runVdeploy(['package', 'nope', '--version', '1.0', '--out', 'out'], { cwd: dir }), /no package named nope/);
    expectOneLineError(await runVdeploy(['package', '--version', '1.0-3', '--out', 'out'], { cwd: dir }), /--version "1\.0-3" is not a package version/);
    expectOneLineError(await runVdeploy(['package', '--version', '1.0', '--iteration', '0', '--out', 'out'], { cwd: dir }), /--iteration 0/);
    expectOneLineError(await runVdeploy(['package', '--version', '1.0', '--format', 'zip', '--out', 'out'], { cwd: dir }), /format/);
    expectOneLineError(await runVdeploy(['package', '--out', 'out'], { cwd: dir }), /version/);
    expectOneLineError(await runVdeploy(['package', '--version', '1.0', '--format', 'rpm', '--apt-repo', 'apt', '--out', 'out'], { cwd: dir }), /--apt-repo needs \.deb packages/);
    expectOneLineError(await runVdeploy(['package', '--version', '1.0', '--out', 'out'], { cwd: dir, env: { SOURCE_DATE_EPOCH: 'yesterday' } }), /SOURCE_DATE_EPOCH=yesterday/);
    const badName = await project([{ ...PKG, name: 'Bad_Name' }]);
    expectOneLineError(await runVdeploy(['package', '--version', '1.0'], { cwd: badName }), /packages\[0\]\.name/);
    const buildOn = await project([{ ...PKG, buildOn: 'web1', interpreter: { path: '/usr' } }], true);
    expectOneLineError(await runVdeploy(['package', '--version', '1.0', '--out', 'out'], { cwd: buildOn }), /buildOn works with interpreter 'system' only/);
    for (const d of [none, dir, buildOn]) expect((await readdir(d)).filter((n) => n === 'out')).to.have.length.at.most(1);
    expect(await readdir(join(buildOn, 'out')).catch(() => [])).to.deep.equal([]);
  });

  it('writes the .deb and the .rpm (every file of the .deb is in the .rpm), one line per file; the same inputs give the same bytes', async () => {
    const dir = await project([PKG], true);
    const first = await runVdeploy(['package', '--version', '2.1', '--iteration', '3', '--format', 'both', '--out', 'out', '--json'], { cwd: dir });
    expect(first.exitCode, first.stderr).to.equal(0);
    const result = JSON.parse(first.stdout) as { written: Array<{ file: string; format: string; size: number; sha256: string; architecture: string; contents: string[] }> };
    expect(result.written.map((w) => w.format)).to.deep.equal(['deb', 'rpm']);
    expect(result.written[1]).to.deep.include({ file: join(dir, 'out', 'vdeploy-pkgcli-test-2.1-3.noarch.rpm'), architecture: 'all' });
    expect(result.written[0]).to.deep.include({ file: join(dir, 'out', 'vdeploy-pkgcli-test_2.1-3_all.deb'), format: 'deb', architecture: 'all', contents: ['sqlparse==0.6.0'] });
    expect((await readdir(join(dir, 'out'))).sort()).to.deep.equal(['vdeploy-pkgcli-test-2.1-3.noarch.rpm', 'vdeploy-pkgcli-test_2.1-3_all.deb']);
    // The .deb and the .rpm install the same files.
    const debFiles = (await run('dpkg-deb', ['--contents', result.written[0]!.file])).stdout.split('\n').filter((l) => l && !l.startsWith('d')).map((l) => l.split(/\s+/)[5]!.replace(/^\./, '')).sort();
    const rpmFiles = (await run('rpm', ['-qp', '--dump', result.written[1]!.file], { maxBuffer: 64 << 20 })).stdout.split('\n').filter((l) => l).map((l) => l.split(' ')[0]!).filter((p) => debFiles.includes(p) || !p.endsWith('/')).sort();
    expect(rpmFiles.filter((p) => debFiles.includes(p))).to.deep.equal(debFiles);
    const again = await runVdeploy(['package', '--version', '2.1', '--iteration', '3', '--out', 'again'], { cwd: dir });
    expect(again.exitCode, again.stderr).to.equal(0);
    expect(again.stdout.trim()).to.match(new RegExp(`^${join(dir, 'again')}/vdeploy-pkgcli-test_2\\.1-3_all\\.deb  [0-9.]+ [KM]iB  sha256:${result.written[0]!.sha256}$`));
  });

  describe('buildOn: the venv built on a host over SSH', () => {
    let fleet: Fleet;
    before(async () => {
      fleet = await startFleet({ hosts: 1, lightShell: true });
    });
    after(async () => {
      await fleet?.stop();
    });

    it('builds there, downloads it, and no build path of either side remains in the .deb', async () => {
      const h = fleet.hosts[0]!;
      const dir = await makeTempDir();
      const config = {
        ssh: { knownHosts: fleet.knownHostsPath, identityFile: fleet.clientKeyPath },
        hosts: [{ name: h.name, address: h.address, port: h.port, user: fleet.user }],
        venvs: [{ host: h.name, path: '/srv/app' }],
        packages: [{ ...PKG, venv: `${h.name}:/srv/app`, buildOn: h.name }],
      };
      await writeFile(join(dir, 'deployfile.mjs'), `export default ${JSON.stringify(config)};\n`);
      await writeFile(join(dir, 'requirements.txt'), 'sqlparse\n');
      await addWheels(join(dir, 'wheels'), [sharedWheel('sqlparse-0.6.0-py3-none-any.whl')]);
      const r = await runVdeploy(['package', '--version', '1.0', '--out', 'out'], { cwd: dir, env: { SSH_AUTH_SOCK: '' } });
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stderr).to.match(new RegExp(`relocate: .*${h.address.replace(/\./g, '\\.')}.*:/tmp/vdeploy-package-\\w+/venv → /opt/vdeploy-pkgcli-test/venv`));
      const x = join(dir, 'x');
      await run('dpkg-deb', ['-x', join(dir, 'out', 'vdeploy-pkgcli-test_1.0-1_all.deb'), x]);
      const grep = await run('grep', ['-rl', 'vdeploy-package-', x]).then((g) => g.stdout, () => '');
      expect(grep).to.equal('');
      const script = await run('cat', [join(x, 'opt/vdeploy-pkgcli-test/venv/bin/sqlformat')]);
      expect(script.stdout.split('\n')[0]).to.match(/^#!\/opt\/vdeploy-pkgcli-test\/venv\/bin\/python3?$/);
      // Nothing left on the build host (the fleet host shares this machine's /tmp: look for this build's directory only).
      const remote = /:(\/tmp\/vdeploy-package-\w+)\/venv →/.exec(r.stderr)![1]!;
      const left = await fleet.exec(h, ['ls', '-d', remote], { nothrow: true });
      expect(left.exitCode).to.not.equal(0);
    });
  });
});
