import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { InterruptedError, RemoteCommandError, VdeployError } from '../../src/errors.js';
import { LocalConnection } from '../../src/remote/local-connection.js';
import { Semaphore } from '../../src/remote/semaphore.js';
import { rejection } from '../helpers/rejection.js';

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('LocalConnection', () => {
  const local = new LocalConnection();
  let dir: string;
  before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'vdeploy-local-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('has target "local"', () => expect(local.target).to.equal('local'));

  it('runs argv without a shell and collects stdout, stderr, exit code and time', async () => {
    const result = await local.exec(['sh', '-c', 'echo "$0"; echo err >&2', 'a $(b) ;c']);
    expect(result).to.include({ exitCode: 0, signal: null, stdout: 'a $(b) ;c\n', stderr: 'err\n' });
    expect(result.ms).to.be.a('number').and.at.least(0);
  });

  it('passes every argument verbatim', async () => {
    const args = ['', ' ', "it's", '$HOME', 'a\nb', '*'];
    const result = await local.exec(['printf', '%s|', ...args]);
    expect(result.stdout).to.equal(args.join('|') + '|');
  });

  it('rejects a non-zero exit with RemoteCommandError carrying the result', async () => {
    const err = await rejection(local.exec(['sh', '-c', 'echo out; echo boom >&2; exit 3']));
    expect(err).to.be.instanceOf(RemoteCommandError);
    const { result, command } = err as RemoteCommandError;
    expect(result).to.include({ exitCode: 3, stdout: 'out\n', stderr: 'boom\n' });
    expect(command).to.equal("sh -c 'echo out; echo boom >&2; exit 3'");
    expect(err.message).to.equal("`sh -c 'echo out; echo boom >&2; exit 3'` exited with 3: boom");
  });

  it('resolves a non-zero exit with nothrow', async () => {
    const result = await local.exec(['sh', '-c', 'exit 4'], { nothrow: true });
    expect(result.exitCode).to.equal(4);
  });

  it('reports death by signal', async () => {
    const err = (await rejection(local.exec(['sh', '-c', 'kill -TERM $$']))) as RemoteCommandError;
    expect(err.result).to.include({ exitCode: null, signal: 'SIGTERM' });
    expect(err.message).to.include('was killed by SIGTERM');
  });

  it('reports a missing program as exit 127, like a shell would', async () => {
    const err = (await rejection(local.exec(['/nonexistent/program']))) as RemoteCommandError;
    expect(err).to.be.instanceOf(RemoteCommandError);
    expect(err.result.exitCode).to.equal(127);
    expect(err.result.stderr).to.include('command not found');
    expect((await local.exec(['/nonexistent/program'], { nothrow: true })).exitCode).to.equal(127);
  });

  const stdinCases: Array<[string, string | Buffer | undefined, string]> = [
    ['a string', 'hello\nworld\n', 'hello\nworld\n'],
    ['a Buffer', Buffer.from('bytes ✓'), 'bytes ✓'],
    ['nothing (stdin closed at once)', undefined, ''],
  ];
  for (const [what, stdin, expected] of stdinCases) {
    it(`feeds ${what} to stdin`, async () => {
      expect((await local.exec(['cat'], { stdin })).stdout).to.equal(expected);
    });
  }

  it('does not fail when the command ignores a large stdin', async () => {
    const result = await local.exec(['true'], { stdin: 'x'.repeat(1 << 20) });
    expect(result.exitCode).to.equal(0);
  });

  it('adds env to the inherited environment', async () => {
    const result = await local.exec(['sh', '-c', 'echo "$VDEPLOY_T1|$PATH"'], { env: { VDEPLOY_T1: 'a b' } });
    expect(result.stdout).to.equal(`a b|${process.env.PATH}\n`);
  });

  it('kills a command that times out and rejects even with nothrow', async () => {
    const pidFile = path.join(dir, 'timeout.pid');
    const started = Date.now();
    const err = await rejection(
      local.exec(['sh', '-c', `echo $$ > ${pidFile}; echo partial; exec sleep 30`], { timeoutMs: 300, nothrow: true }),
    );
    expect(Date.now() - started).to.be.below(5000);
    expect(err).to.be.instanceOf(RemoteCommandError);
    expect(err.message).to.match(/timed out after 0\.3s/);
    expect((err as RemoteCommandError).result).to.include({ signal: 'SIGTERM', stdout: 'partial\n' });
    expect(pidAlive(Number(readFileSync(pidFile, 'utf8')))).to.equal(false);
  });

  it('kills the command on abort and rejects with an InterruptedError', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const err = await rejection(local.exec(['sleep', '30'], { signal: controller.signal }));
    expect(err).to.be.instanceOf(InterruptedError);
  });

  it('rejects with the abort reason when it is a VdeployError, without starting an already-aborted command', async () => {
    const reason = new VdeployError('stop now');
    const marker = path.join(dir, 'should-not-exist');
    const err = await rejection(local.exec(['touch', marker], { signal: AbortSignal.abort(reason) }));
    expect(err).to.equal(reason);
    expect(existsSync(marker)).to.equal(false);
  });

  it('put copies a file, replacing the target, with an explicit mode', async () => {
    const src = path.join(dir, 'src.txt');
    const dst = path.join(dir, 'dst.txt');
    writeFileSync(src, 'new content');
    writeFileSync(dst, 'old');
    await local.put(src, dst, { mode: 0o751 });
    expect(readFileSync(dst, 'utf8')).to.equal('new content');
    expect(statSync(dst).mode & 0o777).to.equal(0o751);
  });

  it('put into a missing directory is a VdeployError naming both paths', async () => {
    const src = path.join(dir, 'src.txt');
    writeFileSync(src, 'x');
    const err = await rejection(local.put(src, path.join(dir, 'no', 'such', 'dir.txt')));
    expect(err).to.be.instanceOf(VdeployError);
    expect(err.message).to.include(src).and.include('no/such/dir.txt');
  });

  it('close is harmless, twice', async () => {
    await local.close();
    await local.close();
  });
});

describe('Semaphore', () => {
  it('never lets more than `limit` tasks run at once, and runs them all in order', async () => {
    const limit = new Semaphore(3);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        limit.run(async () => {
          started.push(i);
          running++;
          peak = Math.max(peak, running);
          await new Promise((r) => setTimeout(r, 5));
          running--;
        }),
      ),
    );
    expect(peak).to.equal(3);
    expect(started).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('releases the slot when a task throws, and a double release frees only one slot', async () => {
    const limit = new Semaphore(1);
    await rejection(limit.run(async () => Promise.reject(new Error('x'))));
    const first = await limit.acquire(); // would hang if the throwing task had kept its slot
    let granted = 0;
    const second = limit.acquire().then((r) => (granted++, r));
    const third = limit.acquire().then((r) => (granted++, r));
    first();
    first();
    await new Promise((r) => setTimeout(r, 5));
    expect(granted).to.equal(1);
    (await second)();
    (await third)();
    expect(granted).to.equal(2);
  });

  it('close refuses waiters and later acquires', async () => {
    const limit = new Semaphore(1);
    const held = await limit.acquire();
    const waiting = limit.acquire();
    limit.close(new Error('gone'));
    expect((await rejection(waiting)).message).to.equal('gone');
    expect((await rejection(limit.acquire())).message).to.equal('gone');
    held();
  });

  it('refuses a silly limit', () => {
    expect(() => new Semaphore(0)).to.throw(RangeError);
  });
});
