// The TypeScript side of relocate: argument checks, the argv and stdin sent, how answers and failures
// are read, and how the CLI tells a local path from a selector. (The script itself: relocate-script.test.ts.)
import { expect } from 'chai';
import { isLocalTarget } from '../../src/cli/commands/relocate.js';
import { ConfigError, VdeployError } from '../../src/errors.js';
import { checkNewPath, relocateArgv, relocateVenv, RelocateError, summarize, type RelocateResult } from '../../src/relocate/relocate.js';
import { BOOTSTRAP_PY, RELOCATE_SCRIPT } from '../../src/relocate/relocate-script.js';
import type { CommandResult, Connection, ExecOptions } from '../../src/remote/connection.js';
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
    it('runs sh with the fixed picker and bootstrap; the venv is the only variable argument', () => {
      const argv = relocateArgv('/srv/my app/venv');
      expect(argv.slice(0, 2)).to.deep.equal(['sh', '-c']);
      expect(argv.slice(3)).to.deep.equal(['vdeploy-relocate', '/srv/my app/venv', BOOTSTRAP_PY]);
    });
    it('prefixes sudo -n -u USER for a venv owned by another user', () => {
      expect(relocateArgv('/srv/app/venv', 'app').slice(0, 5)).to.deep.equal(['sudo', '-n', '-u', 'app', 'sh']);
    });
  });

  describe('relocateVenv', () => {
    it('sends the arguments as one JSON line, then the script, on stdin; returns the parsed result', async () => {
      const { conn, calls } = fakeConnection({ stdout: `Welcome to web1\n${JSON.stringify({ ...okResult, fatal: null })}\n` });
      const r = await relocateVenv(conn, { venv: '/srv/app/venv', newPath: 'auto', reinitialize: true }, { runAs: 'app' });
      expect(r).to.deep.equal(okResult);
      expect(calls).to.have.length(1);
      const stdin = String(calls[0]!.opts.stdin);
      const firstLine = stdin.slice(0, stdin.indexOf('\n'));
      const { holder, ...args } = JSON.parse(firstLine) as { holder: Record<string, unknown> };
      expect(args).to.deep.equal({ venv: '/srv/app/venv', newPath: 'auto', oldPath: null, reinitialize: true, dryRun: false });
      expect(holder).to.include({ command: 'relocate', pid: process.pid });
      expect(stdin.slice(firstLine.length + 1)).to.equal(RELOCATE_SCRIPT);
      expect(calls[0]!.argv[0]).to.equal('sudo');
      expect(calls[0]!.opts.nothrow).to.equal(true);
    });

    it("turns the script's fatal answer into a RelocateError: usage exits 2, a refusal 1", async () => {
      const usage = fakeConnection({ exitCode: 3, stdout: JSON.stringify({ ...okResult, fatal: { message: 'bad path', hint: 'h', kind: 'usage' } }) });
      const err = (await rejection(relocateVenv(usage.conn, { venv: '/v', newPath: 'auto' }))) as RelocateError;
      expect(err).to.be.instanceOf(RelocateError);
      expect(err.message).to.equal('deploy@10.0.0.5:22:/v: bad path');
      expect(err.hint).to.equal('h');
      expect(err.exitCode).to.equal(2);
      const refused = fakeConnection({ exitCode: 3, stdout: JSON.stringify({ ...okResult, fatal: { message: 'no 3.12', hint: null, kind: 'refused' } }) });
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
      const nopy = fakeConnection({ exitCode: 127, stderr: 'vdeploy relocate: no python3 found\n' });
      expect(((await rejection(relocateVenv(nopy.conn, { venv: '/v', newPath: 'auto' }))) as VdeployError).hint).to.match(/install python3/);
      const sudo = fakeConnection({ exitCode: 1, stderr: 'sudo: a password is required\n' });
      const e3 = (await rejection(relocateVenv(sudo.conn, { venv: '/v', newPath: 'auto' }, { runAs: 'app' }))) as VdeployError;
      expect(e3.message).to.match(/exited with 1: sudo: a password is required/);
      expect(e3.hint).to.match(/sudo -n -u app/);
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

  it('summarize counts rewritten files and bytecode by file and directory', () => {
    expect(summarize(okResult)).to.deep.equal({ files: 2, bytecodeFiles: 5, bytecodeDirs: 2 });
  });
});
