import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { VdeployError } from '../../src/errors.js';
import { LOCK_NAME, withRepoLock, type RepoLockWait } from '../../src/wheels/repo-lock.js';
import { makeTempDir } from '../helpers/cli.js';
import { REPO_ROOT } from '../helpers/paths.js';

describe('withRepoLock', () => {
  let repo: string;
  beforeEach(async () => {
    repo = join(await makeTempDir('vdeploy-lock-'), 'wheels');
  });
  afterEach(async () => {
    await rm(join(repo, '..'), { recursive: true, force: true });
  });

  it('creates the repository, runs fn holding .vdeploy.lock (its holder beside it), returns its value and releases', async () => {
    const value = await withRepoLock(repo, async () => {
      expect((await readdir(repo)).sort()).to.deep.equal([LOCK_NAME, `${LOCK_NAME}.owner`]);
      expect(JSON.parse(await readFile(join(repo, `${LOCK_NAME}.owner`), 'utf8'))).to.include({ pid: process.pid });
      return 42;
    });
    expect(value).to.equal(42);
    expect(await readdir(repo)).to.deep.equal([]);
  });

  it('releases when fn throws, and passes the error on', async () => {
    const boom = new Error('boom');
    await withRepoLock(repo, async () => {
      throw boom;
    }).then(
      () => expect.fail('should throw'),
      (e: unknown) => expect(e).to.equal(boom),
    );
    expect(await readdir(repo)).to.deep.equal([]);
  });

  it('a second holder waits for the first instead of failing', async () => {
    const order: string[] = [];
    const first = withRepoLock(repo, async () => {
      order.push('first in');
      await sleep(400);
      order.push('first out');
    });
    await sleep(50);
    const second = withRepoLock(repo, async () => {
      order.push('second in');
    });
    await Promise.all([first, second]);
    expect(order).to.deep.equal(['first in', 'first out', 'second in']);
  });

  it('gives up after waitMs with an error naming the lock file', async () => {
    let release!: () => void;
    const holder = withRepoLock(repo, () => new Promise<void>((r) => (release = r)));
    await sleep(50);
    const started = Date.now();
    const waits: RepoLockWait[] = [];
    const err = await withRepoLock(repo, async () => 'never', { waitMs: 300, onWait: (w) => waits.push(w) }).then(
      () => expect.fail('should time out'),
      (e: unknown) => e as VdeployError,
    );
    expect(Date.now() - started).to.be.within(250, 3000);
    expect(err).to.be.instanceOf(VdeployError);
    expect(err.message).to.equal(`${join(repo, LOCK_NAME)}: the wheel repository is locked by another vdeploy process (waited 300 ms)`);
    expect(err.hint).to.match(/killed process/);
    expect(waits).to.have.length(1);
    expect(waits[0]!.holder).to.include({ pid: process.pid });
    expect(waits[0]!.holderGone).to.equal(false);
    release();
    await holder;
  });

  it('takes over a stale lock (its holder stopped refreshing it) without manual cleanup', async () => {
    await mkdir(join(repo, LOCK_NAME), { recursive: true });
    const old = new Date(Date.now() - 60_000);
    await utimes(join(repo, LOCK_NAME), old, old);
    const started = Date.now();
    expect(await withRepoLock(repo, async () => 'mine', { waitMs: 1000 })).to.equal('mine');
    expect(Date.now() - started).to.be.below(1000);
  });

  it('takes over the lock of a process killed while holding it (after the 10 s stale time)', async function () {
    this.timeout(40_000);
    const lockModule = pathToFileURL(join(REPO_ROOT, 'src', 'wheels', 'repo-lock.ts')).href;
    // The holder must stay alive until killed: proper-lockfile's refresh timer is unref'd, so a bare
    // never-settling promise lets node exit by itself ("unsettled top-level await"), and its exit
    // handler removes the lock — under load, before the SIGKILL lands (a CI flake).
    const code = `const { withRepoLock } = await import(${JSON.stringify(lockModule)});
await withRepoLock(process.argv[1], async () => { console.log('locked'); await new Promise(() => setInterval(() => {}, 60_000)); });`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, repo], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
      child.on('error', reject);
      child.on('exit', (c) => reject(new Error(`lock holder exited early (${c})`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(await readdir(repo)).to.include(LOCK_NAME); // SIGKILL: no exit handler could remove it
    const started = Date.now();
    const waits: RepoLockWait[] = [];
    expect(await withRepoLock(repo, async () => 'taken over', { onWait: (w) => waits.push(w) })).to.equal('taken over');
    expect(Date.now() - started).to.be.below(15_000);
    expect(waits).to.have.length(1);
    expect(waits[0]!.holder).to.include({ pid: child.pid });
    expect(waits[0]!.holderGone).to.equal(true);
    expect(Date.parse(waits[0]!.staleAt!)).to.be.above(Date.now() - 60_000);
  });
});
