import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFile, copyFile, mkdir, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readReleaseLog } from '../../src/wheels/release-log.js';
import { addWheels, listWheels, releasedWheels, type AddWheelResult } from '../../src/wheels/repository.js';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir } from '../helpers/cli.js';
import { REPO_ROOT, SHARED_WHEELS } from '../helpers/paths.js';

const T0 = '2025-03-01T10:00:00.000Z';
const clock = (iso = T0) => () => new Date(iso);
const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

async function logLines(repo: string): Promise<string[]> {
  return (await readFile(join(repo, 'release_log'), 'utf8')).split('\n').filter((l) => l !== '');
}

describe('wheel repository', () => {
  let tmp: string;
  let repo: string;
  let dist: string;
  beforeEach(async () => {
    tmp = await makeTempDir('vdeploy-repo-');
    repo = join(tmp, 'wheels');
    dist = join(tmp, 'dist');
  });
  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  describe('addWheels', () => {
    it('records the commit a wheel was built from; the same bytes again keep the first line and its commit', async () => {
      const [c1, c2] = ['1'.repeat(40), '2'.repeat(40)];
      const w = await buildWheel(dist, { name: 'app', version: '1.0' });
      const [r] = await addWheels(repo, [w], { now: clock(), commit: c1 });
      expect(r).to.include({ status: 'added', commit: c1 });
      expect(await logLines(repo)).to.deep.equal([`release: app==1.0 app-1.0-py3-none-any.whl at ${T0} sha256=${await sha256(w)} commit=${c1}`]);
      const [again] = await addWheels(repo, [w], { now: clock(), commit: c2 });
      expect(again).to.include({ status: 'already-present', commit: c1 });
      expect(await logLines(repo)).to.have.length(1);
      expect((await releasedWheels(repo))[0]).to.include({ commit: c1 });
      const listing = await listWheels(repo);
      expect(listing.packages[0]!.versions[0]).to.include({ commit: c1 });
    });

    it('creates a missing repository, copies the wheel and logs a release line with its sha256', async () => {
      const w = await buildWheel(dist, { name: 'app', version: '1.0' });
      const [r] = await addWheels(repo, [w], { now: clock() });
      const sum = await sha256(w);
      expect(r).to.deep.equal({
        file: w,
        status: 'added',
        filename: 'app-1.0-py3-none-any.whl',
        name: 'app',
        version: '1.0',
        sha256: sum,
        warnings: [],
      });
      expect(await readFile(join(repo, 'app-1.0-py3-none-any.whl'))).to.deep.equal(await readFile(w));
      expect(await logLines(repo)).to.deep.equal([`release: app==1.0 app-1.0-py3-none-any.whl at ${T0} sha256=${sum}`]);
      // No temp files or lock left behind.
      expect((await readdir(repo)).sort()).to.deep.equal(['app-1.0-py3-none-any.whl', 'release_log']);
    });

    it('the same filename with the same bytes is already present: no copy, no new line', async () => {
      const w = await buildWheel(dist, { name: 'app', version: '1.0' });
      await addWheels(repo, [w]);
      const before = await stat(join(repo, 'app-1.0-py3-none-any.whl'));
      const [again, twice] = await addWheels(repo, [w, w]);
      expect(again!.status).to.equal('already-present');
      expect(twice!.status).to.equal('already-present');
      expect((await stat(join(repo, 'app-1.0-py3-none-any.whl'))).mtimeMs).to.equal(before.mtimeMs);
      expect(await logLines(repo)).to.have.length(1);
    });

    it('the same filename with different bytes is refused unless force, which replaces it and logs the new sha256', async () => {
      const v1 = await buildWheel(join(dist, 'a'), { name: 'app', version: '1.0' });
      const v1b = await buildWheel(join(dist, 'b'), { name: 'app', version: '1.0', files: { 'app/__init__.py': 'REBUILT = True\n' } });
      await addWheels(repo, [v1], { now: clock() });

      const [refused] = await addWheels(repo, [v1b]);
      expect(refused).to.include({ status: 'refused', name: 'app', version: '1.0', filename: 'app-1.0-py3-none-any.whl' });
      expect(refused!.reason).to.equal(`${v1b}: differs from the wheel already in the repository as app-1.0-py3-none-any.whl; pass --force to replace it`);
      expect(refused!.hint).to.be.a('string');
      expect(await readFile(join(repo, 'app-1.0-py3-none-any.whl'))).to.deep.equal(await readFile(v1));
      expect(await logLines(repo)).to.have.length(1);

      const [replaced] = await addWheels(repo, [v1b], { force: true, now: clock('2025-03-02T00:00:00.000Z') });
      expect(replaced!.status).to.equal('replaced');
      expect(await readFile(join(repo, 'app-1.0-py3-none-any.whl'))).to.deep.equal(await readFile(v1b));
      const lines = await logLines(repo);
      expect(lines).to.have.length(2);
      expect(lines[1]).to.equal(`release: app==1.0 app-1.0-py3-none-any.whl at 2025-03-02T00:00:00.000Z sha256=${await sha256(v1b)}`);
      // The later line supersedes the earlier one.
      const listing = await listWheels(repo);
      expect(listing.packages[0]!.versions).to.deep.equal([
        { version: '1.0', filename: 'app-1.0-py3-none-any.whl', addedAt: '2025-03-02T00:00:00.000Z', sha256: await sha256(v1b), present: true },
      ]);
    });

    it('accepts a version older than the newest with a warning (rollbacks need old versions)', async () => {
      const v2 = await buildWheel(dist, { name: 'App', version: '2.0' });
      const v1 = await buildWheel(dist, { name: 'app', version: '1.9' });
      const v3 = await buildWheel(dist, { name: 'app', version: '2.0.1' });
      const [, older, newer] = await addWheels(repo, [v2, v1, v3]);
      expect(older!.status).to.equal('added');
      expect(older!.warnings).to.deep.equal(['app 1.9 is older than 2.0, already in the repository (kept: rollbacks need old versions)']);
      expect(newer!.warnings).to.deep.equal([]);
    });

    it('refuses bad inputs one by one, in order, without stopping the good ones', async () => {
      const good1 = await buildWheel(join(dist, 'g1'), { name: 'one', version: '1.0' });
      const bad = await buildWheel(join(dist, 'bad'), { name: 'two', version: '1.0', corrupt: 'record-hash' });
      const good2 = await buildWheel(join(dist, 'g2'), { name: 'three', version: '1.0' });
      const missing = join(dist, 'four-1.0-py3-none-any.whl');
      const misnamed = join(dist, 'five.whl');
      await copyFile(good1, misnamed);
      const results = await addWheels(repo, [good1, bad, missing, good2, misnamed]);
      expect(results.map((r) => [basename(r.file), r.status])).to.deep.equal([
        ['one-1.0-py3-none-any.whl', 'added'],
        ['two-1.0-py3-none-any.whl', 'refused'],
        ['four-1.0-py3-none-any.whl', 'refused'],
        ['three-1.0-py3-none-any.whl', 'added'],
        ['five.whl', 'refused'],
      ]);
      const refused = results.filter((r) => r.status === 'refused');
      expect(refused.map((r) => r.reason)).to.deep.equal([
        `${bad}: RECORD hash mismatch for two/__init__.py`,
        `${missing}: no such file`,
        `${misnamed}: not a PEP 427 wheel filename: 1 dash-separated part, expected name-version(-build)-pytag-abitag-platform.whl`,
      ]);
      for (const r of refused) expect(r.hint).to.be.a('string').and.not.be.empty;
      expect((await readdir(repo)).filter((f) => f.endsWith('.whl')).sort()).to.deep.equal(['one-1.0-py3-none-any.whl', 'three-1.0-py3-none-any.whl']);
      expect(await logLines(repo)).to.have.length(2);
    });

    it('touches nothing when every wheel is refused', async () => {
      const bad = await buildWheel(dist, { name: 'x', version: '1.0', corrupt: 'not-zip' });
      const results = await addWheels(repo, [bad]);
      expect(results[0]!.status).to.equal('refused');
      expect(results[0]!.reason).to.match(/not a readable zip archive/);
      await stat(repo).then(
        () => expect.fail('repository was created'),
        (e: NodeJS.ErrnoException) => expect(e.code).to.equal('ENOENT'),
      );
    });

    it('records a wheel whose copy landed but whose release line did not (crash between the two)', async () => {
      const w = await buildWheel(dist, { name: 'app', version: '1.0' });
      await mkdir(repo);
      await copyFile(w, join(repo, basename(w)));
      const [r] = await addWheels(repo, [w]);
      expect(r!.status).to.equal('added');
      expect(await logLines(repo)).to.have.length(1);
    });

    it('restores a released wheel whose file went missing; refuses different bytes for it unless force', async () => {
      const w = await buildWheel(join(dist, 'a'), { name: 'app', version: '1.0' });
      const other = await buildWheel(join(dist, 'b'), { name: 'app', version: '1.0', files: { 'app/__init__.py': 'OTHER = 1\n' } });
      await addWheels(repo, [w]);
      await unlink(join(repo, basename(w)));
      expect((await listWheels(repo)).packages[0]!.versions[0]!.present).to.equal(false);

      const [clash] = await addWheels(repo, [other]);
      expect(clash!.status).to.equal('refused');
      expect(clash!.reason).to.match(/differs from the wheel already in the repository/);

      const [restored] = await addWheels(repo, [w]);
      expect(restored!.status).to.equal('added');
      expect((await listWheels(repo)).packages[0]!.versions[0]!.present).to.equal(true);
    });

    it('repairs a torn release_log tail first, with a warning, keeping every good line', async () => {
      const w1 = await buildWheel(dist, { name: 'app', version: '1.0' });
      const w2 = await buildWheel(dist, { name: 'app', version: '1.1' });
      await addWheels(repo, [w1]);
      const good = await readFile(join(repo, 'release_log'), 'utf8');
      await appendFile(join(repo, 'release_log'), 'release: app==1.1 app-1.1-py3-no');
      const [r] = await addWheels(repo, [w2]);
      expect(r!.status).to.equal('added');
      expect(r!.warnings).to.have.length(1);
      expect(r!.warnings[0]).to.match(/^release_log ended in a torn line \(an interrupted write\); moved it to .*release_log\.torn-/);
      const after = await readFile(join(repo, 'release_log'), 'utf8');
      expect(after.startsWith(good)).to.equal(true);
      expect(await logLines(repo)).to.have.length(2);
    });

    it('adds all the shared real wheels', async () => {
      const files = (await readdir(SHARED_WHEELS)).filter((f) => f.endsWith('.whl')).map((f) => join(SHARED_WHEELS, f));
      const results = await addWheels(repo, files);
      expect(results.map((r) => r.status)).to.deep.equal(files.map(() => 'added'));
      const django = results.find((r) => r.filename === 'django-5.2.17-py3-none-any.whl')!;
      expect(django).to.include({ name: 'Django', version: '5.2.17', sha256: 'f04fb3b36ee119e1af4fa1d397d5fd6cf12700f49321e84d4f4c642c5b1973db' });
      const listing = await listWheels(repo);
      expect(listing.warnings).to.deep.equal([]);
      expect(listing.packages.map((p) => p.name)).to.deep.equal([
        'asgiref',
        'certifi',
        'charset-normalizer',
        'Django',
        'gunicorn',
        'idna',
        'Jinja2',
        'MarkupSafe',
        'packaging',
        'requests',
        'sqlparse',
        'typing_extensions',
        'tzdata',
        'urllib3',
      ]);
    });
  });

  describe('listWheels and releasedWheels', () => {
    it('an empty or missing repository lists nothing', async () => {
      expect(await listWheels(repo)).to.deep.equal({ packages: [], warnings: [] });
      expect(await releasedWheels(repo)).to.deep.equal([]);
    });

    it('sorts packages by normalized name and versions newest first (PEP 440), from the release lines', async () => {
      await mkdir(repo);
      const sha = (c: string) => c.repeat(64);
      await writeFile(
        join(repo, 'release_log'),
        [
          `release: zeta==1.0 zeta-1.0-py3-none-any.whl at 2024-01-01T00:00:00`, // an old line: no sha256
          `release: app==1.9 app-1.9-py3-none-any.whl at 2025-01-01T00:00:00.000Z sha256=${sha('1')}`,
          `install: web1:/srv/v: app-1.9-py3-none-any.whl at 2025-01-01T00:01:00.000Z`,
          `release: app==1.10 app-1.10-py3-none-any.whl at 2025-01-02T00:00:00.000Z sha256=${sha('2')}`,
          `release: App==1.10rc1 app-1.10rc1-py3-none-any.whl at 2025-01-03T00:00:00.000Z sha256=${sha('3')}`,
          `error: something failed`,
          `release: Beta_Pkg==0.1 beta_pkg-0.1-py3-none-any.whl at 2025-01-04T00:00:00.000Z sha256=${sha('4')}`,
          '',
        ].join('\n'),
      );
      for (const f of ['app-1.10-py3-none-any.whl', 'app-1.9-py3-none-any.whl', 'beta_pkg-0.1-py3-none-any.whl', 'stray-1.0-py3-none-any.whl'])
        await writeFile(join(repo, f), 'x');
      const listing = await listWheels(repo);
      expect(listing.packages.map((p) => [p.name, p.newest, p.versions.map((v) => v.version)])).to.deep.equal([
        ['App', '1.10', ['1.10', '1.10rc1', '1.9']],
        ['Beta_Pkg', '0.1', ['0.1']],
        ['zeta', '1.0', ['1.0']],
      ]);
      expect(listing.packages[0]!.versions.map((v) => v.present)).to.deep.equal([true, false, true]);
      expect(listing.packages[2]!.versions[0]).to.deep.equal({
        version: '1.0',
        filename: 'zeta-1.0-py3-none-any.whl',
        addedAt: '2024-01-01T00:00:00',
        present: false,
      });
      expect(listing.warnings).to.deep.equal([
        `${join(repo, 'stray-1.0-py3-none-any.whl')} has no release line in release_log; add it with add-wheel to record it`,
      ]);

      const released = await releasedWheels(repo);
      expect(released.map((r) => [r.normalizedName, r.version, r.lineNumber])).to.deep.equal([
        ['zeta', '1.0', 1],
        ['app', '1.9', 2],
        ['app', '1.10', 4],
        ['app', '1.10rc1', 5],
        ['beta-pkg', '0.1', 7],
      ]);
      expect(released[1]).to.deep.include({ sha256: sha('1'), addedAt: '2025-01-01T00:00:00.000Z', filename: 'app-1.9-py3-none-any.whl' });
      expect(released[1]!.wheel.pythonTags).to.deep.equal(['py3']);
    });

    it('warns about a torn tail instead of failing', async () => {
      const w = await buildWheel(dist, { name: 'app', version: '1.0' });
      await addWheels(repo, [w]);
      await appendFile(join(repo, 'release_log'), 'release: app==1.1 app-1');
      const listing = await listWheels(repo);
      expect(listing.packages).to.have.length(1);
      expect(listing.warnings).to.deep.equal([
        `${join(repo, 'release_log')}:2: torn last line (an interrupted write), ignored; the next add-wheel moves it aside`,
      ]);
    });
  });

  it('two concurrent addWheels processes lose and interleave nothing; a shared wheel is added once', async () => {
    const batch = async (who: string) => {
      const files: string[] = [];
      for (let i = 0; i < 20; i++) files.push(await buildWheel(join(dist, who), { name: `pkg_${who}`, version: `${i}.0` }));
      return files;
    };
    const shared = await buildWheel(join(dist, 'shared'), { name: 'shared', version: '1.0' });
    const [a, b] = [await batch('a'), await batch('b')];
    const script = join(tmp, 'adder.mts');
    const repository = pathToFileURL(join(REPO_ROOT, 'src', 'wheels', 'repository.ts')).href;
    await writeFile(
      script,
      `import { addWheels } from ${JSON.stringify(repository)};
const [repo, ...files] = process.argv.slice(2);
const results = [];
// One call per wheel: each takes the lock separately, so the two processes really interleave.
for (const f of files) results.push(...(await addWheels(repo, [f])));
console.log(JSON.stringify(results));
`,
    );
    const run = (files: string[]) =>
      new Promise<AddWheelResult[]>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', script, repo, ...files], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
        child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as AddWheelResult[]) : reject(new Error(`adder exited ${code}: ${err}`))));
      });
    const [ra, rb] = await Promise.all([run([...a.slice(0, 10), shared, ...a.slice(10)]), run([...b.slice(0, 10), shared, ...b.slice(10)])]);
    const sharedStatuses = [ra, rb].map((rs) => rs.find((r) => r.name === 'shared')!.status).sort();
    expect(sharedStatuses).to.deep.equal(['added', 'already-present']);
    expect([...ra, ...rb].filter((r) => r.name !== 'shared').every((r) => r.status === 'added')).to.equal(true);

    const { entries, tornTail } = await readReleaseLog(repo);
    expect(tornTail).to.equal(undefined);
    expect(entries).to.have.length(41);
    expect(new Set(entries.map((e) => (e.kind === 'release' ? e.filename : e.kind))).size).to.equal(41);
    for (const e of entries) {
      if (e.kind !== 'release') expect.fail(`unexpected ${e.kind} line`);
      expect(e.sha256).to.equal(await sha256(join(repo, e.filename)));
    }
    expect((await readdir(repo)).filter((f) => f.endsWith('.whl'))).to.have.length(41);
    expect((await readdir(repo)).filter((f) => f.startsWith('.'))).to.deep.equal([]);
  });
});
