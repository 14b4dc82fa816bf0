// The TypeScript side of relocate: argument checks, the argv and stdin sent, how answers and failures
// are read, the fleet fan-out, and how the CLI tells a local path from a selector. Nothing runs a
// process here (the script itself: test/integration/relocate-script.test.ts, test/python/test_relocate.py).
import { expect } from 'chai';
import { isLocalTarget } from '../../src/cli/commands/relocate.js';
import { parseConfig } from '../../src/config/load-deployfile.js';
import type { ResolvedHost } from '../../src/config/resolve-config.js';
import { ConfigError, ConnectError, ProtocolError, VdeployError } from '../../src/errors.js';
import { checkNewPath, relocateArgv, relocateVenv, RelocateError, summarize, type RelocateResult } from '../../src/relocate/relocate.js';
import { contracts } from '../../src/relocate/relocate-contract.js';
import { relocateFleet } from '../../src/relocate/relocate-fleet.js';
import type { HostConnector } from '../../src/remote/connect-host.js';
import type { CommandResult, Connection, ExecOptions } from '../../src/remote/connection.js';
import { payloadFor, pythonArgv } from '../../src/remote/remote-python.js';
import { rejection } from '../helpers/rejection.js';

/** A Connection that records what it was asked to run and answers with `answer`. */
function fakeConnection(answer: Partial<CommandResult>, target = 'deploy@10.0.0.5:22') {
  const calls: Array<{ argv: string[]; opts: ExecOptions }> = [];
  const conn: Connection = {
    target,
    async exec(argv, opts = {}) {
      calls.push({ argv, opts });
      return { exitCode: 0, signal: null, stdout: '', stderr: '', ms: 1, ...answer };
    },
    async put() {},
    async close() {},
  };
  return { conn, calls };
}

const okResult: RelocateResult = {
  venv: '/srv/app/venv',
  oldPath: '/build/venv',
  newPath: '/srv/app/venv',
  markerSource: 'bin/activate',
  alreadyRelocated: false,
  dryRun: false,
  python: '/usr/bin/python3',
  pythonVersion: '3.11.2',
  reinitialize: null,
  changes: [
    { path: 'bin/gunicorn', kind: 'script', reason: 'x' },
    { path: 'lib/python3.11/site-packages/a/__pycache__', kind: 'bytecode', reason: 'y', files: 3 },
    { path: 'lib/python3.11/site-packages/b/__pycache__', kind: 'bytecode', reason: 'y', files: 2 },
    { path: 'bin/activate', kind: 'activate', reason: 'z' },
  ],
  leftovers: [],
  warnings: [],
  errors: [],
  complete: true,
};

/** What the script prints for okResult (or with `fatal`). */
const answerLine = (fatal: unknown = null, result: object = okResult) => JSON.stringify({ ...result, v: 1, fatal });

describe('relocate (TypeScript side)', () => {
  describe('checkNewPath', () => {
    it('accepts absolute paths (spaces too) and auto, normalized', () => {
      expect(checkNewPath('auto')).to.equal('auto');
      expect(checkNewPath('/srv/app/venv/')).to.equal('/srv/app/venv');
      expect(checkNewPath('/srv//my app/./venv')).to.equal('/srv/my app/venv');
    });
    for (const bad of ['venv', './venv', '/', `/srv/it's`, '/srv/"q"', '/srv/$x', '/srv/`x`', '/srv/a\\b', '/srv/a\nb', '/srv/a\tb']) {
      it(`refuses ${JSON.stringify(bad)} with a ConfigError (exit 2)`, () => {
        expect(() => checkNewPath(bad)).to.throw(ConfigError);
      });
    }
  });

  describe('isLocalTarget', () => {
    it('reads /, ., ~ as local paths and everything else as selectors', () => {
      for (const t of ['/srv/venv', './venv', '../venv', '.', '~/venv', '/srv/we@ird:venv']) expect(isLocalTarget(t), t).to.equal(true);
      for (const t of ['web1', 'app@web1', 'web1:/srv/app/venv', ':/srv/app/venv', 'deploy@', 'venv']) expect(isLocalTarget(t), t).to.equal(false);
    });
  });

  describe('relocateArgv', () => {
    it('starts the relocate module the one way (start.sh), trying the venv\'s home interpreter first', () => {
      const argv = relocateArgv('/srv/my app/venv');
      expect(argv).to.deep.equal(pythonArgv('relocate', { venv: '/srv/my app/venv' }));
      expect(argv.slice(0, 2)).to.deep.equal(['sh', '-c']);
      expect(argv[3]).to.equal('vdeploy-relocate');
      expect(argv.at(-1)).to.equal('/srv/my app/venv');
    });
    it('prefixes sudo -n -u USER for a venv owned by another user', () => {
      expect(relocateArgv('/srv/app/venv', 'app').slice(0, 5)).to.deep.equal(['sudo', '-n', '-u', 'app', 'sh']);
    });
  });

  describe('relocateVenv', () => {
    it('sends the payload, then the request as one JSON line (its contract), on stdin; returns the checked answer', async () => {
      const { conn, calls } = fakeConnection({ stdout: `Welcome to web1\n${answerLine()}\n` });
      const r = await relocateVenv(conn, { venv: '/srv/app/venv', newPath: 'auto', reinitialize: true }, { runAs: 'app' });
      expect(r).to.deep.equal(okResult);
      expect(calls).to.have.length(1);
      const stdin = calls[0]!.opts.stdin as Buffer;
      const payload = payloadFor('relocate');
      expect(stdin.subarray(0, payload.length).equals(payload)).to.equal(true);
      const line = stdin.subarray(payload.length).toString('utf8');
      expect(line.endsWith('\n')).to.equal(true);
      const request = contracts['relocate.request'].parse(JSON.parse(line));
      const { holder, ...args } = request;
      expect(args).to.deep.equal({ v: 1, venv: '/srv/app/venv', newPath: 'auto', oldPath: null, reinitialize: true, dryRun: false });
      expect(holder).to.include({ command: 'relocate', pid: process.pid });
      expect(calls[0]!.argv).to.deep.equal(relocateArgv('/srv/app/venv', 'app'));
      expect(calls[0]!.opts.nothrow).to.equal(true);
    });

    it('an answer that breaks the contract is a ProtocolError naming the host and the script', async () => {
      const bad = fakeConnection({ stdout: `${JSON.stringify({ ...okResult, fatal: null })}\n` });
      const err = (await rejection(relocateVenv(bad.conn, { venv: '/v', newPath: 'auto' }))) as ProtocolError;
      expect(err).to.be.instanceOf(ProtocolError);
      expect(err.host).to.equal('deploy@10.0.0.5:22');
      expect(err.script).to.equal('relocate');
      expect(err.message).to.match(/^the relocate script on deploy@10\.0\.0\.5:22 gave an answer vdeploy cannot read \(v: /);
      const kind = fakeConnection({ stdout: answerLine(null, { ...okResult, changes: [{ path: 'x', kind: 'bogus', reason: 'r' }] }) });
      expect(((await rejection(relocateVenv(kind.conn, { venv: '/v', newPath: 'auto' }))) as ProtocolError).message).to.match(/changes\.0\.kind/);
      const notJson = fakeConnection({ stdout: '{"venv": \n' });
      expect(await rejection(relocateVenv(notJson.conn, { venv: '/v', newPath: 'auto' }))).to.be.instanceOf(ProtocolError);
    });

    it("turns the script's fatal answer into a RelocateError: usage exits 2, a refusal 1", async () => {
      const usage = fakeConnection({ exitCode: 3, stdout: answerLine({ message: 'bad path', hint: 'h', kind: 'usage' }) });
      const err = (await rejection(relocateVenv(usage.conn, { venv: '/v', newPath: 'auto' }))) as RelocateError;
      expect(err).to.be.instanceOf(RelocateError);
      expect(err.message).to.equal('deploy@10.0.0.5:22:/v: bad path');
      expect(err.hint).to.equal('h');
      expect(err.exitCode).to.equal(2);
      const refused = fakeConnection({ exitCode: 3, stdout: answerLine({ message: 'no 3.12', hint: null, kind: 'refused' }) });
      const err2 = (await rejection(relocateVenv(refused.conn, { venv: '/v', reinitialize: true }))) as RelocateError;
      expect(err2.exitCode).to.equal(1);
      expect(err2.kind).to.equal('refused');
    });

    it('explains a script that died, a missing python3, and a sudo that wants a password', async () => {
      const killed = fakeConnection({ exitCode: null, signal: 'SIGKILL', stderr: '' });
      const e1 = await rejection(relocateVenv(killed.conn, { venv: '/v', newPath: 'auto' }));
      expect(e1).to.be.instanceOf(VdeployError);
      expect(e1.message).to.equal('relocating deploy@10.0.0.5:22:/v: the relocate script was killed by SIGKILL');
      expect((e1 as VdeployError).hint).to.match(/run the same command again/);
      const nopy = fakeConnection({ exitCode: 127, stderr: 'vdeploy-relocate: no python3 found on web1\n' });
      expect(((await rejection(relocateVenv(nopy.conn, { venv: '/v', newPath: 'auto' }))) as VdeployError).hint).to.match(/install python3/);
      const sudo = fakeConnection({ exitCode: 1, stderr: 'sudo: a password is required\n' });
      const e3 = (await rejection(relocateVenv(sudo.conn, { venv: '/v', newPath: 'auto' }, { runAs: 'app', host: 'web1', login: 'deploy' }))) as VdeployError;
      expect(e3.message).to.equal('relocating deploy@10.0.0.5:22:/v: sudo refused to run the relocate script as app for deploy on web1: sudo: a password is required');
      expect(e3.hint).to.match(/on web1, let deploy run commands as app without a password: add `deploy ALL=\(app\) NOPASSWD: ALL`/);
    });

    it('checks its arguments before running anything', async () => {
      const { conn, calls } = fakeConnection({});
      expect(await rejection(relocateVenv(conn, { venv: 'rel', newPath: 'auto' }))).to.be.instanceOf(ConfigError);
      expect(await rejection(relocateVenv(conn, { venv: '/v' }))).to.be.instanceOf(ConfigError);
      expect(await rejection(relocateVenv(conn, { venv: '/v', newPath: '/a$b' }))).to.be.instanceOf(ConfigError);
      expect(await rejection(relocateVenv(conn, { venv: '/v', newPath: 'auto', oldPath: 'old' }))).to.be.instanceOf(ConfigError);
      expect(calls).to.have.length(0);
    });
  });

  describe('relocateFleet', () => {
    const config = parseConfig(
      {
        hosts: [
          { name: 'web1', address: '10.0.0.1', user: 'deploy' },
          { name: 'web2', address: '10.0.0.2', user: 'deploy' },
        ],
        venvs: [
          { host: 'web1', user: 'app', path: '/srv/app/venv' },
          { host: 'web1', path: '/srv/tools/venv' },
          { host: 'web2', path: '/srv/app/venv' },
        ],
      },
      undefined,
      '/tmp',
    );

    /** A connector whose web2 cannot be reached; web1 answers okResult for any venv. */
    function fakeConnector() {
      const web1 = fakeConnection({ stdout: answerLine() }, 'deploy@10.0.0.1:22');
      let closed = 0;
      const connector: HostConnector = {
        async connect(host: ResolvedHost) {
          if (host.name === 'web1') return web1.conn;
          throw new ConnectError(host.name, `${host.name}: connection refused`, { hint: 'is sshd running?' });
        },
        async closeAll() {
          closed += 1;
        },
      };
      return { connector, calls: web1.calls, closed: () => closed };
    }

    it('relocates each selected venv; a host that fails is an entry with its error, the others still run', async () => {
      const { connector, calls, closed } = fakeConnector();
      const entries = await relocateFleet(config, {}, { newPath: 'auto' }, { connector });
      expect(entries.map((e) => e.target)).to.deep.equal(['app@web1:/srv/app/venv', 'deploy@web1:/srv/tools/venv', 'deploy@web2:/srv/app/venv']);
      expect(entries[0]!.result).to.deep.equal(okResult);
      expect(entries[2]!.error).to.deep.equal({ message: 'web2: connection refused', hint: 'is sshd running?', exitCode: 1 });
      // The venv of another user than the login user runs under sudo; the connector given is left open.
      expect(calls.map((c) => c.argv[0])).to.have.members(['sudo', 'sh']);
      expect(closed()).to.equal(0);
    });

    it('refuses, before connecting, two venvs of one host sent to one path', async () => {
      const { connector, calls } = fakeConnector();
      const err = await rejection(relocateFleet(config, { selectors: ['web1'] }, { newPath: '/srv/new' }, { connector }));
      expect(err).to.be.instanceOf(ConfigError);
      expect(err.message).to.equal('"web1" selects two venvs on web1 (app@web1:/srv/app/venv and deploy@web1:/srv/tools/venv); they cannot both move to /srv/new');
      expect(calls).to.have.length(0);
      expect(await rejection(relocateFleet(config, { selectors: ['nohost'] }, { newPath: 'auto' }, { connector }))).to.be.instanceOf(ConfigError);
    });
  });

  it('summarize counts rewritten files and bytecode by file and directory', () => {
    expect(summarize(okResult)).to.deep.equal({ files: 2, bytecodeFiles: 5, bytecodeDirs: 2 });
  });
});
