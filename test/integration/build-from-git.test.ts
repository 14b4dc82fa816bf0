// buildWheel() with real git and a real pip (Debian's python3, --no-build-isolation, offline):
// reproducible bytes whatever the umask, the normalised zip, a project in a subdirectory, a branch of
// a cloned URL, and a directory built as it is.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import yauzl from 'yauzl';
import { buildWheel, type BuildOptions } from '../../src/build/build-wheel.js';
import { dosDateTime } from '../../src/build/normalize-wheel.js';
import { readReleaseLog } from '../../src/wheels/release-log.js';
import { makeTempDir } from '../helpers/cli.js';
import { BUILD_PYTHON, isolatedPipEnv, makeGitApp, type GitApp } from '../helpers/git-app.js';

describe('buildWheel (real git, real pip)', function () {
  this.timeout(300_000);
  let saved: NodeJS.ProcessEnv;
  let app: GitApp;
  let first: string;
  before(async () => {
    saved = { ...process.env };
    for (const [k, v] of Object.entries(isolatedPipEnv())) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
    app = await makeGitApp('shipit');
    first = await app.commit('1.0', { time: 1_790_000_000 });
  });
  after(() => {
    process.env = saved;
  });
  const build = async (repo: string, o: Partial<BuildOptions> = {}) =>
    buildWheel({ source: app.dir, ref: 'HEAD', python: BUILD_PYTHON, isolation: false, repo, ...o });

  it('the same commit under two umasks: byte-identical wheels, the second `already-present`', async () => {
    const repo = await makeTempDir('vdeploy-build-repo-');
    const a = await build(repo);
    expect(a.added.status).to.equal('added');
    expect(a.source).to.include({ kind: 'git', commit: first, committedAt: new Date(1_790_000_000_000).toISOString() });
    const bytes = await readFile(join(repo, a.added.filename!));
    const old = process.umask(0o002);
    let b;
    try {
      b = await build(repo);
    } finally {
      process.umask(old);
    }
    expect(b.added.status).to.equal('already-present');
    expect(b.added.sha256).to.equal(a.added.sha256);
    expect(createHash('sha256').update(bytes).digest('hex')).to.equal(a.added.sha256);
    const log = await readReleaseLog(repo);
    expect(log.entries).to.have.length(1);
    expect(log.entries[0]).to.include({ kind: 'release', name: 'shipit', version: '1.0', commit: first });
  });

  it("normalises the zip: the commit's time, 0644, package first and RECORD last", async () => {
    const repo = await makeTempDir('vdeploy-build-repo-');
    const r = await build(repo);
    const entries = await zipEntries(join(repo, r.added.filename!));
    const { time, date } = dosDateTime(1_790_000_000);
    expect(entries.map((e) => e.fileName)).to.deep.equal([
      'shipit/__init__.py',
      'shipit-1.0.dist-info/METADATA',
      'shipit-1.0.dist-info/WHEEL',
      'shipit-1.0.dist-info/top_level.txt',
      'shipit-1.0.dist-info/RECORD',
    ]);
    for (const e of entries) {
      expect([e.lastModFileTime, e.lastModFileDate], e.fileName).to.deep.equal([time, date]);
      expect((e.externalFileAttributes >>> 16) & 0o7777, e.fileName).to.equal(0o644);
      expect(e.extraFieldLength, e.fileName).to.equal(0);
    }
  });

  it('builds a project in a subdirectory of the repository, at a branch of a cloned URL', async () => {
    const mono = await makeGitApp('subapp', 'python/subapp');
    await mono.commit('0.1');
    await mono.git(['checkout', '--quiet', '-b', 'feature']);
    const feature = await mono.commit('0.2');
    await mono.git(['checkout', '--quiet', 'main']);
    const repo = await makeTempDir('vdeploy-build-repo-');
    const local = await buildWheel({ source: join(mono.dir, 'python', 'subapp'), ref: 'feature', python: BUILD_PYTHON, isolation: false, repo });
    expect(local.source).to.include({ commit: feature, subdirectory: 'python/subapp' });
    expect(local.added).to.include({ name: 'subapp', version: '0.2', status: 'added' });
    // The URL form: a fresh clone has `feature` only as origin/feature.
    const app2 = await makeTempDir('vdeploy-build-repo-');
    const url = await buildWheel({ source: `file://${app.dir}`, ref: 'main', python: BUILD_PYTHON, isolation: false, repo: app2 });
    expect(url.source).to.include({ kind: 'git', location: `file://${app.dir}`, commit: first });
  });

  it('a directory as it is: uncommitted changes built, and no commit recorded', async () => {
    await writeFile(join(app.dir, 'shipit', '__init__.py'), '__version__ = "1.0"\nDIRTY = True\n');
    try {
      const repo = await makeTempDir('vdeploy-build-repo-');
      const r = await buildWheel({ source: app.dir, python: BUILD_PYTHON, isolation: false, repo });
      expect(r.source).to.include({ kind: 'dir', uncommitted: true, head: first });
      expect(r.source).not.to.have.property('commit');
      expect(r.added).not.to.have.property('commit');
      expect((await readReleaseLog(repo)).entries[0]).not.to.have.property('commit');
    } finally {
      await app.git(['checkout', '--', '.']);
    }
  });
});

async function zipEntries(path: string): Promise<yauzl.Entry[]> {
  const zip = await yauzl.openPromise(path, { lazyEntries: true });
  const entries: yauzl.Entry[] = [];
  for await (const e of zip.eachEntry()) entries.push(e);
  zip.close();
  return entries;
}
