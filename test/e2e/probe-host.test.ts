/**
 * probeHost against REAL sshd hosts and real venvs (Debian's /usr/bin/python3), with
 * pip itself as the oracle for the installed set and pip's vendored packaging for the interpreter
 * facts. The fleet's hosts share this machine's filesystem, so set-up runs locally.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { VdeployError } from '../../src/errors.js';
import { InterpreterCache } from '../../src/facts/interpreter-cache.js';
import { DEFAULT_WHEEL_CACHE, probeHost, type ProbeRequest } from '../../src/facts/probe-host.js';
import type { HostFacts, InstalledPackage, InterpreterFacts, VenvFacts } from '../../src/facts/types.js';
import type { Connection } from '../../src/remote/connection.js';
import { loadKnownHosts } from '../../src/remote/known-hosts.js';
import { LocalConnection } from '../../src/remote/local-connection.js';
import { connectSsh } from '../../src/remote/ssh-connection.js';
import { startFleet, type Fleet, type FleetHost } from '../helpers/fleet.js';
import { makeTempDir } from '../helpers/cli.js';
import { SHARED_WHEELS } from '../helpers/paths.js';
import { rejection } from '../helpers/rejection.js';

const local = new LocalConnection();
/** Hermetic pip: this machine has a global pip config and PIP_FIND_LINKS. */
const PIP_ENV = { PIP_CONFIG_FILE: '/dev/null' };

async function pipInstall(python: string, packages: string[], extra: string[] = []): Promise<void> {
  await local.exec(
    [python, '-m', 'pip', 'install', '--isolated', '--disable-pip-version-check', '--no-index', '--find-links', SHARED_WHEELS, ...extra, ...packages],
    { env: PIP_ENV },
  );
}

/** What pip says is installed: the oracle for the probe's installed set. */
async function pipList(venv: string): Promise<Array<[string, string]>> {
  const result = await local.exec([path.join(venv, 'bin', 'python'), '-m', 'pip', 'list', '--isolated', '--disable-pip-version-check', '--format=json'], { env: PIP_ENV });
  return sortPairs((JSON.parse(result.stdout) as Array<{ name: string; version: string }>).map((p) => [p.name, p.version]));
}

/** What importlib.metadata sees on the venv's sys.path (first distribution of a name wins, as in pip). */
async function metadataList(venv: string): Promise<Array<[string, string]>> {
  const script = [
    'import importlib.metadata as m, json, re',
    'seen, out = set(), []',
    'for d in m.distributions():',
    "    name = d.metadata['Name']",
    "    key = re.sub(r'[-_.]+', '-', name or '').lower()",
    '    if name and key not in seen:',
    '        seen.add(key); out.append([name, d.version])',
    'print(json.dumps(out))',
  ].join('\n');
  const result = await local.exec([path.join(venv, 'bin', 'python'), '-I', '-c', script]);
  return sortPairs(JSON.parse(result.stdout) as Array<[string, string]>);
}

const sortPairs = (pairs: Array<[string, string]>) => [...pairs].sort((a, b) => a[0].localeCompare(b[0]));
const pairsOf = (installed: InstalledPackage[]) => sortPairs(installed.map((p) => [p.name, p.version]));

function venvOf(facts: VenvFacts | undefined): Extract<VenvFacts, { state: 'venv' }> {
  expect(facts?.state, JSON.stringify(facts)).to.equal('venv');
  return facts as Extract<VenvFacts, { state: 'venv' }>;
}

function expectLinuxCp311(interpreter: InterpreterFacts | null | undefined): void {
  expect(interpreter, 'interpreter facts').to.not.equal(null);
  expect(interpreter!.version).to.match(/^3\.11\.\d+$/);
  expect(interpreter!.markers.sys_platform).to.equal('linux');
  expect(interpreter!.markers.python_version).to.equal('3.11');
  expect(interpreter!.supportedTags[0]).to.match(/^cp311-cp311-manylinux/);
  expect(interpreter!.supportedTags).to.include('py3-none-any');
}

describe('probeHost against a real sshd fleet', function () {
  this.timeout(180_000);
  let fleet: Fleet | undefined;
  const open: Connection[] = [];
  let host1: FleetHost;
  let conn1: Connection;
  /** Venv at a path with spaces, quotes and a `$`: made without pip, so tags come from Debian's pip wheel. */
  let oddVenv: string;

  const connect = async (host: FleetHost): Promise<Connection> => {
    const conn = await connectSsh({
      host: host.name,
      address: host.address,
      port: host.port,
      username: fleet!.user,
      identityFiles: [fleet!.clientKeyPath],
      knownHosts: loadKnownHosts([fleet!.knownHostsPath]),
      strictHostKeyChecking: 'yes',
    });
    open.push(conn);
    return conn;
  };
  const srv = (...parts: string[]) => path.join(host1.root, 'srv', ...parts);
  const cacheDir = () => srv('cache');
  // No interpreter cache: these tests are about what the interpreters themselves answer.
  const probe1 = (venvs: ProbeRequest['venvs'], cache = cacheDir()) => probeHost(conn1, { cacheDir: cache, venvs }, { interpreterCache: null });

  before(async () => {
    fleet = await startFleet({ hosts: 2, venvsPerHost: 2 });
    host1 = fleet.hosts[0]!;
    conn1 = await connect(host1);
    await pipInstall(path.join(host1.venvs[0]!, 'bin', 'python'), ['sqlparse', 'asgiref']);
    oddVenv = srv(`it's a "venv" $HOME`);
    await local.exec(['/usr/bin/python3', '-m', 'venv', '--without-pip', oddVenv]);
    // pip from another venv, aimed at the odd venv's site-packages.
    await pipInstall(path.join(host1.venvs[0]!, 'bin', 'python'), ['sqlparse'], ['--target', path.join(oddVenv, 'lib', 'python3.11', 'site-packages')]);
  });
  after(async () => {
    await Promise.all(open.map((c) => c.close()));
    await fleet?.stop();
  });

  it("reports each venv's installed set exactly as pip list does, and its interpreter", async () => {
    const [venv1, venv2] = host1.venvs as [string, string];
    const facts = await probe1([
      { path: venv1, python: '/usr/bin/python3' },
      { path: venv2, python: '/usr/bin/python3' },
    ]);
    const [f1, f2] = [venvOf(facts.venvs[0]), venvOf(facts.venvs[1])];
    expect(pairsOf(f1.installed)).to.deep.equal(await pipList(venv1));
    expect(pairsOf(f2.installed)).to.deep.equal(await pipList(venv2));
    expect(f1.installed.map((p) => p.key)).to.include.members(['sqlparse', 'asgiref', 'pip']);
    expect(f2.installed.map((p) => p.key)).to.not.include('sqlparse');
    expectLinuxCp311(f1.interpreter);
    // Both venvs come from the same python: one interpreter subprocess, one shared facts object.
    expect(f2.interpreter).to.equal(f1.interpreter);
  });

  it("gives the marker environment and tags that the venv's own packaging computes", async () => {
    const venv1 = host1.venvs[0]!;
    const facts = await probe1([{ path: venv1, python: 'python3' }]);
    const oracle = await local.exec([
      path.join(venv1, 'bin', 'python'),
      '-c',
      'import json; from pip._vendor.packaging import markers, tags; print(json.dumps([markers.default_environment(), [str(t) for t in tags.sys_tags()]]))',
    ]);
    const [markers, tags] = JSON.parse(oracle.stdout) as [unknown, string[]];
    const { interpreter } = venvOf(facts.venvs[0]);
    expect(interpreter.markers).to.deep.equal(markers);
    expect(interpreter.supportedTags).to.deep.equal(tags);
  });

  it('a path with spaces, quotes and $ works; a venv without pip gets its tags from the pip wheel ensurepip uses', async () => {
    const facts = await probe1([{ path: oddVenv, python: '/usr/bin/python3' }]);
    const odd = venvOf(facts.venvs[0]);
    expect(odd.path).to.equal(oddVenv);
    expect(pairsOf(odd.installed)).to.deep.equal(await metadataList(oddVenv));
    expect(odd.installed.map((p) => p.key)).to.deep.equal(['sqlparse']);
    expectLinuxCp311(odd.interpreter);
  });

  it("reports a missing venv as 'missing', with the facts of the python it will be made with", async () => {
    const facts = await probe1([
      { path: srv('new venv'), python: '/usr/bin/python3' },
      { path: srv('no', 'such', 'parent', 'venv'), python: '/usr/bin/python3' },
      { path: srv('new2'), python: 'no-such-python-3.99' },
      { path: srv('new3'), python: '/opt/nowhere/python3' },
    ]);
    const [a, b, c, d] = facts.venvs;
    expect(a).to.include({ path: srv('new venv'), state: 'missing' });
    expectLinuxCp311(a!.state === 'missing' ? a!.interpreter : undefined);
    expect(b).to.include({ state: 'missing' });
    expect(b!.state === 'missing' && b!.interpreter).to.equal(a!.state === 'missing' && a!.interpreter);
    expect(c).to.deep.equal({ path: srv('new2'), state: 'missing', interpreter: null, interpreterError: "no-such-python-3.99 not found on the login user's PATH" });
    expect(d).to.deep.equal({ path: srv('new3'), state: 'missing', interpreter: null, interpreterError: '/opt/nowhere/python3 does not exist or is not executable' });
  });

  it("reports anything else at a venv path as 'not-a-venv' with a one-line detail", async () => {
    mkdirSync(srv('plain dir'));
    writeFileSync(srv('a file'), 'not a venv\n');
    mkdirSync(srv('broken', 'bin'), { recursive: true });
    writeFileSync(srv('broken', 'pyvenv.cfg'), 'home = /opt/gone/bin\n');
    symlinkSync('/opt/gone/bin/python3.9', srv('broken', 'bin', 'python'));
    mkdirSync(srv('no-python'));
    writeFileSync(srv('no-python', 'pyvenv.cfg'), 'home = /usr/bin\n');
    mkdirSync(srv('failing', 'bin'), { recursive: true });
    writeFileSync(srv('failing', 'pyvenv.cfg'), 'home = /usr/bin\n');
    writeFileSync(srv('failing', 'bin', 'python'), '#!/bin/sh\necho "cannot start" >&2\nexit 3\n', { mode: 0o755 });
    symlinkSync(srv('gone'), srv('dangling'));

    const facts = await probe1(['plain dir', 'a file', 'broken', 'no-python', 'failing', 'dangling', 'a file/venv'].map((p) => ({ path: srv(p), python: '/usr/bin/python3' })));
    const details = facts.venvs.map((v) => (v.state === 'not-a-venv' ? v.detail : `state ${v.state}`));
    expect(details).to.deep.equal([
      'is a directory without pyvenv.cfg (not a venv)',
      'is a file, not a venv directory',
      'is a venv whose bin/python is a broken symlink (/opt/gone/bin/python3.9 does not exist)',
      'is a directory with pyvenv.cfg but no bin/python',
      `is a venv whose bin/python does not work: ${srv('failing', 'bin', 'python')} failed (exit 3): cannot start`,
      `is a broken symlink to ${srv('gone')}`,
      `cannot be created: ${srv('a file')} is not a directory`,
    ]);
    expect(facts.venvs[4]).to.have.property('interpreterError').that.includes('exit 3');
  });

  it('lists the complete wheels in the cache, skipping temporary upload names; a missing cache is empty', async () => {
    mkdirSync(path.join(cacheDir(), 'x.whl'), { recursive: true }); // a directory, not a wheel
    for (const name of ['sqlparse-0.6.0-py3-none-any.whl', 'asgiref-3.12.1-py3-none-any.whl', '.idna-3.20-py3-none-any.whl.tmp-4f2a9c', '.hidden.whl', 'notes.txt']) {
      writeFileSync(path.join(cacheDir(), name), 'x');
    }
    const facts = await probe1([]);
    expect(facts.cacheDir).to.equal(cacheDir());
    expect(facts.cachedWheels).to.deep.equal(['asgiref-3.12.1-py3-none-any.whl', 'sqlparse-0.6.0-py3-none-any.whl']);
    expect(facts.venvs).to.deep.equal([]);

    const missing = await probe1([], srv('no-cache', 'here'));
    expect(missing).to.include({ cacheDir: srv('no-cache', 'here') });
    expect(missing.cachedWheels).to.deep.equal([]);
  });

  it("expands ~/ in the cache dir to the login user's home", async () => {
    const name = `.vdeploy-probe-test-${process.pid}-never-created`;
    const facts = await probe1([], `~/${name}`);
    expect(facts.cacheDir).to.equal(path.join(os.homedir(), name));
    expect(facts.cachedWheels).to.deep.equal([]);
    expect(DEFAULT_WHEEL_CACHE).to.equal('~/.cache/vdeploy/wheels');
  });

  it('refuses a cache path that is a file with one line naming the host', async () => {
    writeFileSync(srv('cache-file'), 'x');
    const err = await rejection(probe1([], srv('cache-file')));
    expect(err).to.be.instanceOf(VdeployError);
    expect(err.message).to.equal(`probing ${conn1.target} failed: wheel cache ${srv('cache-file')}: ${srv('cache-file')} is not a directory`);
  });

  it('probes every host in parallel, each with its own facts', async () => {
    const conns = [conn1, await connect(fleet!.hosts[1]!)];
    const all = await Promise.all(
      fleet!.hosts.map((h, i) => probeHost(conns[i]!, { cacheDir: path.join(h.root, 'srv', 'cache'), venvs: h.venvs.map((v) => ({ path: v, python: 'python3' })) })),
    );
    expect(all.map((f) => f.venvs.map((v) => [v.path, v.state]))).to.deep.equal(fleet!.hosts.map((h) => h.venvs.map((v) => [v, 'venv'])));
    expect(all[1]!.cacheDir).to.equal(path.join(fleet!.hosts[1]!.root, 'srv', 'cache'));
  });

  it('costs well under 200 ms of remote time for 4 venvs (measured, logged, not asserted)', async () => {
    const venvs = [...host1.venvs, oddVenv, srv('venv-to-create')].map((p) => ({ path: p, python: '/usr/bin/python3' }));
    const runs: Array<{ wallMs: number; probeMs: number; bareMs: number }> = [];
    let facts: HostFacts | undefined;
    for (let i = 0; i < 5; i++) {
      // The same round trip doing nothing (`true`), for comparison: the login shell's start-up is in both.
      let started = performance.now();
      await conn1.exec(['true']);
      const bareMs = Math.round(performance.now() - started);
      started = performance.now();
      facts = await probe1(venvs);
      runs.push({ wallMs: Math.round(performance.now() - started), probeMs: facts.probeMs ?? NaN, bareMs });
    }
    expect(facts!.venvs.map((v) => v.state)).to.deep.equal(['venv', 'venv', 'venv', 'missing']);
    const median = (pick: (r: (typeof runs)[number]) => number) => runs.map(pick).sort((a, b) => a - b)[Math.floor(runs.length / 2)]!;
    console.log(
      `      probe of 4 venvs over SSH (median of ${runs.length}): ${median((r) => r.wallMs)} ms round trip ` +
        `(\`true\`: ${median((r) => r.bareMs)} ms), ${median((r) => r.probeMs)} ms inside the script`,
    );
  });

  it('with the interpreter cache, starts no interpreter once it knows them: same facts, less time (measured, logged)', async () => {
    const venvs = [...host1.venvs, oddVenv, srv('venv-to-create')].map((p) => ({ path: p, python: '/usr/bin/python3' }));
    const cache = new InterpreterCache(path.join(await makeTempDir('vdeploy-icache-'), 'interpreters.json'));
    const runs: Record<'cold' | 'warm', Array<{ wallMs: number; probeMs: number }>> = { cold: [], warm: [] };
    let cold: HostFacts | undefined;
    let warm: HostFacts | undefined;
    for (let i = 0; i < 5; i++) {
      let started = performance.now();
      cold = await probeHost(conn1, { cacheDir: cacheDir(), venvs }, { interpreterCache: null });
      runs.cold.push({ wallMs: performance.now() - started, probeMs: cold.probeMs ?? NaN });
      if (i === 0) await probeHost(conn1, { cacheDir: cacheDir(), venvs }, { interpreterCache: cache });
      started = performance.now();
      // A new instance each time: what the next vdeploy process finds in the file.
      warm = await probeHost(conn1, { cacheDir: cacheDir(), venvs }, { interpreterCache: new InterpreterCache(cache.file) });
      runs.warm.push({ wallMs: performance.now() - started, probeMs: warm.probeMs ?? NaN });
    }
    expect(cold!.interpretersRun).to.equal(1);
    expect(warm!.interpretersRun).to.equal(0);
    expect(warm!.venvs).to.deep.equal(cold!.venvs);
    const median = (list: Array<{ wallMs: number; probeMs: number }>, pick: 'wallMs' | 'probeMs') => Math.round(list.map((r) => r[pick]).sort((a, b) => a - b)[2]! * 10) / 10;
    console.log(
      `      probe of 4 venvs over SSH (median of 5): ${median(runs.cold, 'wallMs')} ms round trip and ${median(runs.cold, 'probeMs')} ms in the script ` +
        `starting the interpreter; ${median(runs.warm, 'wallMs')} ms and ${median(runs.warm, 'probeMs')} ms with its facts cached`,
    );
  });

  it('once the cache knows the interpreters, reads the facts over SFTP without running a command: the same as the script (measured, logged)', async () => {
    const venvs = [...host1.venvs, oddVenv].map((p) => ({ path: p, python: '/usr/bin/python3' }));
    const wheels = srv('cache-sftp');
    mkdirSync(wheels, { recursive: true });
    writeFileSync(path.join(wheels, 'sqlparse-0.5.3-py3-none-any.whl'), 'x');
    writeFileSync(path.join(wheels, '.sqlparse-0.5.3-py3-none-any.whl.tmp-1'), 'x');
    const cache = new InterpreterCache(path.join(await makeTempDir('vdeploy-icache-sftp-'), 'interpreters.json'));
    let commands = 0;
    const counting: Connection = { target: conn1.target, exec: (a, o) => (commands++, conn1.exec(a, o)), put: (a, b, o) => conn1.put(a, b, o), files: () => conn1.files!(), close: async () => {} };
    const scriptOnly: Connection = { target: conn1.target, exec: (a, o) => conn1.exec(a, o), put: (a, b, o) => conn1.put(a, b, o), close: async () => {} };
    const probe = (conn: Connection) => probeHost(conn, { cacheDir: wheels, venvs }, { interpreterCache: new InterpreterCache(cache.file) });

    expect((await probe(counting)).readBy).to.equal('script');
    const times: Record<'files' | 'script', number[]> = { files: [], script: [] };
    let byFiles: HostFacts | undefined;
    let byScript: HostFacts | undefined;
    commands = 0;
    for (let i = 0; i < 5; i++) {
      let started = performance.now();
      byFiles = await probe(counting);
      times.files.push(performance.now() - started);
      started = performance.now();
      byScript = await probe(scriptOnly);
      times.script.push(performance.now() - started);
    }
    expect(commands).to.equal(0);
    expect([byFiles!.readBy, byScript!.readBy]).to.deep.equal(['files', 'script']);
    const same = (f: HostFacts) => ({ ...f, readBy: undefined, probeMs: undefined });
    expect(same(byFiles!)).to.deep.equal(same(byScript!));
    expect(byFiles!.cachedWheels).to.deep.equal(['sqlparse-0.5.3-py3-none-any.whl']);
    expect(pairsOf(venvOf(byFiles!.venvs[0]).installed)).to.deep.equal(await pipList(host1.venvs[0]!));
    const median = (list: number[]) => Math.round(list.sort((a, b) => a - b)[2]!);
    console.log(`      probe of 3 venvs over SSH (median of 5): ${median(times.files)} ms over SFTP alone, ${median(times.script)} ms by the script (interpreter cached)`);
  });

  describe('through a LocalConnection (the fleet shares this filesystem)', () => {
    let dir: string;

    before(async () => {
      dir = await makeTempDir('vdeploy-probe-local-');
    });

    it('probes a local venv the same way as over SSH', async () => {
      const venv = host1.venvs[0]!;
      const facts = await probeHost(local, { cacheDir: path.join(dir, 'cache'), venvs: [{ path: venv, python: 'python3' }] });
      expect(facts.cacheDir).to.equal(path.join(dir, 'cache'));
      const f = venvOf(facts.venvs[0]);
      expect(pairsOf(f.installed)).to.deep.equal(await pipList(venv));
      expectLinuxCp311(f.interpreter);
      expect(facts.venvs).to.deep.equal((await probe1([{ path: venv, python: 'python3' }])).venvs);
    });

    it('reads .egg-info dirs and files, .pth directories and skips what pip skips, as importlib.metadata does', async () => {
      const venv = path.join(dir, 'hand-made venv');
      const site = path.join(venv, 'lib', 'python3.11', 'site-packages');
      const write = (file: string, text: string) => {
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, text);
      };
      write(path.join(venv, 'pyvenv.cfg'), 'home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n');
      mkdirSync(path.join(venv, 'bin'));
      symlinkSync('/usr/bin/python3', path.join(venv, 'bin', 'python'));
      write(path.join(site, 'Foo_Bar-1.0.dist-info', 'METADATA'), 'Metadata-Version: 2.1\nName: Foo_Bar\nVersion: 1.0\nSummary: x\n\nName: NotAHeader\n');
      write(path.join(site, 'legacy.egg-info', 'PKG-INFO'), 'Metadata-Version: 1.0\r\nName: legacy\r\nVersion: 0.9\r\n');
      write(path.join(site, 'single-2.0-py3.11.egg-info'), 'Metadata-Version: 1.1\nName: single\nVersion: 2.0\n');
      mkdirSync(path.join(site, 'nometa-1.0.dist-info'));
      write(path.join(site, 'dev.pth'), `# a comment\nimport sys\n${path.join(venv, 'src')}\n../../../../missing-dir\n`);
      write(path.join(venv, 'src', 'devpkg.egg-info', 'PKG-INFO'), 'Metadata-Version: 2.1\nName: devpkg\nVersion: 0.1.dev0\n');
      // The same project again further down sys.path: the first one found wins.
      write(path.join(venv, 'src', 'foo.bar-9.9.dist-info', 'METADATA'), 'Metadata-Version: 2.1\nName: foo.bar\nVersion: 9.9\n');
      // Left over from the python this venv was upgraded from: not on sys.path.
      write(path.join(venv, 'lib', 'python3.10', 'site-packages', 'old-1.0.dist-info', 'METADATA'), 'Name: old\nVersion: 1.0\n');

      const facts = await probeHost(local, { cacheDir: path.join(dir, 'cache'), venvs: [{ path: venv, python: 'python3' }] });
      const f = venvOf(facts.venvs[0]);
      expect(pairsOf(f.installed)).to.deep.equal(await metadataList(venv));
      expect(f.installed).to.deep.equal([
        { name: 'Foo_Bar', key: 'foo-bar', version: '1.0' },
        { name: 'legacy', key: 'legacy', version: '0.9' },
        { name: 'single', key: 'single', version: '2.0' },
        { name: 'devpkg', key: 'devpkg', version: '0.1.dev0' },
      ]);
    });
  });
});
