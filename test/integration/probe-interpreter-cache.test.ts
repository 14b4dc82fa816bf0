/**
 * The probe script with the interpreter cache, run for real (this machine's /usr/bin/python3 through a
 * LocalConnection): an interpreter is started only when vdeploy has no facts for it or its
 * fingerprint changed, and the host is never written to.
 */
import { appendFileSync, copyFileSync, cpSync, readdirSync, readFileSync, realpathSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { InterpreterCache } from '../../src/facts/interpreter-cache.js';
import { probeHost, type ProbeRequest } from '../../src/facts/probe-host.js';
import type { HostFacts, InterpreterFacts } from '../../src/facts/types.js';
import { LocalConnection } from '../../src/remote/local-connection.js';
import { makeTempDir } from '../helpers/cli.js';

const local = new LocalConnection();
const SYSTEM_PYTHON = realpathSync('/usr/bin/python3');
const VENDORED_PACKAGING = '/usr/lib/python3/dist-packages/pip/_vendor/packaging';

function interpreterOf(facts: HostFacts, i = 0): InterpreterFacts {
  const venv = facts.venvs[i]!;
  expect(venv.state === 'not-a-venv' ? venv.detail : venv.interpreter, JSON.stringify(venv)).to.be.an('object');
  return (venv as { interpreter: InterpreterFacts }).interpreter;
}

/** Every path under `dir` with its size and mtime: what a read-only probe must leave as it was. */
function snapshot(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).sort().map((p) => {
    const st = statSync(path.join(dir, p));
    return `${p} ${st.size} ${st.mtimeMs}`;
  });
}

describe('the probe with the interpreter cache (real python, LocalConnection)', function () {
  this.timeout(60_000);
  /** Stands for the host's filesystem. */
  let host: string;
  let caches: string;
  /** A copy of the system python: its file can be touched. */
  let copied: string;
  /** A venv without pip whose tags come from a `packaging` in its own site-packages. */
  let venv: string;
  let n = 0;
  const newCache = () => path.join(caches, `c${n++}`, 'interpreters.json');
  const probe = (venvs: ProbeRequest['venvs'], file: string | null) =>
    probeHost(local, { cacheDir: path.join(host, 'wheels'), venvs }, { interpreterCache: file === null ? null : new InterpreterCache(file) });

  before(async () => {
    host = await makeTempDir('vdeploy-probe-cache-host-');
    caches = await makeTempDir('vdeploy-probe-cache-');
    copied = path.join(host, 'opt', 'python3');
    cpSync(SYSTEM_PYTHON, copied);
    venv = path.join(host, 'venv');
    await local.exec([SYSTEM_PYTHON, '-m', 'venv', '--without-pip', venv]);
    cpSync(VENDORED_PACKAGING, path.join(venv, 'lib', 'python3.11', 'site-packages', 'packaging'), { recursive: true, filter: (p) => !p.includes('__pycache__') });
  });

  it('starts an interpreter once; the next probe, from the cache file, starts none and gives the same facts', async () => {
    const file = newCache();
    const venvs = [{ path: path.join(host, 'new'), python: copied }];
    const first = await probe(venvs, file);
    expect(first.interpretersRun).to.equal(1);
    const facts = interpreterOf(first);
    expect(facts.supportedTags[0]).to.match(/^cp311-cp311-manylinux/);
    const known = new InterpreterCache(file).known('local');
    expect(known.map((k) => k.python)).to.deep.equal([copied]);
    expect(known[0]!.files).to.include('/usr/lib/python3/dist-packages/pip/_vendor/packaging/tags.py');

    const before = snapshot(host);
    const second = await probe(venvs, file);
    expect(second.interpretersRun).to.equal(0);
    expect(interpreterOf(second)).to.deep.equal(facts);
    expect(snapshot(host)).to.deep.equal(before);
    console.log(`      probe script: ${first.probeMs} ms with the interpreter started, ${second.probeMs} ms with its facts cached`);
  });

  it('starts again only the interpreter whose binary changed (a new mtime)', async () => {
    const file = newCache();
    const venvs = [
      { path: path.join(host, 'a'), python: '/usr/bin/python3' },
      { path: path.join(host, 'b'), python: copied },
    ];
    expect((await probe(venvs, file)).interpretersRun).to.equal(2);
    expect((await probe(venvs, file)).interpretersRun).to.equal(0);
    const old = new InterpreterCache(file).known('local').find((k) => k.python === copied)!.fingerprint;
    utimesSync(copied, new Date(), new Date(2020, 0, 1));
    const after = await probe(venvs, file);
    expect(after.interpretersRun).to.equal(1);
    expect(interpreterOf(after, 1)).to.deep.equal(interpreterOf(after, 0));
    expect(new InterpreterCache(file).known('local').find((k) => k.python === copied)!.fingerprint).to.not.equal(old);
    expect((await probe(venvs, file)).interpretersRun).to.equal(0);
  });

  it('starts it again when a file its facts came from changed (packaging upgraded in the venv)', async () => {
    const file = newCache();
    const venvs = [{ path: venv, python: 'python3' }];
    const first = await probe(venvs, file);
    expect(first.interpretersRun).to.equal(1);
    const tagsPy = path.join(venv, 'lib', 'python3.11', 'site-packages', 'packaging', 'tags.py');
    expect(new InterpreterCache(file).known('local')[0]!.files).to.include(tagsPy);
    expect((await probe(venvs, file)).interpretersRun).to.equal(0);
    appendFileSync(tagsPy, '\n# upgraded\n');
    expect((await probe(venvs, file)).interpretersRun).to.equal(1);
    expect((await probe(venvs, file)).interpretersRun).to.equal(0);
  });

  it('starts it again when the fingerprint vdeploy remembers does not match', async () => {
    const file = newCache();
    const venvs = [{ path: path.join(host, 'c'), python: '/usr/bin/python3' }];
    await probe(venvs, file);
    const data = JSON.parse(readFileSync(file, 'utf8'));
    data.hosts.local[SYSTEM_PYTHON].fingerprint = 'f'.repeat(32);
    writeFileSync(file, JSON.stringify(data));
    expect((await probe(venvs, file)).interpretersRun).to.equal(1);
    expect(new InterpreterCache(file).known('local')[0]!.fingerprint).to.not.equal('f'.repeat(32));
  });

  it("never takes one interpreter's fingerprint for another's", async () => {
    const file = newCache();
    const other = path.join(host, 'opt', 'python3-other');
    copyFileSync(copied, other);
    await probe([{ path: path.join(host, 'd'), python: other }], file);
    const data = JSON.parse(readFileSync(file, 'utf8'));
    // What was learned about one path, claimed for the system python: the realpath is in the fingerprint.
    data.hosts.local[SYSTEM_PYTHON] = data.hosts.local[other];
    writeFileSync(file, JSON.stringify(data));
    const facts = await probe([{ path: path.join(host, 'e'), python: '/usr/bin/python3' }], file);
    expect(facts.interpretersRun).to.equal(1);
  });

  it('without a cache starts the interpreter every time', async () => {
    const venvs = [{ path: path.join(host, 'f'), python: '/usr/bin/python3' }];
    expect((await probe(venvs, null)).interpretersRun).to.equal(1);
    expect((await probe(venvs, null)).interpretersRun).to.equal(1);
  });
});
