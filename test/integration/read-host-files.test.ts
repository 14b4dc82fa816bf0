/**
 * The probe over files (read-host-files.ts) against the probe script, on the same directories through
 * a LocalConnection (node:fs stands in for SFTP; the script runs this machine's /usr/bin/python3):
 * where the files reader answers, its answer must be the script's; everywhere else it must step aside.
 */
import { appendFileSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { InterruptedError, VdeployError } from '../../src/errors.js';
import { InterpreterCache } from '../../src/facts/interpreter-cache.js';
import { probeHost, type ProbeRequest } from '../../src/facts/probe-host.js';
import { parseConfig, readHeaders } from '../../src/facts/read-host-files.js';
import type { HostFacts } from '../../src/facts/types.js';
import type { Connection } from '../../src/remote/connection.js';
import { LocalConnection } from '../../src/remote/local-connection.js';
import { makeTempDir } from '../helpers/cli.js';

const local = new LocalConnection();
/** The same target without files(): only the script can answer. */
const scriptOnly: Connection = { target: local.target, exec: (a, o) => local.exec(a, o), put: (a, b, o) => local.put(a, b, o), close: async () => {} };

function write(file: string, content: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
}

/** A venv as `python3 -m venv` lays it out, without running it: pyvenv.cfg, bin/python, lib64 → lib. */
function fakeVenv(dir: string, packages: Array<[string, string]>): string {
  write(path.join(dir, 'pyvenv.cfg'), 'home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n');
  mkdirSync(path.join(dir, 'bin'), { recursive: true });
  symlinkSync('/usr/bin/python3', path.join(dir, 'bin', 'python'));
  symlinkSync('lib', path.join(dir, 'lib64'));
  for (const [name, version] of packages) distInfo(sitePackages(dir), name, version);
  return dir;
}

const sitePackages = (venv: string) => path.join(venv, 'lib', 'python3.11', 'site-packages');

function distInfo(site: string, name: string, version: string, extra = ''): void {
  write(path.join(site, `${name}-${version}.dist-info`, 'METADATA'), `Metadata-Version: 2.1\nName: ${name}\n${extra}Version: ${version}\nSummary: x\n\nName: body\n`);
}

/** What must agree; how it was read and how long it took may differ. */
const comparable = (facts: HostFacts) => ({ ...facts, readBy: undefined, probeMs: undefined, interpretersRun: undefined });

describe('the probe over files (LocalConnection; compared with the probe script)', function () {
  this.timeout(60_000);
  let root: string;
  let cacheFile: string;
  let request: ProbeRequest;
  const probe = (conn: Connection = local, req: ProbeRequest = request) => probeHost(conn, req, { interpreterCache: new InterpreterCache(cacheFile) });

  before(async () => {
    root = await makeTempDir('vdeploy-read-files-');
    cacheFile = path.join(root, 'local-cache', 'interpreters.json');
    const plain = fakeVenv(path.join(root, 'srv', 'plain'), [['Django', '5.1.4'], ['asgiref', '3.8.1'], ['sqlparse', '0.5.3']]);
    // A distribution without a Version is skipped; of two with one name the first in sorted order wins.
    distInfo(sitePackages(plain), 'broken', '1.0', '');
    write(path.join(sitePackages(plain), 'broken-1.0.dist-info', 'METADATA'), 'Name: broken\n\n');
    distInfo(sitePackages(plain), 'Sqlparse', '0.4.0');
    // Continuation lines and a CRLF header block.
    write(path.join(sitePackages(plain), 'crlf-2.0.dist-info', 'METADATA'), 'Metadata-Version: 2.1\r\nSummary: a\r\n  Name: not-this\r\nName: crlf\r\nVersion: 2.0\r\n\r\n');
    write(path.join(plain, '.vdeploy', 'history.jsonl'), '{"at":"2026-01-01","wheels":["a"]}\n[1,2]\n{"torn": \n\n{"at":"2026-01-02"}\n');

    const pth = fakeVenv(path.join(root, 'srv', 'with pth $x'), [['gunicorn', '23.0.0']]);
    mkdirSync(path.join(root, 'extra'), { recursive: true });
    distInfo(path.join(root, 'extra'), 'extra-pkg', '0.1');
    distInfo(path.join(root, 'extra'), 'gunicorn', '1.0'); // shadowed by site-packages
    write(path.join(sitePackages(pth), 'a.pth'), `# comment\nimport sys; sys.path.append('/nowhere')\n${path.join(root, 'extra')}  \n../../../../missing\n\n`);
    // An old lib/python3.9 left by an in-place upgrade does not count.
    distInfo(path.join(pth, 'lib', 'python3.9', 'site-packages'), 'old', '1.0');

    const cache = path.join(root, 'wheels');
    write(path.join(cache, 'a-1.0-py3-none-any.whl'), 'x');
    write(path.join(cache, '.b-1.0-py3-none-any.whl.tmp-123'), 'x');
    write(path.join(cache, '.hidden-1.0-py3-none-any.whl'), 'x');
    mkdirSync(path.join(cache, 'dir-1.0-py3-none-any.whl'));
    symlinkSync(path.join(cache, 'a-1.0-py3-none-any.whl'), path.join(cache, 'link-1.0-py3-none-any.whl'));
    symlinkSync(path.join(root, 'nowhere'), path.join(cache, 'dangling-1.0-py3-none-any.whl'));
    write(path.join(cache, 'notes.txt'), 'x');

    request = { cacheDir: cache, venvs: [{ path: plain, python: 'python3' }, { path: pth, python: 'python3' }] };
  });

  it('after one probe by the script, answers without a command, exactly as the script does', async () => {
    const first = await probe();
    expect(first.readBy).to.equal('script');
    const second = await probe();
    expect(second.readBy).to.equal('files');
    const byScript = await probe(scriptOnly);
    expect(byScript.readBy).to.equal('script');
    expect(byScript.interpretersRun).to.equal(0);
    expect(comparable(second)).to.deep.equal(comparable(byScript));
    expect(comparable(second)).to.deep.equal(comparable(first));
    // Spot checks that the comparison covers what matters.
    expect(second.cachedWheels).to.deep.equal(['a-1.0-py3-none-any.whl', 'link-1.0-py3-none-any.whl']);
    const [plain, pth] = second.venvs;
    expect(plain?.state === 'venv' && plain.installed.map((p) => `${p.name}==${p.version}`)).to.deep.equal([
      'Django==5.1.4', 'Sqlparse==0.4.0', 'asgiref==3.8.1', 'crlf==2.0',
    ]);
    expect(plain?.state === 'venv' && plain.history).to.deep.equal([{ at: '2026-01-01', wheels: ['a'] }, { at: '2026-01-02' }]);
    expect(pth?.state === 'venv' && pth.installed.map((p) => `${p.name}==${p.version}`)).to.deep.equal(['gunicorn==23.0.0', 'extra-pkg==0.1']);
  });

  it('leaves to the script a venv that is missing, .egg-info, and a wheel cache that does not exist', async () => {
    await probe();
    const missing = await probe(local, { ...request, venvs: [...request.venvs, { path: path.join(root, 'srv', 'new'), python: 'python3' }] });
    expect(missing.readBy).to.equal('script');
    expect(missing.venvs[2]?.state).to.equal('missing');
    const noCache = await probe(local, { ...request, cacheDir: path.join(root, 'no-cache') });
    expect(noCache.readBy).to.equal('script');
    expect(noCache.cachedWheels).to.deep.equal([]);

    const egg = fakeVenv(path.join(root, 'srv', 'egg'), [['six', '1.16.0']]);
    write(path.join(sitePackages(egg), 'legacy.egg-info'), 'Metadata-Version: 1.0\nName: legacy\nVersion: 0.9\n');
    const withEgg = await probe(local, { ...request, venvs: [{ path: egg, python: 'python3' }] });
    expect(withEgg.readBy).to.equal('script');
    expect(withEgg.venvs[0]?.state === 'venv' && withEgg.venvs[0].installed.map((p) => p.name)).to.include('legacy');
  });

  it('goes back to the script when a file of the interpreter changed (a new mtime), and relearns', async () => {
    const dir = await makeTempDir('vdeploy-read-files-py-');
    const copied = path.join(dir, 'python3');
    await local.exec(['cp', '/usr/bin/python3', copied]);
    const venv = fakeVenv(path.join(dir, 'venv'), [['six', '1.16.0']]);
    const own = path.join(venv, 'bin', 'python');
    await local.exec(['ln', '-sf', copied, own]);
    const req = { cacheDir: request.cacheDir, venvs: [{ path: venv, python: 'python3' }] };
    expect((await probe(local, req)).readBy).to.equal('script');
    expect((await probe(local, req)).readBy).to.equal('files');
    utimesSync(copied, new Date(), new Date(Date.now() - 3600_000));
    const changed = await probe(local, req);
    expect([changed.readBy, changed.interpretersRun]).to.deep.equal(['script', 1]);
    expect((await probe(local, req)).readBy).to.equal('files');
  });

  it('reads an app root of the releases layout as the script does; leaves the unusual ones to the script', async () => {
    const app = path.join(root, 'srv', 'app');
    fakeVenv(path.join(app, 'releases', '20261203T100000Z-0001'), [['app', '1.0']]);
    fakeVenv(path.join(app, 'releases', '20261203T100000Z-0010'), [['app', '1.2']]);
    fakeVenv(path.join(app, 'releases', '20261203T090000Z-0002'), [['app', '1.1']]);
    mkdirSync(path.join(app, 'releases', 'not-a-release'));
    symlinkSync('releases/20261203T090000Z-0002', path.join(app, 'current'));
    write(path.join(app, '.vdeploy', 'history.jsonl'), '{"release":"20261203T100000Z-0001","outcome":"deployed"}\n');
    const req = { cacheDir: request.cacheDir, venvs: [{ path: app, python: 'python3', releases: true }] };
    const first = await probe(scriptOnly, req);
    const second = await probe(local, req);
    expect([first.readBy, second.readBy]).to.deep.equal(['script', 'files']);
    expect(comparable(second)).to.deep.equal(comparable(first));
    const facts = second.venvs[0]!;
    expect(facts.state === 'venv' && facts.installed.map((p) => `${p.name}==${p.version}`)).to.deep.equal(['app==1.1']);
    expect(facts.state === 'venv' && facts.releases).to.deep.equal({
      live: '20261203T090000Z-0002',
      list: ['20261203T100000Z-0001', '20261203T090000Z-0002', '20261203T100000Z-0010'].map((id) => ({ id })),
    });
    expect(facts.state === 'venv' && facts.history).to.deep.equal([{ release: '20261203T100000Z-0001', outcome: 'deployed' }]);

    // An absolute link is not one a switch writes: the script says there is no live release.
    const absolute = path.join(root, 'srv', 'absolute');
    fakeVenv(path.join(absolute, 'releases', '20261203T100000Z-0001'), [['app', '1.0']]);
    symlinkSync(path.join(absolute, 'releases', '20261203T100000Z-0001'), path.join(absolute, 'current'));
    const noCurrent = path.join(root, 'srv', 'no-current');
    fakeVenv(path.join(noCurrent, 'releases', '20261203T100000Z-0001'), [['app', '1.0']]);
    for (const p of [absolute, noCurrent, path.join(root, 'srv', 'nothing-yet'), request.venvs[0]!.path]) {
      const only = await probe(local, { ...req, venvs: [{ path: p, python: 'python3', releases: true }] });
      expect(only.readBy, p).to.equal('script');
    }
    const inPlace = await probe(local, { ...req, venvs: [{ path: request.venvs[0]!.path, python: 'python3', releases: true }] });
    expect(inPlace.venvs[0]).to.deep.include({ state: 'not-a-venv' });
    const abs = await probe(local, { ...req, venvs: [{ path: absolute, python: 'python3', releases: true }] });
    expect(abs.venvs[0]).to.deep.include({ state: 'missing' });
  });

  it('sees a history line appended since the last probe', async () => {
    await probe();
    appendFileSync(path.join(request.venvs[0]!.path, '.vdeploy', 'history.jsonl'), '{"at":"2026-01-03"}\n');
    const facts = await probe();
    expect(facts.readBy).to.equal('files');
    expect(facts.venvs[0]?.state === 'venv' && facts.venvs[0].history.at(-1)).to.deep.equal({ at: '2026-01-03' });
  });
});

describe('read-host-files parsers', () => {
  const table: Array<[string, string, { name: string | null; version: string | null }]> = [
    ['plain', 'Name: a\nVersion: 1\n', { name: 'a', version: '1' }],
    ['first of each wins', 'Name: a\nName: b\nVersion: 1\nVersion: 2\n', { name: 'a', version: '1' }],
    ['stops at the blank line', 'Name: a\n\nVersion: 1\n', { name: 'a', version: null }],
    ['keys are case-insensitive, values trimmed', 'NAME :  a \nversion:1.0 \n', { name: 'a', version: '1.0' }],
    ['continuation lines are not headers', 'Summary: x\n Name: no\nName: yes\nVersion: 1\n', { name: 'yes', version: '1' }],
    ['a line without a colon is ignored', 'garbage\nName: a\nVersion: 1', { name: 'a', version: '1' }],
    ["Python's whitespace: U+001F is stripped, U+FEFF is not", 'Name:\x1fa\x85\nVersion: \ufeff1\n', { name: 'a', version: '\ufeff1' }],
  ];
  for (const [title, content, expected] of table) {
    it(`METADATA headers: ${title}`, () => expect(readHeaders(Buffer.from(content))).to.deep.equal(expected));
  }

  it('pyvenv.cfg: lower-cased keys, trimmed values, the first = splits', () => {
    const config = parseConfig(Buffer.from('Home = /usr/bin\nversion_info = 3.11.2.final.0\nprompt = a=b\nno equals\n'));
    expect([...config]).to.deep.equal([['home', '/usr/bin'], ['version_info', '3.11.2.final.0'], ['prompt', 'a=b']]);
  });
});

describe('the probe over files (fake files)', () => {
  const facts = { version: '3.11.2', markers: {} as never, supportedTags: ['py3-none-any'] };

  async function cacheWithQuick(): Promise<InterpreterCache> {
    const cache = new InterpreterCache(path.join(await makeTempDir('vdeploy-read-files-fake-'), 'interpreters.json'));
    cache.remember('fake', [{ python: '/usr/bin/python3.11', fingerprint: 'f', files: [], facts, quick: 'q' }]);
    return cache;
  }

  it('is interrupted like the script: an InterruptedError naming the host, or our own abort reason as it is', async () => {
    const hang = () => new Promise<never>(() => {});
    let execs = 0;
    const conn: Connection = {
      target: 'fake',
      exec: async () => (execs++, { exitCode: 0, signal: null, stdout: '', stderr: '', ms: 1 }),
      put: async () => {},
      close: async () => {},
      files: async () => ({ stat: hang, readdir: hang, readFile: hang, realpath: hang, readlink: hang }),
    };
    const request = { cacheDir: '/c', venvs: [{ path: '/srv/a', python: 'python3' }] };
    const controller = new AbortController();
    const pending = probeHost(conn, request, { interpreterCache: await cacheWithQuick(), signal: controller.signal });
    controller.abort();
    const err = await pending.then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(InterruptedError);
    expect((err as Error).message).to.equal('the probe of fake was interrupted');
    const ours = new VdeployError('stopped by a failing host', { hint: 'h' });
    const second = new AbortController();
    const again = probeHost(conn, request, { interpreterCache: await cacheWithQuick(), signal: second.signal });
    second.abort(ours);
    expect(await again.then(() => null, (e: unknown) => e)).to.equal(ours);
    expect(execs).to.equal(0);
  });

  it('a target without SFTP (files() fails) is probed by the script', async () => {
    const calls: string[][] = [];
    const conn: Connection = {
      target: 'fake',
      exec: async (argv) => (calls.push(argv), { exitCode: 0, signal: null, stdout: JSON.stringify({ v: 1, cacheDir: '/c', cachedWheels: [], interpreters: [], venvs: [] }), stderr: '', ms: 1 }),
      put: async () => {},
      close: async () => {},
      files: () => Promise.reject(new Error('subsystem request failed')),
    };
    const result = await probeHost(conn, { cacheDir: '/c', venvs: [] }, { interpreterCache: await cacheWithQuick() });
    expect(result.readBy).to.equal('script');
    expect(calls).to.have.length(1);
  });
});
