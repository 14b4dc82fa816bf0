/**
 * The host apply script (vdeploy_remote/host_apply.py) run for real on this machine (LocalConnection,
 * the system's python3, started as on a host: start.sh, bootstrap, payload): upload
 * finalization, the per-venv loop, halting after a failure, "stop" on stdin, and the host reload.
 * The venvs are bare directories with a pyvenv.cfg and an empty plan, so no pip runs: the apply
 * script still takes the lock, checks the (empty) set and writes its history line.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { ProtocolError, RemoteCommandError } from '../../src/errors.js';
import type { Connection, ExecOptions } from '../../src/remote/connection.js';
import type { ApplyVenvInput, HostApplyProgress, HostApplyRequest } from '../../src/deploy/apply-contract.js';
import { runHostApply } from '../../src/deploy/run-host-apply.js';
import { LocalConnection } from '../../src/remote/local-connection.js';

const conn = new LocalConnection();
let dir: string;

function fakeVenv(name: string): string {
  const path = join(dir, name);
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, 'pyvenv.cfg'), 'home = /usr/bin\nversion = 3.11.2\n');
  return path;
}

function input(venv: string): ApplyVenvInput {
  return {
    venv, create: null, lockWaitSeconds: 0,
    holder: { user: 'test', host: 'here', pid: 1, startedAt: new Date(0).toISOString() },
    install: null, uninstall: [], uninstallKeys: [], expect: {}, migrate: null, unmigrate: [], reload: null, healthcheck: null,
    history: { time: new Date(0).toISOString(), action: 'deploy' },
  };
}

function request(over: Partial<HostApplyRequest>): Omit<HostApplyRequest, 'v'> {
  return { uploads: [], waitForUploads: false, venvs: [], reload: null, reloadAnyway: false, ...over };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const historyLines = (venv: string) => (existsSync(join(venv, '.vdeploy', 'history.jsonl')) ? readFileSync(join(venv, '.vdeploy', 'history.jsonl'), 'utf8').trim().split('\n').length : 0);

describe('host apply script (local python3)', () => {
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vdeploy-host-apply-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('applies every venv in order, then runs the host reload once; progress is tagged with the venv', async () => {
    const [a, b] = [fakeVenv('a'), fakeVenv('b')];
    const marker = join(dir, 'reloaded');
    const progress: HostApplyProgress[] = [];
    const run = runHostApply(conn, request({ venvs: [{ sudo: [], input: input(a) }, { sudo: [], input: input(b) }], reload: `echo x >> '${marker}'` }), {
      onProgress: (p) => progress.push(p),
    });
    const { lines, done } = await run.done;
    expect(lines.filter((l) => 'venv' in l).map((l) => ('venv' in l ? [l.venv, l.output?.outcome] : null))).to.deep.equal([[0, 'deployed'], [1, 'deployed']]);
    expect(lines.find((l) => 'reload' in l)).to.deep.include({ reload: { ok: true, exitCode: 0, ms: (lines.find((l) => 'reload' in l) as { reload: { ms: number } }).reload.ms, tail: '' } });
    expect(done).to.deep.equal({ started: 2, stoppedBy: null });
    expect(readFileSync(marker, 'utf8')).to.equal('x\n');
    expect(progress.filter((p) => 'phase' in p && p.phase === 'venv-start').map((p) => ('venv' in p ? p.venv : -1))).to.deep.equal([0, 1]);
    expect([historyLines(a), historyLines(b)]).to.deep.equal([1, 1]);
  });

  it('halts after a venv that did not deploy: nothing after it starts, and the host reload waits for the client', async () => {
    const notAVenv = join(dir, 'file');
    writeFileSync(notAVenv, 'x');
    const b = fakeVenv('b');
    const marker = join(dir, 'reloaded');
    const { lines, done } = await runHostApply(conn, request({ venvs: [{ sudo: [], input: input(notAVenv) }, { sudo: [], input: input(b) }], reload: `touch '${marker}'`, reloadAnyway: true })).done;
    const venvLines = lines.filter((l) => 'venv' in l);
    expect(venvLines).to.have.length(1);
    expect(venvLines[0]).to.deep.include({ venv: 0 });
    expect(done).to.deep.equal({ started: 1, stoppedBy: 'halted' });
    expect(historyLines(b)).to.equal(0);
    expect(existsSync(marker)).to.equal(false);
  });

  it('"stop" on stdin: no venv starts; the reload still runs when an earlier batch deployed', async () => {
    const a = fakeVenv('a');
    const marker = join(dir, 'reloaded');
    const run = runHostApply(conn, request({ venvs: [{ sudo: [], input: input(a) }], reload: `touch '${marker}'`, reloadAnyway: true }));
    run.stop();
    const { done } = await run.done;
    expect(done).to.deep.equal({ started: 0, stoppedBy: 'stop' });
    expect(historyLines(a)).to.equal(0);
    expect(existsSync(marker)).to.equal(true);
  });

  it('waits for "uploaded", moves good uploads into place and deletes a corrupted one (then applies nothing)', async () => {
    const a = fakeVenv('a');
    const cache = join(dir, 'cache');
    mkdirSync(cache);
    const good = { tmp: join(cache, '.good.whl.tmp-1'), final: join(cache, 'good.whl'), sha256: sha256('good bytes') };
    const bad = { tmp: join(cache, '.bad.whl.tmp-1'), final: join(cache, 'bad.whl'), sha256: sha256('what was released') };
    const run = runHostApply(conn, request({ uploads: [good, bad], waitForUploads: true, venvs: [{ sudo: [], input: input(a) }] }));
    // The script must not touch the uploads before it is told they are complete.
    await new Promise((r) => setTimeout(r, 300));
    writeFileSync(good.tmp, 'good bytes');
    writeFileSync(bad.tmp, 'damaged on the way');
    run.uploaded();
    const { lines, done } = await run.done;
    expect(lines[0]).to.deep.equal({ v: 1, push: { bad: [{ final: bad.final, got: sha256('damaged on the way') }], bytes: 28, ms: (lines[0] as { push: { ms: number } }).push.ms } });
    expect(readFileSync(good.final, 'utf8')).to.equal('good bytes');
    expect([existsSync(good.tmp), existsSync(bad.tmp), existsSync(bad.final)]).to.deep.equal([false, false, false]);
    expect(done).to.deep.equal({ started: 0, stoppedBy: 'push' });
    expect(historyLines(a)).to.equal(0);
  });

  it('a failed upload ("stop" before "uploaded") removes the temporary files and applies nothing', async () => {
    const a = fakeVenv('a');
    const tmp = join(dir, '.x.whl.tmp-2');
    writeFileSync(tmp, 'half a wheel');
    const run = runHostApply(conn, request({ uploads: [{ tmp, final: join(dir, 'x.whl'), sha256: sha256('x') }], waitForUploads: true, venvs: [{ sudo: [], input: input(a) }] }));
    run.stop();
    const { done } = await run.done;
    expect(done).to.deep.equal({ started: 0, stoppedBy: 'push' });
    expect(existsSync(tmp)).to.equal(false);
    expect(historyLines(a)).to.equal(0);
  });

  describe('answers that do not fit the contract', () => {
    /** A connection that runs `script` (sh) instead of what it is asked to, with the same stdin and handlers. */
    function faking(script: string): Connection {
      return { target: 'web1', exec: (_argv: string[], opts?: ExecOptions) => conn.exec(['sh', '-c', script], opts), put: conn.put.bind(conn), close: async () => {} };
    }

    it('a malformed stdout line fails the host with a ProtocolError naming it; the lines after it are not passed on', async () => {
      const seen: unknown[] = [];
      const run = runHostApply(faking(`echo '{"v":1,"venv":0,"output":{"outcome":"deployed"},"exitCode":0,"ms":1}'; echo '{"v":1,"done":{"started":1,"stoppedBy":null}}'`), request({}), { onLine: (l) => seen.push(l) });
      const err = await run.done.then(() => null, (e: unknown) => e);
      expect(err).to.be.instanceOf(ProtocolError);
      expect((err as Error).message).to.equal("the host apply script on web1 gave an answer vdeploy cannot read (output.v: Invalid input: expected 1)");
      expect(seen).to.deep.equal([]);
    });

    it('a line that is not JSON among its answers is a ProtocolError too', async () => {
      const err = await runHostApply(
        faking(`echo '{"v":1,"push":{"bad":[],"bytes":0,"ms":1}}'; echo 'Welcome!'; echo '{"v":1,"done":{"started":0,"stoppedBy":null}}'`),
        request({}),
      ).done.then(() => null, (e: unknown) => e);
      expect(err).to.be.instanceOf(ProtocolError);
      expect((err as Error).message).to.include('not JSON: "Welcome!"');
    });

    it("what a login shell's rc files print before the script's first line is not the script's: passed over", async () => {
      const { lines, done } = await runHostApply(faking(`echo 'Welcome!'; echo '{"v":1,"done":{"started":0,"stoppedBy":null}}'`), request({})).done;
      expect(lines).to.have.length(1);
      expect(done).to.deep.equal({ started: 0, stoppedBy: null });
    });

    it('ending with exit 0 but without the "done" line is a ProtocolError', async () => {
      const err = await runHostApply(faking(`echo '{"v":1,"reload":{"ok":true,"exitCode":0,"ms":1,"tail":""}}'`), request({})).done.then(() => null, (e: unknown) => e);
      expect(err).to.be.instanceOf(ProtocolError);
      expect((err as Error).message).to.include('without its "done" line');
    });

    it('no python3 on the host (exit 127) says so, with a hint to install one', async () => {
      const err = await runHostApply(faking(`echo 'vdeploy-host-apply: no python3 found on web1' >&2; exit 127`), request({})).done.then(() => null, (e: unknown) => e);
      expect(err).to.be.instanceOf(RemoteCommandError);
      expect((err as Error).message).to.equal('the apply script on web1 exited with 127: vdeploy-host-apply: no python3 found on web1');
      expect((err as RemoteCommandError).hint).to.match(/install python3/);
    });

    it('a progress line that does not fit is dropped; the good ones arrive', async () => {
      const progress: HostApplyProgress[] = [];
      await runHostApply(
        faking(`echo '@vdeploy {"venv":"x"}' >&2; echo '@vdeploy {"reload":"start"}' >&2; echo '{"v":1,"done":{"started":0,"stoppedBy":null}}'`),
        request({}),
        { onProgress: (p) => progress.push(p) },
      ).done;
      expect(progress).to.deep.equal([{ reload: 'start' }]);
    });
  });
});
