/**
 * The shared corpus of venv trees (test/fixtures/venv-trees/<case>/, with expected.json): the probe
 * script (real Python, through probeHost on a LocalConnection) and the SFTP reader
 * (read-host-files.ts, node:fs standing in for SFTP) must each read every case as expected.json says
 * — or, for the reader, decline the cases listed below. test/python/test_venv_trees.py holds
 * venv_facts.py to the same files. venv-trees-broken/ has a wrong expected.json on purpose: both
 * comparisons must report it, or they could not catch a disagreement either.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { expect } from 'chai';
import { InterpreterCache } from '../../src/facts/interpreter-cache.js';
import { probeHost } from '../../src/facts/probe-host.js';
import { readHostFiles } from '../../src/facts/read-host-files.js';
import type { HostFacts, VenvFacts } from '../../src/facts/types.js';
import type { Connection } from '../../src/remote/connection.js';
import { LocalConnection } from '../../src/remote/local-connection.js';
import { makeTempDir } from '../helpers/cli.js';

const TREES = fileURLToPath(new URL('../fixtures/venv-trees/', import.meta.url));
const BROKEN = fileURLToPath(new URL('../fixtures/venv-trees-broken/', import.meta.url));

/** The cases the SFTP reader leaves to the script (it does not read .egg-info or list pip's stashes); any other decline is a failure. */
const DECLINED = ['egg-info-dir', 'egg-info-file', 'pip-stash'];

interface Expected {
  installed: Array<{ name: string; version: string }>;
  history: unknown[];
}

const local = new LocalConnection();
/** The same target without files(): only the script can answer. */
const scriptOnly: Connection = { target: local.target, exec: (a, o) => local.exec(a, o), put: (a, b, o) => local.put(a, b, o), close: async () => {} };

const casesOf = (root: string) => readdirSync(root).filter((n) => existsSync(path.join(root, n, 'expected.json'))).sort();
const expectedOf = (root: string, name: string) => JSON.parse(readFileSync(path.join(root, name, 'expected.json'), 'utf8')) as Expected;

/**
 * A copy of the case with a bin/python (→ /usr/bin/python3), which the probe needs to call it a venv
 * and which the corpus does not commit: it would point into whatever machine checks it out.
 */
function layOut(root: string, name: string, into: string): string {
  const venv = path.join(into, name);
  cpSync(path.join(root, name), venv, { recursive: true, verbatimSymlinks: true });
  mkdirSync(path.join(venv, 'bin'));
  symlinkSync('/usr/bin/python3', path.join(venv, 'bin', 'python'));
  return venv;
}

/** How `facts` differ from expected.json: [] when they agree. */
function mismatches(expected: Expected, facts: VenvFacts | undefined): string[] {
  if (facts?.state !== 'venv') return [`not read as a venv: ${JSON.stringify(facts)}`];
  const installed = facts.installed.map(({ name, version }) => ({ name, version }));
  const out: string[] = [];
  if (!isDeepStrictEqual(installed, expected.installed)) out.push(`installed ${JSON.stringify(installed)}, expected ${JSON.stringify(expected.installed)}`);
  if (!isDeepStrictEqual(facts.history, expected.history)) out.push(`history ${JSON.stringify(facts.history)}, expected ${JSON.stringify(expected.history)}`);
  return out;
}

describe('the venv-tree corpus (probe script and SFTP reader against expected.json)', function () {
  this.timeout(60_000);
  const cases = casesOf(TREES);
  const broken = casesOf(BROKEN);
  let host: string;
  let cacheDir: string;
  let cache: InterpreterCache;
  /** case → its venv's path on the "host". */
  const venvs = new Map<string, string>();
  const brokenVenvs = new Map<string, string>();
  let byScript: HostFacts;

  before(async () => {
    host = await makeTempDir('vdeploy-venv-trees-');
    cacheDir = path.join(host, 'wheels');
    mkdirSync(cacheDir);
    mkdirSync(path.join(host, 'broken'));
    for (const name of cases) venvs.set(name, layOut(TREES, name, host));
    for (const name of broken) brokenVenvs.set(name, layOut(BROKEN, name, path.join(host, 'broken')));
    cache = new InterpreterCache(path.join(host, 'local-cache', 'interpreters.json'));
    // One probe of every case; it also teaches the cache the interpreter, which the SFTP reader needs.
    const all = [...venvs.values(), ...brokenVenvs.values()].map((p) => ({ path: p, python: 'python3' }));
    byScript = await probeHost(scriptOnly, { cacheDir, venvs: all }, { interpreterCache: cache });
    expect(byScript.readBy).to.equal('script');
  });

  const byFiles = async (venv: string) => readHostFiles(await local.files(), { cacheDir, venvs: [{ path: venv }] }, cache.known(local.target));
  const scriptFacts = (venv: string) => byScript.venvs.find((v) => v.path === venv);

  it('has the cases it must cover, and a broken one', () => {
    expect(cases).to.include.members(['plain', 'pth-dirs', 'crlf', 'lib64-symlink', 'history-torn', 'non-ascii', ...DECLINED]);
    expect(broken).to.not.deep.equal([]);
  });

  it('the probe script reads every case as expected.json says', () => {
    const failures: Record<string, string[]> = {};
    for (const name of cases) {
      const found = mismatches(expectedOf(TREES, name), scriptFacts(venvs.get(name)!));
      if (found.length > 0) failures[name] = found;
    }
    expect(failures).to.deep.equal({});
  });

  it('the SFTP reader reads every case as expected.json says, declining only the cases listed', async () => {
    expect(cache.known(local.target).some((k) => k.quick !== undefined), 'the probe taught the cache nothing').to.equal(true);
    const declined: string[] = [];
    const failures: Record<string, string[]> = {};
    for (const name of cases) {
      const facts = await byFiles(venvs.get(name)!);
      const found = facts === null ? [] : mismatches(expectedOf(TREES, name), facts.venvs[0]);
      if (facts === null) declined.push(name);
      else if (found.length > 0) failures[name] = found;
    }
    expect(failures).to.deep.equal({});
    expect(declined).to.deep.equal(DECLINED);
  });

  it('a wrong expected.json (venv-trees-broken/) is reported by both comparisons', async () => {
    for (const name of broken) {
      const venv = brokenVenvs.get(name)!;
      const expected = expectedOf(BROKEN, name);
      expect(mismatches(expected, scriptFacts(venv)), `${name} by the script`).to.have.length(2);
      const facts = await byFiles(venv);
      expect(facts, `${name}: the SFTP reader declined`).to.not.equal(null);
      expect(mismatches(expected, facts!.venvs[0]), `${name} by the SFTP reader`).to.have.length(2);
    }
  });
});
