/**
 * updateAptRepo read by the real apt (issue 19): `apt-get update` over a scratch configuration (its own
 * sources list, lists and cache, passed with -o; the machine's apt configuration is never touched)
 * accepts the flat repository's Release and Packages, sees every version (older ones kept when a newer
 * one is added), `apt-get download` fetches a .deb whose checksums apt verified against the index, and
 * `apt-get install` installs from it (a package named vdeploy-test-apt-a-PID, purged in after()).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { expect } from 'chai';
import { updateAptRepo } from '../../src/package/apt-repo.js';
import { debFileName, writeDeb } from '../../src/package/deb.js';
import { makeTempDir } from '../helpers/cli.js';
import { syntheticTree, TEST_EPOCH } from '../helpers/deb-tree.js';

const exec = promisify(execFile);
const A = `vdeploy-test-apt-a-${process.pid}`;
const B = `vdeploy-test-apt-b-${process.pid}`;

describe('updateAptRepo (a flat repository read by apt-get)', function () {
  this.timeout(300_000);
  let dir: string;
  let repo: string;
  let aptArgs: string[];

  const buildDeb = async (name: string, version: string) => {
    const tree = syntheticTree({ name, version });
    const path = join(dir, 'build', debFileName(tree.meta));
    await writeFile(path, await writeDeb(tree));
    return path;
  };
  const apt = async (cmd: string, args: string[], cwd?: string) => {
    const r = await exec(cmd, [...aptArgs, ...args], { cwd, env: { ...process.env, LC_ALL: 'C' } });
    return r.stdout + r.stderr;
  };

  let installed = false;
  after(async () => {
    // Only the package this test installed, under its own name and /opt prefix.
    if (installed) await exec('dpkg', ['--purge', A], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).catch(() => undefined);
  });

  before(async () => {
    dir = await makeTempDir('vdeploy-apt-repo-');
    repo = join(dir, 'repo');
    const state = join(dir, 'apt');
    await mkdir(join(dir, 'build'));
    await mkdir(join(state, 'lists', 'partial'), { recursive: true });
    await mkdir(join(state, 'cache', 'archives', 'partial'), { recursive: true });
    await writeFile(join(state, 'sources.list'), `deb [trusted=yes] file:${repo} ./\n`);
    aptArgs = [
      '-o', `Dir::Etc::sourcelist=${join(state, 'sources.list')}`,
      '-o', 'Dir::Etc::sourceparts=-',
      '-o', `Dir::State::Lists=${join(state, 'lists')}`,
      '-o', `Dir::Cache=${join(state, 'cache')}`,
      '-o', 'Acquire::Languages=none',
      // The test's temp dirs are 0700: apt's downloader must not drop to the _apt user to read them.
      '-o', 'APT::Sandbox::User=root',
    ];
  });

  it('writes Packages, Packages.gz and Release that apt-get update accepts without a warning', async () => {
    const result = await updateAptRepo(repo, [await buildDeb(A, '1.0')], { epoch: TEST_EPOCH });
    expect(result.packages.map((p) => [p.name, p.version, p.architecture, p.file])).to.deep.equal([[A, '1.0-1', 'all', `${A}_1.0-1_all.deb`]]);
    expect(result.files.map((f) => f.slice(repo.length + 1))).to.deep.equal(['Packages', 'Packages.gz', 'Release']);
    const release = await readFile(join(repo, 'Release'), 'utf8');
    expect(release).to.match(/^Date: Tue, 14 Nov 2023 22:13:20 UTC$/m);
    expect(release).to.match(/^SHA256:\n [0-9a-f]{64} +\d+ Packages\n [0-9a-f]{64} +\d+ Packages.gz\n/m);
    expect(gunzipSync(await readFile(join(repo, 'Packages.gz'))).equals(await readFile(join(repo, 'Packages')))).to.equal(true);
    const out = await apt('apt-get', ['update']);
    expect(out).to.not.match(/^(W|E|Err):/m);
    expect(await apt('apt-cache', ['show', A])).to.match(new RegExp(`^Package: ${A}\nVersion: 1.0-1\n`, 'm'));
  });

  it('adding a newer version and another package keeps the older one installable', async () => {
    const first = join(repo, `${A}_1.0-1_all.deb`);
    const result = await updateAptRepo(repo, [await buildDeb(A, '1.1'), await buildDeb(B, '2.0')], { epoch: TEST_EPOCH + 60 });
    expect(result.packages.map((p) => `${p.name}=${p.version}`)).to.deep.equal([`${A}=1.0-1`, `${A}=1.1-1`, `${B}=2.0-1`]);
    const out = await apt('apt-get', ['update']);
    expect(out).to.not.match(/^(W|E|Err):/m);
    const policy = await apt('apt-cache', ['policy', A]);
    expect(policy).to.match(/Candidate: 1\.1-1/);
    expect(policy).to.match(/ 1\.0-1 500/);
    // apt-get download checks the file against Size and SHA256 of Packages before keeping it.
    const dl = join(dir, 'download');
    await mkdir(dl);
    await apt('apt-get', ['download', `${A}=1.0-1`, B], dl);
    expect((await readdir(dl)).sort()).to.deep.equal([`${A}_1.0-1_all.deb`, `${B}_2.0-1_all.deb`]);
    expect((await readFile(join(dl, `${A}_1.0-1_all.deb`))).equals(await readFile(first))).to.equal(true);
    const show = await apt('apt-cache', ['show', `${B}=2.0-1`]);
    expect(show).to.match(/^Description(-en)?: Synthetic package for the vdeploy tests$/m);
    expect(show).to.match(/^SHA256: [0-9a-f]{64}$/m);
  });

  it('apt-get installs the newest version from it, and an older one with --allow-downgrades (root)', async function () {
    if (process.getuid?.() !== 0) this.skip();
    installed = true;
    const install = (...args: string[]) =>
      apt('apt-get', ['-y', '-o', `Dir::State::extended_states=${join(dir, 'apt', 'extended_states')}`, '-o', 'DPkg::Lock::Timeout=300', 'install', ...args]);
    await install(A);
    expect((await exec(`/opt/${A}/bin/hello`)).stdout).to.equal('hello v1\n');
    expect((await exec('dpkg-query', ['-W', '-f', '${Version}', A])).stdout).to.equal('1.1-1');
    await install('--allow-downgrades', `${A}=1.0-1`);
    expect((await exec('dpkg-query', ['-W', '-f', '${Version}', A])).stdout).to.equal('1.0-1');
  });

  it('is reproducible: the same debs and date give the same index bytes', async () => {
    const before = await Promise.all(['Packages', 'Packages.gz', 'Release'].map((f) => readFile(join(repo, f))));
    await updateAptRepo(repo, [], { epoch: TEST_EPOCH + 60 });
    const after = await Promise.all(['Packages', 'Packages.gz', 'Release'].map((f) => readFile(join(repo, f))));
    expect(after.map((b, i) => b.equals(before[i]!))).to.deep.equal([true, true, true]);
  });

  it('indexes a .deb dpkg-deb built with gzip, and refuses one with an xz control archive, naming it', async () => {
    const C = `vdeploy-test-apt-c-${process.pid}`;
    const root = join(dir, 'c');
    await mkdir(join(root, 'DEBIAN'), { recursive: true });
    await writeFile(join(root, 'DEBIAN', 'control'), `Package: ${C}\nVersion: 3.0-1\nArchitecture: all\nMaintainer: t <t@example.com>\nDescription: built by dpkg-deb\n test\n`);
    await exec('dpkg-deb', ['-Zgzip', '--root-owner-group', '--build', root, join(repo, `${C}_3.0-1_all.deb`)]);
    // Built before the last update's date (SOURCE_DATE_EPOCH of an older release):
    const result = await updateAptRepo(repo, [], { epoch: TEST_EPOCH });
    expect(result.packages.map((p) => `${p.name}=${p.version}`)).to.include(`${C}=3.0-1`);
    // An older date than the last index's: apt would silently keep the old index, so the date stays.
    expect(await readFile(join(repo, 'Release'), 'utf8')).to.match(/^Date: Tue, 14 Nov 2023 22:14:20 UTC$/m);
    expect(await apt('apt-get', ['update'])).to.not.match(/^(W|E|Err):/m);
    expect(await apt('apt-cache', ['show', C])).to.match(/^Description(-en)?: built by dpkg-deb$/m);
    const xz = join(dir, `${C}_3.1-1_all.deb`);
    await exec('dpkg-deb', ['-Zxz', '--root-owner-group', '--build', root, xz]);
    let err: unknown;
    await updateAptRepo(repo, [xz], { epoch: TEST_EPOCH }).catch((e: unknown) => (err = e));
    expect(String(err)).to.include(`${xz} has a control.tar.xz, which vdeploy cannot read`);
    expect(existsSync(join(repo, `${C}_3.1-1_all.deb`)), 'the refused .deb was copied into the repository').to.equal(false);
  });

  it('refuses a file in the directory that is not a .deb, naming it', async () => {
    await writeFile(join(repo, 'broken.deb'), 'not an archive');
    let err: unknown;
    await updateAptRepo(repo, [], { epoch: TEST_EPOCH }).catch((e: unknown) => (err = e));
    expect(String(err)).to.include(`${join(repo, 'broken.deb')} is not an ar archive`);
  });
});
