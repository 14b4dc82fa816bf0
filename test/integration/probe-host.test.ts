/**
 * probeHost with a fake Connection: the fixed command and JSON request they send, and
 * how a failed, timed-out or interrupted probe is reported (briefly: never the whole script).
 */
import path from 'node:path';
import { expect } from 'chai';
import { InterruptedError, ProtocolError, RemoteCommandError, VdeployError } from '../../src/errors.js';
import { InterpreterCache } from '../../src/facts/interpreter-cache.js';
import { probeHost } from '../../src/facts/probe-host.js';
import { probeRequestSchema } from '../../src/facts/probe-contract.js';
import { payloadFor, pythonArgv } from '../../src/remote/remote-python.js';
import type { CommandResult, Connection, ExecOptions } from '../../src/remote/connection.js';
import { makeTempDir } from '../helpers/cli.js';
import { rejection } from '../helpers/rejection.js';
import { LINUX_MARKERS as markers } from '../helpers/interpreter-facts.js';

const TARGET = 'deploy@web1:22';

function fakeConnection(answer: (argv: string[], opts: ExecOptions) => Promise<CommandResult> | CommandResult) {
  const calls: Array<{ argv: string[]; opts: ExecOptions }> = [];
  const conn: Connection = {
    target: TARGET,
    async exec(argv, opts = {}) {
      calls.push({ argv, opts });
      return answer(argv, opts);
    },
    async put() {},
    async close() {},
  };
  return { conn, calls };
}

const py311 = { version: '3.11.2', markers, supportedTags: ['cp311-cp311-manylinux_2_36_x86_64', 'py3-none-any'] };

const result = (over: Partial<CommandResult>): CommandResult => ({ exitCode: 0, signal: null, stdout: '', stderr: '', ms: 5, ...over });
/** The request after the payload on the script's stdin. */
function requestOf(opts: ExecOptions): unknown {
  const stdin = opts.stdin as Buffer;
  const payload = payloadFor('probe');
  expect(stdin.subarray(0, payload.length).equals(payload)).to.equal(true);
  return JSON.parse(stdin.subarray(payload.length).toString('utf8'));
}

const output = (venvs: unknown[]) => JSON.stringify({ v: 1, cacheDir: '/home/deploy/.cache/vdeploy/wheels', cachedWheels: [], interpreters: [], venvs });

describe('probeHost (fake connection)', () => {
  const weird = `/srv/it's a "venv"; rm -rf $HOME`;

  it('runs one fixed command and passes paths only as JSON on stdin', async () => {
    const { conn, calls } = fakeConnection(() => result({ stdout: output([{ path: weird, state: 'not-a-venv', detail: 'is a file, not a venv directory' }]) }));
    const controller = new AbortController();
    const facts = await probeHost(conn, { cacheDir: '~/.cache/vdeploy/wheels', venvs: [{ path: weird, python: 'python3' }] }, { signal: controller.signal });
    expect(facts.venvs[0]).to.deep.include({ path: weird, state: 'not-a-venv' });
    expect(calls).to.have.length(1);
    const { argv, opts } = calls[0]!;
    expect(argv).to.deep.equal(pythonArgv('probe'));
    expect(argv.slice(0, 2)).to.deep.equal(['sh', '-c']);
    expect(argv.join(' ')).to.not.include(weird);
    const sent = requestOf(opts);
    expect(sent).to.deep.equal({ v: 1, cacheDir: '~/.cache/vdeploy/wheels', venvs: [{ path: weird, python: 'python3' }], interpreters: true, known: [] });
    expect(probeRequestSchema.safeParse(sent).success).to.equal(true);
    expect(opts.signal).to.equal(controller.signal);
    expect(opts.timeoutMs).to.be.a('number');
  });

  it("offers the cached interpreters' fingerprints, fills in the facts the host refers to, and remembers new ones", async () => {
    const cache = new InterpreterCache(path.join(await makeTempDir('vdeploy-probe-fake-'), 'interpreters.json'));
    cache.remember(TARGET, [{ python: '/usr/bin/python3.11', fingerprint: 'f311', files: ['/usr/lib/tags.py'], facts: py311 }]);
    const py312 = { ...py311, version: '3.12.1' };
    const fresh = { ...py312, python: '/opt/bin/python3.12', fingerprint: 'f312', files: [] };
    const { conn, calls } = fakeConnection(() =>
      result({
        stdout: JSON.stringify({
          v: 1, cacheDir: '/c', cachedWheels: [], interpretersRun: 1,
          interpreters: [{ python: '/usr/bin/python3.11', cached: 'f311' }, fresh],
          venvs: [{ path: '/srv/a', state: 'missing', interpreter: 0 }, { path: '/srv/b', state: 'missing', interpreter: 1 }],
        }),
      }),
    );
    const venvs = [{ path: '/srv/a', python: 'python3' }, { path: '/srv/b', python: 'python3.12' }];
    const facts = await probeHost(conn, { cacheDir: '/c', venvs }, { interpreterCache: cache });
    expect((requestOf(calls[0]!.opts) as { known: unknown }).known).to.deep.equal([{ python: '/usr/bin/python3.11', fingerprint: 'f311', files: ['/usr/lib/tags.py'] }]);
    expect(facts.interpretersRun).to.equal(1);
    expect(facts.venvs.map((v) => v.state === 'missing' && v.interpreter)).to.deep.equal([py311, py312]);
    expect(new InterpreterCache(cache.file).known(TARGET).map((k) => [k.python, k.fingerprint, k.facts])).to.deep.equal([
      ['/usr/bin/python3.11', 'f311', py311],
      ['/opt/bin/python3.12', 'f312', py312],
    ]);
  });

  it('refuses an answer that refers to facts it was not offered', async () => {
    const { conn } = fakeConnection(() =>
      result({ stdout: JSON.stringify({ v: 1, cacheDir: '/c', cachedWheels: [], interpreters: [{ python: '/usr/bin/python3', cached: 'nope' }], venvs: [] }) }),
    );
    const err = await rejection(probeHost(conn, { cacheDir: '/c', venvs: [] }, { interpreterCache: null }));
    expect(err).to.be.instanceOf(ProtocolError);
    expect(err.message).to.equal(`the probe script on ${TARGET} gave an answer vdeploy cannot read (interpreters.0: fingerprint nope was not offered)`);
  });

  it('refuses an answer about other venvs than asked', async () => {
    const { conn } = fakeConnection(() => result({ stdout: output([{ path: '/srv/other', state: 'missing', interpreter: null }]) }));
    const err = await rejection(probeHost(conn, { cacheDir: '/c', venvs: [{ path: '/srv/a', python: 'python3' }] }));
    expect(err).to.be.instanceOf(ProtocolError);
    expect(err.message).to.include(TARGET).and.include('other venvs than asked');
  });

  it('says so when the host has no python3 (exit 127)', async () => {
    const { conn } = fakeConnection(() => result({ exitCode: 127, stderr: 'sh: 1: exec: python3: not found\n' }));
    const err = await rejection(probeHost(conn, { cacheDir: '/c', venvs: [] }));
    expect(err).to.be.instanceOf(VdeployError);
    expect(err.message).to.equal(`cannot probe ${TARGET}: it has no /usr/bin/python3 and no python3 on the login user's PATH`);
    expect((err as VdeployError).hint).to.include('install python3');
  });

  it('says so when the host has only a python3 older than 3.6 (exit 127 from the bootstrap)', async () => {
    const stderr = 'vdeploy: /usr/bin/python3 is Python 3.5; vdeploy needs Python 3.6 or newer on the host\n';
    const { conn } = fakeConnection(() => result({ exitCode: 127, stderr }));
    const err = await rejection(probeHost(conn, { cacheDir: '/c', venvs: [] }));
    expect(err.message).to.equal(`cannot probe ${TARGET}: vdeploy: /usr/bin/python3 is Python 3.5; vdeploy needs Python 3.6 or newer on the host`);
  });

  it("reports a crashed script with the end of its stderr, not the script", async () => {
    const stderr = 'Traceback (most recent call last):\n  File "<string>", line 3, in <module>\nSyntaxError: invalid syntax\n';
    const { conn } = fakeConnection(() => result({ exitCode: 1, stderr }));
    const err = await rejection(probeHost(conn, { cacheDir: '/c', venvs: [] }));
    expect(err.message).to.equal(`the probe of ${TARGET} exited with 1: Traceback (most recent call last): |   File "<string>", line 3, in <module> | SyntaxError: invalid syntax`);
  });

  it('shortens a timeout to one line without the script', async () => {
    const { conn } = fakeConnection((argv) => {
      throw new RemoteCommandError(argv.join(' '), result({ exitCode: null, signal: 'SIGKILL' }), { message: `\`${argv.join(' ')}\` timed out after 2m`, hint: 'raise the timeout' });
    });
    const err = await rejection(probeHost(conn, { cacheDir: '/c', venvs: [] }));
    expect(err).to.be.instanceOf(RemoteCommandError);
    expect(err.message).to.equal(`the probe of ${TARGET} did not finish: timed out after 2m`);
    expect((err as RemoteCommandError).command).to.not.include('import');
  });

  it('shortens an interruption, keeping its class', async () => {
    const { conn } = fakeConnection((argv) => {
      throw new InterruptedError(`\`${argv.join(' ')}\` was interrupted`);
    });
    const err = await rejection(probeHost(conn, { cacheDir: '/c', venvs: [] }));
    expect(err).to.be.instanceOf(InterruptedError);
    expect(err.message).to.equal(`the probe of ${TARGET} was interrupted`);
  });

  it('passes an abort reason that is one of ours through unchanged', async () => {
    const reason = new VdeployError('deploy cancelled: another host failed');
    const { conn } = fakeConnection(() => {
      throw reason;
    });
    expect(await rejection(probeHost(conn, { cacheDir: '/c', venvs: [] }))).to.equal(reason);
  });
});
