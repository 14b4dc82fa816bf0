/**
 * parseProbeOutput: the probe script's wire format turned into HostFacts, and
 * every malformed answer refused with one ProtocolError line naming the host and the script.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { ProtocolError, VdeployError } from '../../src/errors.js';
import { parseProbeOutput } from '../../src/facts/probe-host.js';
import { readProbeAnswer } from '../../src/facts/probe-output.js';
import type { HostFacts } from '../../src/facts/types.js';
import { LINUX_MARKERS as markers } from '../helpers/interpreter-facts.js';

const TARGET = 'deploy@web1:22';

const py311 = { version: '3.11.2', markers, supportedTags: ['cp311-cp311-manylinux_2_36_x86_64', 'py3-none-any'] };
const py312 = { version: '3.12.1', markers: { ...markers, python_version: '3.12', python_full_version: '3.12.1' }, supportedTags: ['cp312-cp312-linux_x86_64'] };

/** A well-formed answer; each case below breaks one thing. */
function good(): any {
  return structuredClone({
    v: 1,
    cacheDir: '/home/deploy/.cache/vdeploy/wheels',
    cachedWheels: ['sqlparse-0.6.0-py3-none-any.whl'],
    interpreters: [py311, py312],
    venvs: [
      { path: '/srv/a', state: 'venv', interpreter: 0, installed: [{ name: 'Django', version: '5.2.17' }, { name: 'typing_extensions', version: '4.16.0' }] },
      { path: '/srv/b', state: 'venv', interpreter: 0, installed: [] },
      { path: '/srv/c', state: 'missing', interpreter: 1 },
      { path: '/srv/d', state: 'missing', interpreter: null, interpreterError: 'python3.13 not found on PATH' },
      { path: '/srv/e', state: 'not-a-venv', detail: 'is a file, not a venv directory' },
    ],
    probeMs: 41.5,
  });
}

const line = (value: unknown) => `\n${JSON.stringify(value)}\n`;

function parseError(stdout: string): VdeployError {
  try {
    parseProbeOutput(stdout, TARGET);
  } catch (err) {
    expect(err).to.be.instanceOf(VdeployError);
    return err as VdeployError;
  }
  throw new Error('expected parseProbeOutput to throw');
}

describe('parseProbeOutput', () => {
  it('turns good output into HostFacts: keys normalized, interpreters shared, order kept', () => {
    const facts: HostFacts = parseProbeOutput(line(good()), TARGET);
    expect(facts.cacheDir).to.equal('/home/deploy/.cache/vdeploy/wheels');
    expect(facts.cachedWheels).to.deep.equal(['sqlparse-0.6.0-py3-none-any.whl']);
    expect(facts.probeMs).to.equal(41.5);
    expect(facts.venvs.map((v) => v.path)).to.deep.equal(['/srv/a', '/srv/b', '/srv/c', '/srv/d', '/srv/e']);
    const [a, b, c, d, e] = facts.venvs;
    expect(a).to.deep.equal({
      path: '/srv/a',
      state: 'venv',
      interpreter: py311,
      installed: [
        { name: 'Django', key: 'django', version: '5.2.17' },
        { name: 'typing_extensions', key: 'typing-extensions', version: '4.16.0' },
      ],
      history: [],
    });
    expect(a!.state === 'venv' && b!.state === 'venv' && a!.interpreter === b!.interpreter).to.equal(true);
    expect(c).to.deep.equal({ path: '/srv/c', state: 'missing', interpreter: py312 });
    expect(d).to.deep.equal({ path: '/srv/d', state: 'missing', interpreter: null, interpreterError: 'python3.13 not found on PATH' });
    expect(e).to.deep.equal({ path: '/srv/e', state: 'not-a-venv', detail: 'is a file, not a venv directory' });
  });

  it('fills in interpreters the host answered by fingerprint, and reports the fresh ones to cache', () => {
    const output = good();
    output.interpreters = [{ python: '/usr/bin/python3.11', cached: 'f311' }, { ...py312, python: '/opt/py/bin/python3.12', fingerprint: 'f312', files: ['/opt/py/lib/tags.py'] }];
    output.interpretersRun = 1;
    const { facts, learned } = readProbeAnswer(line(output), TARGET, new Map([['f311', py311]]));
    const [a, , c] = facts.venvs;
    expect(a!.state === 'venv' && a!.interpreter).to.equal(py311);
    expect(c).to.deep.equal({ path: '/srv/c', state: 'missing', interpreter: py312 });
    expect(facts.interpretersRun).to.equal(1);
    expect(learned).to.deep.equal([{ python: '/opt/py/bin/python3.12', fingerprint: 'f312', files: ['/opt/py/lib/tags.py'], facts: py312 }]);
    // Facts without a fingerprint (the interpreter was replaced while it ran) are used, not cached.
    expect(readProbeAnswer(line(good()), TARGET, new Map()).learned).to.deep.equal([]);
  });

  it('reads the example answer of the contract (test/fixtures/contracts/probe.answer.json)', () => {
    const fixture = (name: string) => line(JSON.parse(readFileSync(new URL(`../fixtures/contracts/${name}.json`, import.meta.url), 'utf8')));
    const { facts, learned, confirmed } = readProbeAnswer(fixture('probe.answer'), TARGET, new Map([['99355e64bdb37ce12bcbcbcb96e002f1', py311]]));
    expect(facts.venvs.map((v) => v.state)).to.deep.equal(['venv', 'venv', 'missing', 'missing', 'not-a-venv']);
    expect(facts.venvs[2]).to.deep.equal({ path: '/srv/new/venv', state: 'missing', interpreter: py311, halfMade: true });
    expect(facts.venvs[1]).to.deep.include({ stashes: ['/srv/worker/venv/lib/python3.12/site-packages/~unicorn'] });
    expect(learned.map((l) => [l.python, l.facts.version])).to.deep.equal([['/opt/python/3.12/bin/python3.12', '3.12.1']]);
    expect(confirmed.map((c) => c.python)).to.deep.equal(['/usr/bin/python3.11']);
    expect(parseError(fixture('probe.answer.error')).message).to.match(/^probing deploy@web1:22 failed: wheel cache /);
  });

  it('ignores what a login shell prints before the JSON line', () => {
    const facts = parseProbeOutput(`Welcome to web1!\nlast login: never\n${JSON.stringify(good())}\n\n`, TARGET);
    expect(facts.venvs).to.have.length(5);
  });

  it('accepts an empty host: no venvs, no interpreters, no probeMs', () => {
    const output = { v: 1, cacheDir: '/c', cachedWheels: [], interpreters: [], venvs: [] };
    expect(parseProbeOutput(line(output), TARGET)).to.deep.equal({ cacheDir: '/c', cachedWheels: [], venvs: [], readBy: 'script' });
  });

  it('reports a venv whose interpreter could not be probed as not-a-venv, with the reason', () => {
    const output = good();
    output.venvs = [{ path: '/srv/a', state: 'venv', interpreter: null, interpreterError: '/srv/a/bin/python failed (exit 1): boom', installed: [] }];
    expect(parseProbeOutput(line(output), TARGET).venvs[0]).to.deep.equal({
      path: '/srv/a',
      state: 'not-a-venv',
      detail: 'is a venv whose bin/python does not work: /srv/a/bin/python failed (exit 1): boom',
      interpreterError: '/srv/a/bin/python failed (exit 1): boom',
    });
  });

  it('gives a missing venv with no interpreter and no reason a generic interpreterError', () => {
    const output = good();
    output.venvs = [{ path: '/srv/x', state: 'missing', interpreter: null }];
    expect(parseProbeOutput(line(output), TARGET).venvs[0]).to.deep.include({ state: 'missing', interpreter: null, interpreterError: 'the interpreter could not be probed' });
  });

  it("reports the script's own error line as the host's failure", () => {
    const err = parseError(line({ v: 1, error: 'wheel cache /srv/cache: /srv/cache is not a directory' }));
    expect(err).to.not.be.instanceOf(ProtocolError);
    expect(err.message).to.equal(`probing ${TARGET} failed: wheel cache /srv/cache: /srv/cache is not a directory`);
    expect(err.hint).to.include('wheel cache');
  });

  const mutate = (change: (o: any) => void) => {
    const o = good();
    change(o);
    return line(o);
  };

  const refused: Array<[string, string, RegExp]> = [
    // garbage
    ['empty output', '', /printed nothing/],
    ['only blank lines', '\n  \n', /printed nothing/],
    ['not JSON', 'Traceback (most recent call last):\n  oops\n', /not JSON: "oops"/],
    ['truncated JSON', JSON.stringify(good()).slice(0, 200), /not JSON/],
    ['a JSON array', '[1, 2]', /expected object/],
    ['a JSON string', '"hello"', /expected object/],
    ['an unknown format version', mutate((o) => (o.v = 2)), /^.*\(v: /],
    // missing fields
    ['no cacheDir', mutate((o) => delete o.cacheDir), /cacheDir and cachedWheels are missing/],
    ['no cachedWheels', mutate((o) => delete o.cachedWheels), /cacheDir and cachedWheels are missing/],
    ['no venvs', mutate((o) => delete o.venvs), /\(venvs: /],
    ['no interpreters', mutate((o) => delete o.interpreters), /\(interpreters: /],
    ['a venv without path', mutate((o) => delete o.venvs[0].path), /venvs\.0\.path/],
    ['a venv without state', mutate((o) => delete o.venvs[1].state), /venvs\.1\.state/],
    ['a venv without installed', mutate((o) => delete o.venvs[0].installed), /venvs\.0\.installed/],
    ['a venv without interpreter', mutate((o) => delete o.venvs[0].interpreter), /venvs\.0\.interpreter is missing/],
    ['a not-a-venv without detail', mutate((o) => delete o.venvs[4].detail), /venvs\.4\.detail/],
    ['an interpreter without markers', mutate((o) => delete o.interpreters[0].markers), /interpreters\.0\.markers/],
    ['markers without sys_platform', mutate((o) => delete o.interpreters[1].markers.sys_platform), /interpreters\.1\.markers\.sys_platform/],
    ['an installed package without version', mutate((o) => delete o.venvs[0].installed[1].version), /venvs\.0\.installed\.1\.version/],
    // wrong types and values
    ['an unknown state', mutate((o) => (o.venvs[0].state = 'broken')), /venvs\.0\.state/],
    ['a numeric version', mutate((o) => (o.venvs[0].installed[0].version = 5)), /venvs\.0\.installed\.0\.version/],
    ['an empty package name', mutate((o) => (o.venvs[0].installed[0].name = '')), /venvs\.0\.installed\.0\.name/],
    ['cachedWheels as a string', mutate((o) => (o.cachedWheels = 'a.whl')), /cachedWheels/],
    ['a relative cacheDir', mutate((o) => (o.cacheDir = 'cache')), /cacheDir "cache" is not absolute/],
    ['supportedTags as a string', mutate((o) => (o.interpreters[0].supportedTags = 'py3-none-any')), /interpreters\.0\.supportedTags/],
    ['no supported tags', mutate((o) => (o.interpreters[0].supportedTags = [])), /interpreters\.0\.supportedTags/],
    ['a malformed tag', mutate((o) => (o.interpreters[0].supportedTags = ['py3-none'])), /interpreters\.0\.supportedTags\.0: must be a py-abi-platform tag/],
    ['a non-version python version', mutate((o) => (o.interpreters[0].version = 'three')), /interpreters\.0\.version: must be a Python version/],
    ['an interpreter index as a string', mutate((o) => (o.venvs[0].interpreter = '0')), /venvs\.0\.interpreter/],
    ['a dangling interpreter index', mutate((o) => (o.venvs[2].interpreter = 7)), /venvs\.2\.interpreter: no interpreter #7/],
    ['a negative interpreter index', mutate((o) => (o.venvs[2].interpreter = -1)), /venvs\.2\.interpreter/],
    ['a cached interpreter it was not offered', mutate((o) => (o.interpreters[1] = { python: '/usr/bin/python3', cached: 'abc' })), /interpreters\.1: fingerprint abc was not offered/],
    ['a cached interpreter without python', mutate((o) => (o.interpreters[1] = { cached: 'abc' })), /interpreters\.1\.python/],
    ['an interpretersRun that is not a count', mutate((o) => (o.interpretersRun = -1)), /interpretersRun/],
    ['an error that is not a string', line({ v: 1, error: 42 }), /\(error: /],
    ['an error without the protocol version', line({ error: 'boom' }), /\(v: /],
  ];
  for (const [what, stdout, pattern] of refused) {
    it(`refuses ${what} with one line naming the host`, () => {
      const err = parseError(stdout);
      expect(err).to.be.instanceOf(ProtocolError);
      expect(err.message).to.match(pattern);
      expect(err.message).to.include(TARGET).and.include('probe script');
      expect(err.message).to.not.include('\n');
      expect(err.hint).to.be.a('string');
    });
  }
});
