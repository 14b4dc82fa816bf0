/**
 * readFileFacts (issue 17): the real files script (vdeploy_remote/files.py) run on this machine through
 * LocalConnection on a temp tree, and, with a stand-in connection, how a sudo that wants a password and
 * an interrupted read are reported.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InterruptedError, VdeployError } from '../../src/errors.js';
import { readFileFacts } from '../../src/files/read-file-facts.js';
import type { CommandResult, Connection, ExecOptions } from '../../src/remote/connection.js';
import { LocalConnection } from '../../src/remote/local-connection.js';
import { payloadFor, pythonArgv } from '../../src/remote/remote-python.js';
import { makeTempDir } from '../helpers/cli.js';
import { rejection } from '../helpers/rejection.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

function standIn(answer: Partial<CommandResult> | ((opts: ExecOptions) => Promise<CommandResult>)) {
  const calls: Array<{ argv: string[]; opts: ExecOptions }> = [];
  const conn: Connection = {
    target: 'deploy@web1:22',
    async exec(argv, opts = {}) {
      calls.push({ argv, opts });
      if (typeof answer === 'function') return answer(opts);
      return { exitCode: 0, signal: null, stdout: '', stderr: '', ms: 5, ...answer };
    },
    async put() {},
    async close() {},
  };
  return { conn, calls };
}

describe('readFileFacts', function () {
  this.timeout(60_000);
  const conn = new LocalConnection();

  it('reads a tree: missing, a file (with its content only when it differs), something else, and the record', async () => {
    const root = await makeTempDir('vdeploy-test-file-facts-');
    const etc = join(root, `it's "etc"; $HOME`);
    const state = join(root, 'state');
    await mkdir(join(etc, 'conf.d'), { recursive: true });
    await mkdir(state);
    await writeFile(join(etc, 'app.conf'), 'workers = 2\n', { mode: 0o640 });
    await writeFile(join(etc, 'same.conf'), 'same\n');
    await symlink(join(etc, 'same.conf'), join(etc, 'link.conf'));
    await writeFile(join(state, 'files.json'), JSON.stringify({ v: 1, host: 'web1', managed: { '/etc/old.conf': sha256('old') }, pending: ['supervisorctl update'] }));
    const asked = [
      { path: join(etc, 'app.conf'), sha256: sha256('workers = 4\n'), content: true },
      { path: join(etc, 'same.conf'), sha256: sha256('same\n'), content: true },
      { path: join(etc, 'missing.conf'), sha256: sha256('x'), content: true },
      { path: join(etc, 'conf.d'), sha256: sha256('x'), content: true },
      { path: join(etc, 'link.conf'), sha256: sha256('x'), content: true },
    ];
    const facts = await readFileFacts(conn, { stateDir: state, host: 'web1', files: asked }, { sudo: false });
    expect(facts.files.map((f) => [f.path, f.state])).to.deep.equal([
      [asked[0]!.path, 'file'],
      [asked[1]!.path, 'file'],
      [asked[2]!.path, 'missing'],
      [asked[3]!.path, 'other'],
      [asked[4]!.path, 'other'],
    ]);
    const [app, same] = facts.files;
    expect(app).to.deep.include({ sha256: sha256('workers = 2\n'), mode: 0o640, size: 12 });
    expect(Buffer.from(app!.content!, 'base64').toString()).to.equal('workers = 2\n');
    expect(same!.content).to.equal(undefined);
    expect(app!.owner).to.be.a('string').and.not.equal('');
    expect(facts.managed).to.deep.equal({ '/etc/old.conf': sha256('old') });
    expect(facts.pending).to.deep.equal(['supervisorctl update']);
    expect(facts.user).to.equal(app!.owner);
  });

  it('an unusable record on the host: an error naming it, with what to do', async () => {
    const state = await makeTempDir('vdeploy-test-file-facts-');
    await writeFile(join(state, 'files.json'), '{"v": 1, "managed"');
    const err = await rejection(readFileFacts(conn, { stateDir: state, host: 'web1', files: [] }, { sudo: false }));
    expect(err).to.be.instanceOf(VdeployError);
    expect(err.message).to.match(/^cannot read the files of web1: the record .*files\.json is not valid JSON/);
    expect(err.message).to.not.include('\n');
    expect((err as VdeployError).hint).to.include('fix or remove');
  });

  it('sends paths only as JSON on stdin, runs as root through sudo -n when asked', async () => {
    const { conn: fake, calls } = standIn({ stdout: JSON.stringify({ v: 1, files: [{ path: '/etc/a b', state: 'missing' }], managed: {}, pending: [], user: 'root' }) });
    const facts = await readFileFacts(fake, { host: 'web1', files: [{ path: '/etc/a b', sha256: 'x', content: false }] }, { sudo: true });
    expect(facts).to.deep.equal({ files: [{ path: '/etc/a b', state: 'missing' }], managed: {}, pending: [], user: 'root' });
    const { argv, opts } = calls[0]!;
    expect(argv).to.deep.equal(pythonArgv('files', { runAs: 'root' }));
    expect(argv.slice(0, 4)).to.deep.equal(['sudo', '-n', '-u', 'root']);
    const stdin = opts.stdin as Buffer;
    const payload = payloadFor('files');
    expect(JSON.parse(stdin.subarray(payload.length).toString())).to.deep.equal({
      op: 'facts',
      stateDir: null,
      host: 'web1',
      files: [{ path: '/etc/a b', sha256: 'x', content: false }],
      v: 1,
    });
  });

  it('sudo wanting a password: one line naming the host and the login user, the NOPASSWD rule as the hint', async () => {
    const { conn: fake } = standIn({ exitCode: 1, stderr: 'sudo: a password is required\n' });
    const err = await rejection(readFileFacts(fake, { host: 'web1', files: [] }, { sudo: true }));
    expect(err).to.be.instanceOf(VdeployError);
    expect(err.message).to.equal('cannot read the files of web1: sudo asked deploy for a password to run the files script as root (vdeploy runs `sudo -n`, which never prompts)');
    expect((err as VdeployError).hint).to.include('`deploy ALL=(root) NOPASSWD: ALL`');
  });

  it('an answer for other paths than asked is a protocol error', async () => {
    const { conn: fake } = standIn({ stdout: JSON.stringify({ v: 1, files: [], managed: {}, pending: [], user: 'root' }) });
    const err = await rejection(readFileFacts(fake, { host: 'web1', files: [{ path: '/etc/a', sha256: 'x', content: false }] }, { sudo: false }));
    expect(err.message).to.include('answered for other paths than asked');
  });

  it('interrupted: says so briefly, never quoting the script', async () => {
    const controller = new AbortController();
    const slow = new LocalConnection();
    const promise = readFileFacts(slow, { host: 'web1', files: [] }, { sudo: false, signal: controller.signal });
    controller.abort();
    const err = await rejection(promise);
    expect(err).to.be.instanceOf(InterruptedError);
    expect(err.message).to.equal('reading the files of web1 was interrupted');
  });
});
