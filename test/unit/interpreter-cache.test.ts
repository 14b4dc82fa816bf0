/**
 * The local interpreter-facts cache: where it lives, what it offers back, how two writers merge, and
 * that a missing, corrupt or unwritable file is never an error.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { defaultInterpreterCache, InterpreterCache, interpreterCacheFile, MAX_AGE_MS, VENV_MAX_AGE_MS } from '../../src/facts/interpreter-cache.js';
import type { LearnedInterpreter } from '../../src/facts/probe-output.js';
import type { InterpreterFacts } from '../../src/facts/types.js';
import { makeTempDir } from '../helpers/cli.js';
import { LINUX_MARKERS as markers } from '../helpers/interpreter-facts.js';

const py311: InterpreterFacts = { version: '3.11.2', markers, supportedTags: ['cp311-cp311-manylinux_2_36_x86_64', 'py3-none-any'] };
const py312: InterpreterFacts = { version: '3.12.1', markers: { ...markers, python_version: '3.12' }, supportedTags: ['cp312-cp312-linux_x86_64'] };

const learned = (python: string, fingerprint: string, facts = py311): LearnedInterpreter => ({
  python,
  fingerprint,
  files: [`${path.dirname(python)}/tags.py`],
  facts,
});

describe('interpreter cache', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await makeTempDir('vdeploy-icache-');
    file = path.join(dir, 'sub', 'interpreters.json');
  });

  it('lives in VDEPLOY_CACHE_DIR, else $XDG_CACHE_HOME/vdeploy (if absolute), else ~/.cache/vdeploy', () => {
    expect(interpreterCacheFile({ VDEPLOY_CACHE_DIR: '/c', XDG_CACHE_HOME: '/x' })).to.equal('/c/interpreters.json');
    expect(interpreterCacheFile({ VDEPLOY_CACHE_DIR: 'rel' })).to.equal(path.resolve('rel', 'interpreters.json'));
    expect(interpreterCacheFile({ XDG_CACHE_HOME: '/x' })).to.equal('/x/vdeploy/interpreters.json');
    expect(interpreterCacheFile({ XDG_CACHE_HOME: 'relative' })).to.equal(path.join(os.homedir(), '.cache', 'vdeploy', 'interpreters.json'));
    expect(interpreterCacheFile({})).to.equal(path.join(os.homedir(), '.cache', 'vdeploy', 'interpreters.json'));
  });

  it('the tests run with a cache of their own, never ~/.cache', () => {
    expect(defaultInterpreterCache().file).to.equal(path.join(process.env.VDEPLOY_CACHE_DIR!, 'interpreters.json'));
    expect(defaultInterpreterCache().file).to.not.equal(interpreterCacheFile({}));
    expect(defaultInterpreterCache()).to.equal(defaultInterpreterCache());
  });

  it('knows nothing without a file, and does not create one by reading', () => {
    expect(new InterpreterCache(file).known('root@web1:22')).to.deep.equal([]);
    expect(existsSync(path.dirname(file))).to.equal(false);
  });

  it('offers back what it was told, per host, from a fresh instance (another run)', () => {
    const a = learned('/usr/bin/python3.11', 'f1');
    const b = learned('/opt/py312/bin/python3.12', 'f2', py312);
    new InterpreterCache(file).remember('root@web1:22', [a, b]);
    const next = new InterpreterCache(file);
    expect(next.known('root@web1:22')).to.deep.equal([a, b]);
    expect(next.known('root@web2:22')).to.deep.equal([]);
    expect(readdirSync(path.dirname(file))).to.deep.equal(['interpreters.json']); // no temp file left
  });

  it('stores facts shared by many hosts once', () => {
    const cache = new InterpreterCache(file);
    for (let i = 0; i < 20; i++) cache.remember(`root@10.0.0.${i}:22`, [learned('/usr/bin/python3.11', `f${i}`)]);
    const data = JSON.parse(readFileSync(file, 'utf8'));
    expect(Object.keys(data.hosts)).to.have.length(20);
    expect(Object.keys(data.facts)).to.have.length(1);
    expect(new InterpreterCache(file).known('root@10.0.0.7:22')).to.deep.equal([learned('/usr/bin/python3.11', 'f7')]);
  });

  it('replaces what it knew about an interpreter, dropping facts nothing uses any more', () => {
    const cache = new InterpreterCache(file);
    cache.remember('h', [learned('/usr/bin/python3', 'old', py311)]);
    cache.remember('h', [learned('/usr/bin/python3', 'new', py312)]);
    expect(cache.known('h')).to.deep.equal([learned('/usr/bin/python3', 'new', py312)]);
    expect(Object.values(JSON.parse(readFileSync(file, 'utf8')).facts)).to.deep.equal([py312]);
  });

  it('merges with what another process wrote since it read (last writer wins an entry)', () => {
    const one = new InterpreterCache(file);
    const two = new InterpreterCache(file);
    expect(one.known('h1')).to.deep.equal([]);
    expect(two.known('h2')).to.deep.equal([]);
    one.remember('h1', [learned('/usr/bin/python3', 'a')]);
    two.remember('h2', [learned('/usr/bin/python3', 'b')]);
    two.remember('h1', [learned('/usr/bin/python3', 'c')]);
    const after = new InterpreterCache(file);
    expect(after.known('h1').map((k) => k.fingerprint)).to.deep.equal(['c']);
    expect(after.known('h2').map((k) => k.fingerprint)).to.deep.equal(['b']);
  });

  it('does not offer entries older than a week (either way: a clock set back), and drops them at the next write', () => {
    let now = 1_000_000_000_000;
    const cache = new InterpreterCache(file, () => now);
    cache.remember('h', [learned('/usr/bin/python3', 'old')]);
    now += MAX_AGE_MS + 1;
    expect(new InterpreterCache(file, () => now).known('h')).to.deep.equal([]);
    expect(new InterpreterCache(file, () => now - 2 * (MAX_AGE_MS + 1)).known('h')).to.deep.equal([]);
    expect(new InterpreterCache(file, () => now - MAX_AGE_MS).known('h')).to.have.length(1);
    new InterpreterCache(file, () => now).remember('other', [learned('/usr/bin/python3', 'x', py312)]);
    const data = JSON.parse(readFileSync(file, 'utf8'));
    expect(Object.keys(data.hosts)).to.deep.equal(['other']);
    expect(Object.values(data.facts)).to.deep.equal([py312]);
  });

  it('remembers which interpreter each venv has, for `vdeploy fetch` (offline), longer than the probe offers facts', () => {
    let now = 1_000_000_000_000;
    const cache = new InterpreterCache(file, () => now);
    cache.rememberVenvs('root@web1:22', [
      { path: '/srv/a', interpreter: py311 },
      { path: '/srv/b', interpreter: py312 },
      { path: '/srv/broken', interpreter: null },
      { path: '/srv/not-a-venv' },
    ]);
    const next = () => new InterpreterCache(file, () => now);
    expect(next().venvInterpreter('root@web1:22', '/srv/a')).to.deep.equal({ facts: py311, learned: now });
    expect(next().venvInterpreter('root@web1:22', '/srv/b')?.facts).to.deep.equal(py312);
    expect(next().venvInterpreter('root@web1:22', '/srv/broken')).to.equal(undefined);
    expect(next().venvInterpreter('root@web2:22', '/srv/a')).to.equal(undefined);
    expect(next().venvInterpreter('root@web1:22', 'constructor')).to.equal(undefined);
    // The interpreter entries may be replaced: the venv's facts stay as long as the venv entry does.
    cache.remember('root@web1:22', [learned('/usr/bin/python3', 'f', py312)]);
    expect(next().venvInterpreter('root@web1:22', '/srv/a')?.facts).to.deep.equal(py311);
    now += MAX_AGE_MS + 1;
    expect(next().venvInterpreter('root@web1:22', '/srv/a')?.facts).to.deep.equal(py311);
    now += VENV_MAX_AGE_MS;
    expect(next().venvInterpreter('root@web1:22', '/srv/a')).to.equal(undefined);
    next().rememberVenvs('root@web2:22', [{ path: '/srv/c', interpreter: py312 }]);
    const data = JSON.parse(readFileSync(file, 'utf8'));
    expect(Object.keys(data.venvs)).to.deep.equal(['root@web2:22']);
    expect(Object.values(data.facts)).to.deep.equal([py312]);
  });

  it('does not rewrite the file when a probe sees the venvs as it remembers them (a day at most)', () => {
    const now = 1_000_000_000_000;
    const cache = new InterpreterCache(file, () => now);
    cache.rememberVenvs('h', [{ path: '/srv/a', interpreter: py311 }]);
    writeFileSync(file, readFileSync(file, 'utf8').replace('{', '{ ')); // a mark that a rewrite would remove
    cache.rememberVenvs('h', [{ path: '/srv/a', interpreter: py311 }]);
    expect(readFileSync(file, 'utf8').startsWith('{ ')).to.equal(true);
    cache.rememberVenvs('h', [{ path: '/srv/a', interpreter: py312 }]);
    expect(readFileSync(file, 'utf8').startsWith('{ ')).to.equal(false);
    expect(new InterpreterCache(file, () => now).venvInterpreter('h', '/srv/a')?.facts).to.deep.equal(py312);
  });

  it('records a confirmed quick identity without making the entry younger, and only for the same fingerprint', () => {
    let now = 1_000_000_000_000;
    const cache = new InterpreterCache(file, () => now);
    cache.remember('h', [learned('/usr/bin/python3', 'f1'), { ...learned('/opt/python3', 'f2'), quick: 'q2' }]);
    now += MAX_AGE_MS - 1;
    const later = new InterpreterCache(file, () => now);
    later.confirm('h', [
      { python: '/usr/bin/python3', fingerprint: 'f1', quick: 'q1' },
      { python: '/opt/python3', fingerprint: 'other', quick: 'q-other' },
    ]);
    expect(new InterpreterCache(file, () => now).known('h').map((k) => [k.python, k.quick])).to.deep.equal([
      ['/usr/bin/python3', 'q1'],
      ['/opt/python3', 'q2'],
    ]);
    // Still learned a week ago less 1 ms: 2 ms on, no longer offered.
    now += 2;
    expect(new InterpreterCache(file, () => now).known('h')).to.deep.equal([]);
  });

  const corrupt: Array<[string, string]> = [
    ['empty', ''],
    ['not JSON', '{"v": 1, "hosts": {'],
    ['another version', JSON.stringify({ v: 2, hosts: {}, facts: {} })],
    ['a JSON array', '[]'],
    ['bad facts', JSON.stringify({ v: 1, hosts: { h: { '/p': { fingerprint: 'f', files: [], facts: 'k', learned: Date.now() } } }, facts: { k: { version: 3 } } })],
  ];
  for (const [what, text] of corrupt) {
    it(`reads a corrupt file (${what}) as empty, and rewrites it at the next write`, () => {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, text);
      const cache = new InterpreterCache(file);
      expect(cache.known('h')).to.deep.equal([]);
      cache.remember('h', [learned('/usr/bin/python3', 'f')]);
      expect(new InterpreterCache(file).known('h')).to.deep.equal([learned('/usr/bin/python3', 'f')]);
    });
  }

  it('never offers what is not its own data (a key like "constructor")', () => {
    mkdirSync(path.dirname(file), { recursive: true });
    const entry = { fingerprint: 'f', files: [], facts: 'constructor', learned: Date.now() };
    writeFileSync(file, JSON.stringify({ v: 1, hosts: { h: { '/p': entry } }, facts: {} }));
    expect(new InterpreterCache(file).known('h')).to.deep.equal([]);
    expect(new InterpreterCache(file).known('constructor')).to.deep.equal([]);
  });

  it('silently skips a cache directory it cannot create or write', () => {
    writeFileSync(path.join(dir, 'a-file'), 'x');
    const cache = new InterpreterCache(path.join(dir, 'a-file', 'vdeploy', 'interpreters.json'));
    expect(() => cache.remember('h', [learned('/usr/bin/python3', 'f')])).to.not.throw();
    expect(cache.known('h')).to.have.length(1); // still remembered for the rest of this run
    // A directory where the file should be: the rename fails; the temp file is removed.
    mkdirSync(file, { recursive: true });
    writeFileSync(path.join(file, 'keep'), 'x');
    expect(() => new InterpreterCache(file).remember('h', [learned('/usr/bin/python3', 'f')])).to.not.throw();
    expect(readdirSync(path.dirname(file))).to.deep.equal(['interpreters.json']);
  });
});
