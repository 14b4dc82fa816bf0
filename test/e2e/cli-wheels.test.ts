// `vdeploy add-wheel` and `vdeploy wheels` through the built binary, on the shared real wheels and on
// small wheels built (and broken) by the test.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir, runVdeploy } from '../helpers/cli.js';
import { CLI_BIN, SHARED_WHEELS } from '../helpers/paths.js';

async function sharedWheelFiles(): Promise<string[]> {
  return (await readdir(SHARED_WHEELS)).filter((f) => f.endsWith('.whl')).map((f) => join(SHARED_WHEELS, f));
}

function releaseLines(log: string): string[] {
  return log.split('\n').filter((l) => l.startsWith('release: '));
}

describe('vdeploy add-wheel / wheels', () => {
  it('adds every shared real wheel, records it, and lists it', async () => {
    const dir = await makeTempDir();
    const wheels = await sharedWheelFiles();
    expect(wheels.length).to.be.greaterThanOrEqual(14);
    const r = await runVdeploy(['add-wheel', ...wheels], { cwd: dir });
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stdout).to.include(`${wheels.length} wheels: ${wheels.length} added, 0 already present, 0 refused`);
    const repo = join(dir, 'wheels');
    for (const w of wheels) expect(await readFile(join(repo, basename(w)))).to.deep.equal(await readFile(w));
    const lines = releaseLines(await readFile(join(repo, 'release_log'), 'utf8'));
    expect(lines).to.have.length(wheels.length);
    expect(lines.find((l) => l.includes('django-5.2.17-py3-none-any.whl'))).to.match(
      /^release: [Dd]jango==5\.2\.17 django-5\.2\.17-py3-none-any\.whl at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z sha256=f04fb3b36ee119e1af4fa1d397d5fd6cf12700f49321e84d4f4c642c5b1973db$/,
    );

    const list = await runVdeploy(['wheels', '--json'], { cwd: dir });
    expect(list.exitCode, list.stderr).to.equal(0);
    const listing = JSON.parse(list.stdout) as { packages: Array<{ name: string; versions: Array<{ version: string }> }> };
    expect(listing.packages.map((p) => p.name.toLowerCase())).to.include.members(['django', 'gunicorn', 'charset-normalizer']);
    const table = await runVdeploy(['wheels'], { cwd: dir });
    expect(table.stdout).to.match(/[Dd]jango\s+5\.2\.17\s+newest/);

    // Again: nothing changes, nothing is logged twice.
    const again = await runVdeploy(['add-wheel', wheels[0]!], { cwd: dir });
    expect(again.exitCode).to.equal(0);
    expect(again.stdout).to.match(/present/);
    expect(releaseLines(await readFile(join(repo, 'release_log'), 'utf8'))).to.have.length(wheels.length);
  });

  it('refuses each broken wheel with one line naming it, still adds the good ones, exits 1', async () => {
    const dir = await makeTempDir();
    const src = join(dir, 'dist');
    const good = await buildWheel(src, { name: 'goodapp', version: '1.0' });
    const broken = {
      'record-hash': /RECORD|hash/i,
      'no-record': /RECORD/,
      'metadata-version': /[Vv]ersion/,
      'metadata-name': /[Nn]ame/,
      'not-zip': /zip/i,
      'unlisted-file': /RECORD|not listed/i,
    } as const;
    const files: string[] = [good];
    for (const kind of Object.keys(broken) as Array<keyof typeof broken>) {
      files.push(await buildWheel(join(src, kind), { name: `bad_${kind.replace('-', '_')}`, version: '1.0', corrupt: kind }));
    }
    const notAWheel = join(src, 'README.txt');
    await writeFile(notAWheel, 'hello');
    const badName = join(src, 'app-1.0.whl');
    await copyFile(good, badName);
    // (A file that does not exist is a usage error before anything is checked: see the last tests.)
    files.push(notAWheel, badName);

    const r = await runVdeploy(['add-wheel', ...files], { cwd: dir });
    expect(r.exitCode).to.equal(1);
    expect(r.stdout).to.match(/added\s+goodapp==1\.0/);
    const refused = r.stderr.split('\n').filter((l) => l.startsWith('refused: '));
    expect(refused).to.have.length(files.length - 1);
    for (const [i, kind] of (Object.keys(broken) as Array<keyof typeof broken>).entries()) {
      const line = refused[i]!;
      expect(line).to.include(basename(files[i + 1]!));
      expect(line).to.match(broken[kind]);
    }
    expect(refused.join('\n')).to.include('README.txt');
    expect(refused.join('\n')).to.include('app-1.0.whl');
    const repoFiles = (await readdir(join(dir, 'wheels'))).filter((f) => f.endsWith('.whl'));
    expect(repoFiles).to.deep.equal([basename(good)]);
    expect(releaseLines(await readFile(join(dir, 'wheels', 'release_log'), 'utf8'))).to.have.length(1);
  });

  it('refuses the same filename with different bytes unless --force; warns on an older version', async () => {
    const dir = await makeTempDir();
    const v2 = await buildWheel(join(dir, 'a'), { name: 'app', version: '2.0' });
    const v2b = await buildWheel(join(dir, 'b'), { name: 'app', version: '2.0', files: { 'app/__init__.py': 'X = 2\n' } });
    const v1 = await buildWheel(join(dir, 'c'), { name: 'app', version: '1.0' });
    expect((await runVdeploy(['add-wheel', v2], { cwd: dir })).exitCode).to.equal(0);

    const clash = await runVdeploy(['add-wheel', v2b], { cwd: dir });
    expect(clash.exitCode).to.equal(1);
    expect(clash.stderr).to.match(/refused: .*app-2\.0-py3-none-any\.whl.*differs/);
    expect(clash.stderr).to.match(/--force/);
    const repoWheel = join(dir, 'wheels', 'app-2.0-py3-none-any.whl');
    expect(await readFile(repoWheel)).to.deep.equal(await readFile(v2));

    const forced = await runVdeploy(['add-wheel', '--force', v2b], { cwd: dir });
    expect(forced.exitCode, forced.stderr).to.equal(0);
    expect(forced.stdout).to.match(/replaced/);
    expect(await readFile(repoWheel)).to.deep.equal(await readFile(v2b));

    const older = await runVdeploy(['add-wheel', v1], { cwd: dir });
    expect(older.exitCode, older.stderr).to.equal(0);
    expect(older.stderr).to.match(/warning: .*older than/);
    const list = JSON.parse((await runVdeploy(['wheels', '--json'], { cwd: dir })).stdout) as {
      packages: Array<{ versions: Array<{ version: string }> }>;
    };
    expect(list.packages[0]!.versions.map((v) => v.version)).to.deep.equal(['2.0', '1.0']);
  });

  it('uses the deployfile repository, and --repo overrides it', async () => {
    const dir = await makeTempDir();
    await writeFile(join(dir, 'deployfile.ts'), `export default { wheels: './repo', hosts: [{ name: 'h' }] };\n`);
    const w = await buildWheel(join(dir, 'dist'), { name: 'app', version: '1.0' });
    expect((await runVdeploy(['add-wheel', w], { cwd: dir })).exitCode).to.equal(0);
    expect(await readdir(join(dir, 'repo'))).to.include('app-1.0-py3-none-any.whl');
    expect((await runVdeploy(['add-wheel', '--repo', join(dir, 'other'), w], { cwd: dir })).exitCode).to.equal(0);
    expect(await readdir(join(dir, 'other'))).to.include('app-1.0-py3-none-any.whl');
  });

  it('a corrupt line in the middle of release_log is a hard error naming the line', async () => {
    const dir = await makeTempDir();
    const w = await buildWheel(join(dir, 'dist'), { name: 'app', version: '1.0' });
    await runVdeploy(['add-wheel', w], { cwd: dir });
    const log = join(dir, 'wheels', 'release_log');
    const good = await readFile(log, 'utf8');
    await writeFile(log, `${good}this is not a log line\n${good}`);
    const r = await runVdeploy(['wheels'], { cwd: dir });
    expect(r.exitCode).to.equal(1);
    expect(r.stderr).to.match(/release_log:2: /);
  });

  it('a torn last line is reported, and repaired by the next add-wheel without losing good lines', async () => {
    const dir = await makeTempDir();
    const w1 = await buildWheel(join(dir, 'd1'), { name: 'app', version: '1.0' });
    const w2 = await buildWheel(join(dir, 'd2'), { name: 'app', version: '1.1' });
    await runVdeploy(['add-wheel', w1], { cwd: dir });
    const log = join(dir, 'wheels', 'release_log');
    const good = await readFile(log, 'utf8');
    await writeFile(log, `${good}release: app==1.1 app-1.1-py3-no`);
    const list = await runVdeploy(['wheels'], { cwd: dir });
    expect(list.exitCode).to.equal(0);
    expect(list.stderr).to.match(/warning: .*torn|incomplete/i);
    const add = await runVdeploy(['add-wheel', w2], { cwd: dir });
    expect(add.exitCode, add.stderr).to.equal(0);
    const after = await readFile(log, 'utf8');
    expect(after.startsWith(good)).to.equal(true);
    expect(releaseLines(after)).to.have.length(2);
    expect(after.endsWith('\n')).to.equal(true);
  });

  it('two concurrent add-wheel processes on one repository lose and interleave nothing', async () => {
    const dir = await makeTempDir();
    const batch = async (tag: string) => {
      const files: string[] = [];
      for (let i = 0; i < 15; i++) files.push(await buildWheel(join(dir, `${tag}${i}`), { name: `pkg_${tag}_${i}`, version: '1.0' }));
      return files;
    };
    const [a, b] = await Promise.all([batch('a'), batch('b')]);
    const run = (files: string[]) =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, [CLI_BIN, 'add-wheel', ...files], { cwd: dir, stdio: 'ignore' });
        child.on('close', resolve);
      });
    const codes = await Promise.all([run(a), run(b), ...a.map((f) => run([f]))]);
    expect(codes.every((c) => c === 0), String(codes)).to.equal(true);
    const log = await readFile(join(dir, 'wheels', 'release_log'), 'utf8');
    const lines = log.split('\n').filter(Boolean);
    expect(lines.every((l) => /^release: pkg_[ab]_\d+==1\.0 pkg_[ab]_\d+-1\.0-py3-none-any\.whl at \S+ sha256=[0-9a-f]{64}$/.test(l)), log).to.equal(true);
    expect(new Set(lines.map((l) => l.split(' ')[1])).size).to.equal(30);
    expect(lines).to.have.length(30);
  });

  it('add-wheel killed mid-copy: the next one says whose lock it waits for, then removes the leftover temporary file', async () => {
    const dir = await makeTempDir();
    const repo = join(dir, 'wheels');
    // Random data does not compress: copying it takes long enough to be caught with the temp file there.
    const big = await buildWheel(join(dir, 'big'), { name: 'bigwheel', version: '1.0', files: { 'bigwheel/blob.txt': randomBytes(48 * 1024 * 1024).toString('base64') } });
    // Built before the kill: the dead add-wheel's lock goes stale 10 s after it, and then nothing waits.
    const small = await buildWheel(join(dir, 'small'), { name: 'smallwheel', version: '1.0' });
    let killedPid: number | undefined;
    for (let attempt = 0; attempt < 5 && killedPid === undefined; attempt++) {
      const child = spawn(process.execPath, [CLI_BIN, 'add-wheel', big], { cwd: dir, stdio: 'ignore' });
      const exited = new Promise((resolve) => child.on('close', resolve));
      let done = false;
      void exited.then(() => (done = true));
      while (!done) {
        if (existsSync(repo) && readdirSync(repo).some((f) => f.endsWith('.tmp'))) {
          child.kill('SIGKILL');
          killedPid = child.pid;
          break;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
      await exited;
      // Too quick to catch: undo it and try again.
      if (killedPid === undefined) await rm(repo, { recursive: true, force: true });
    }
    expect(killedPid, 'caught add-wheel mid-copy').to.be.a('number');
    const leftover = readdirSync(repo).filter((f) => f.endsWith('.tmp'));
    expect(leftover).to.have.length(1);
    expect(leftover[0]).to.include(`.${killedPid}.`);
    // A temporary file of a live process (this test's) is never touched.
    const live = `.other-1.0-py3-none-any.whl.${process.pid}.0123abcd.tmp`;
    await writeFile(join(repo, live), 'being written');

    const r = await runVdeploy(['add-wheel', small], { cwd: dir });
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stderr).to.match(
      new RegExp(`^waiting for the repository lock held by pid ${killedPid} since \\d\\d:\\d\\d:\\d\\d \\(that process is gone; its lock is taken over at \\d\\d:\\d\\d:\\d\\d\\)$`, 'm'),
    );
    expect(r.stderr).to.include(`removed ${join(repo, leftover[0]!)}, a temporary file left by add-wheel (pid ${killedPid}) stopped mid-copy`);
    expect(r.stdout).to.match(/added\s+smallwheel==1\.0/);
    expect(readdirSync(repo).filter((f) => f.startsWith('.')).sort()).to.deep.equal([live]);
  });
});

describe('vdeploy add-wheel: arguments that are not files', () => {
  it('a shell glob that matched nothing says no such file (not a bad wheel name); nothing is added', async () => {
    const dir = await makeTempDir();
    const good = join(dir, 'idna-3.20-py3-none-any.whl');
    await copyFile(join(SHARED_WHEELS, 'idna-3.20-py3-none-any.whl'), good);
    // What `vdeploy add-wheel dist/*.whl` receives from the shell when dist/ has no wheel.
    const r = await runVdeploy(['add-wheel', good, 'dist/*.whl'], { cwd: dir });
    expect(r.exitCode, r.stderr).to.equal(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).to.equal('error: dist/*.whl: no such file (a shell pattern that matched nothing is passed on as is); nothing was added');
    expect(lines[1]).to.match(/^hint: build the wheels first/);
    expect(r.stderr).not.to.match(/PEP 427|dash-separated/);
    expect(existsSync(join(dir, 'wheels'))).to.equal(false);
  });

  it('a directory says it is a directory', async () => {
    const dir = await makeTempDir();
    await mkdir(join(dir, 'dist'));
    const r = await runVdeploy(['add-wheel', 'dist'], { cwd: dir });
    expect(r.exitCode, r.stderr).to.equal(2);
    expect(r.stderr).to.equal('error: dist is a directory, not a wheel file; nothing was added\nhint: name the wheels in it, e.g. `vdeploy add-wheel dist/*.whl`\n');
  });
});
