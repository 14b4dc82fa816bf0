import { expect } from 'chai';
import { ConfigError, VdeployError } from '../../src/errors.js';
import {
  MARKER_VARIABLES,
  evaluateMarker,
  formatMarker,
  markerUsesExtra,
  parseMarker,
  type MarkerEnvironment,
} from '../../src/requirements/markers.js';
import { normalizeName } from '../../src/requirements/pep508.js';
import { cleanUpOracles, modernPackaging, pipVendoredPackaging, type Answer, type Oracle } from '../fixtures/requirements/packaging-oracle.js';
import { readSharedRequiresDist } from '../fixtures/requirements/wheel-metadata.js';

/** Debian 12's CPython, as default_environment() reports it on an amd64 host. */
const LINUX: MarkerEnvironment = {
  implementation_name: 'cpython',
  implementation_version: '3.11.2',
  os_name: 'posix',
  platform_machine: 'x86_64',
  platform_release: '6.1.0-18-amd64',
  platform_system: 'Linux',
  platform_version: '#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)',
  python_full_version: '3.11.2',
  platform_python_implementation: 'CPython',
  python_version: '3.11',
  sys_platform: 'linux',
};

/** A Windows release candidate: pre-release versions and a platform_release that is a version. */
const WINDOWS: MarkerEnvironment = {
  implementation_name: 'cpython',
  implementation_version: '3.13.0rc2',
  os_name: 'nt',
  platform_machine: 'AMD64',
  platform_release: '10',
  platform_system: 'Windows',
  platform_version: '10.0.22631',
  python_full_version: '3.13.0rc2',
  platform_python_implementation: 'CPython',
  python_version: '3.13',
  sys_platform: 'win32',
};

describe('parseMarker / formatMarker', () => {
  const good: Array<[string, string]> = [
    ['python_version < "3.12"', 'python_version < "3.12"'],
    ["python_version<'3.12'", 'python_version < "3.12"'],
    ['"3.8" <= python_version', '"3.8" <= python_version'],
    ["sys_platform == 'win32' or sys_platform == \"cygwin\"", 'sys_platform == "win32" or sys_platform == "cygwin"'],
    [
      'python_version < "3.12" and (sys_platform == "win32" or extra == "socks")',
      'python_version < "3.12" and (sys_platform == "win32" or extra == "socks")',
    ],
    ['( ( os_name == "nt" ) )', 'os_name == "nt"'],
    ['os_name == "nt" and python_version >= "3" or extra == "x"', 'os_name == "nt" and python_version >= "3" or extra == "x"'],
    ['python_version<"3.12"and os_name=="posix"', 'python_version < "3.12" and os_name == "posix"'],
    ['sys_platform not   in "win32 cygwin"', 'sys_platform not in "win32 cygwin"'],
    ['"linux" in sys_platform', '"linux" in sys_platform'],
    ['extra == "Use_Chardet.On-Py3"', 'extra == "use-chardet-on-py3"'],
    ['"SOCKS" == extra', '"socks" == extra'],
    ['python_implementation == "CPython"', 'platform_python_implementation == "CPython"'],
    ['os.name == "posix" and sys.platform == "linux"', 'os_name == "posix" and sys_platform == "linux"'],
    ['platform_version == \'say "hi"\'', 'platform_version == \'say "hi"\''],
    ['python_full_version === "3.11.2"', 'python_full_version === "3.11.2"'],
    ['python_version ~= "3.11"', 'python_version ~= "3.11"'],
  ];
  for (const [text, formatted] of good) {
    it(`parses ${text}`, () => {
      expect(formatMarker(parseMarker(text))).to.equal(formatted);
      // The formatted text means the same thing.
      expect(formatMarker(parseMarker(formatted))).to.equal(formatted);
    });
  }

  it('builds and/or trees with `and` binding tighter', () => {
    const expr = parseMarker('os_name == "a" or os_name == "b" and os_name == "c"');
    expect(expr.type).to.equal('or');
    expect(expr.type === 'or' && expr.items[1]?.type).to.equal('and');
  });

  const bad: Array<[string, RegExp]> = [
    ['', /expected a marker variable or a quoted string at column 1, found the end/],
    ['python_version <', /expected a marker variable or a quoted string at column 17/],
    ['python_version < "3.12" and', /found the end/],
    ['python_version = "3"', /unexpected "=" at column 16/],
    ['python_version < "3.12', /unterminated string starting at column 18/],
    ['python_version < 3.12', /unexpected "3" at column 18/],
    ['platform_arch == "x86_64"', /unknown marker variable "platform_arch" at column 1/],
    ['python_version == python_full_version', /compares two variables/],
    ['"a" == "b"', /compares two strings/],
    ['(os_name == "nt"', /expected "\)" at column 17/],
    ['os_name == "nt")', /expected "and", "or" or the end at column 16/],
    ['os_name not "nt"', /expected "in" after "not"/],
    ['os_name is "nt"', /expected a comparison operator .* found "is"/],
    ['os_name == "nt" AND os_name == "posix"', /expected "and", "or" or the end .* found "AND"/],
    ['os_name ~= "posix"', /"~=" at column 9 only compares PEP 440 versions/],
    ['sys_platform === "linux"', /"===" at column 14 only compares PEP 440 versions/],
    ['python_version ~= "3"', /"~=" .* only compares PEP 440 versions/],
    ['extras == "x"', /unknown marker variable "extras"/],
  ];
  for (const [text, pattern] of bad) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      expect(() => parseMarker(text)).to.throw(ConfigError, pattern);
    });
  }

  it('makes one-line errors with a hint', () => {
    try {
      parseMarker('python_version <');
      expect.fail('should throw');
    } catch (error) {
      expect(error).to.be.instanceOf(ConfigError);
      expect((error as ConfigError).message).to.match(/^invalid marker 'python_version <': /).and.not.include('\n');
      expect((error as ConfigError).hint).to.include('python_version < "3.12"');
    }
  });

  it('tells whether a marker depends on extras', () => {
    expect(markerUsesExtra(parseMarker('python_version < "3" or (os_name == "nt" and "x" == extra)'))).to.equal(true);
    expect(markerUsesExtra(parseMarker('python_version < "3"'))).to.equal(false);
  });
});

describe('evaluateMarker', () => {
  // [marker, extras, expected on LINUX, expected on WINDOWS]
  const table: Array<[string, string[], boolean, boolean]> = [
    ['python_version < "3.12"', [], true, false],
    ['python_version == "3.1"', [], false, false],
    ['python_version > "3.9"', [], true, true],
    ['python_version == "3.*"', [], true, true],
    ['python_version ~= "3.11"', [], true, true],
    ['"3.12" > python_version', [], true, false],
    ['python_full_version >= "3.13"', [], false, false], // 3.13.0rc2 is below 3.13
    ['python_full_version >= "3.13.0rc1"', [], false, true],
    ['python_full_version < "3.13"', [], true, false], // <V excludes V's own pre-releases
    ['implementation_version >= "3.11"', [], true, true],
    ['"3.1" in python_version', [], true, true], // substring, not version: "3.1" is in "3.11" and "3.13"
    ['sys_platform == "linux"', [], true, false],
    ['sys_platform in "linux darwin"', [], true, false],
    ['sys_platform not in "win32 cygwin"', [], true, false],
    ['os_name < "z"', [], false, false], // ordering of plain strings is undefined: false
    ['os_name >= "nt"', [], false, true], // ... and <=, >= mean equality
    ['platform_release >= "5.0"', [], false, true], // "6.1.0-18-amd64" is no PEP 440 version
    ['platform_release == "6.1.0-18-amd64"', [], true, false],
    ['platform_release != "5.0"', [], false, true], // an unparsable version never matches
    ['platform_version >= "10"', [], false, false], // not a version variable: string equality
    ['platform_machine in "x86_64 AMD64"', [], true, true],
    ['platform_system != "Windows" and platform_system != "Darwin"', [], true, false],
    ['python_implementation == "CPython"', [], true, true],
    ['extra == "socks"', [], false, false],
    ['extra == ""', [], true, true],
    ['extra != "socks"', [], true, true],
    ['extra == "socks"', ['socks'], true, true],
    ['extra == "SOCKS"', ['Socks'], true, true],
    ['extra == "use_chardet_on_py3"', ['Use-Chardet.On_Py3'], true, true],
    ['extra == "socks"', ['security', 'socks'], true, true],
    ['extra != "socks"', ['socks'], false, false],
    ['extra != "socks"', ['socks', 'security'], true, true], // true for "security"
    ['python_version < "3.12" and (sys_platform == "win32" or extra == "socks")', [], false, false],
    ['python_version < "3.12" and (sys_platform == "win32" or extra == "socks")', ['socks'], true, false],
    ['python_version >= "3.13" and (sys_platform == "win32" or extra == "socks")', [], false, true],
    ['os_name == "nt" or python_version < "3.12" and extra == "x"', [], false, true],
  ];
  for (const [marker, extras, linux, windows] of table) {
    it(`${marker} with extras [${extras.join(', ')}] → ${linux} / ${windows}`, () => {
      const expr = parseMarker(marker);
      expect(evaluateMarker(expr, LINUX, extras), 'linux').to.equal(linux);
      expect(evaluateMarker(expr, WINDOWS, extras), 'windows').to.equal(windows);
    });
  }

  it('repairs python_full_version of untagged builds ("3.12.1+") as packaging does', () => {
    const env = { ...LINUX, python_full_version: '3.12.1+' };
    expect(evaluateMarker(parseMarker('python_full_version >= "3.12"'), env)).to.equal(true);
  });

  it('throws a VdeployError when ~= meets a value that is no version only at evaluation time', () => {
    const expr = parseMarker('"6.0" ~= platform_release');
    expect(() => evaluateMarker(expr, LINUX)).to.throw(VdeployError, /can't be evaluated: ~= needs PEP 440 versions/);
    expect(() => evaluateMarker(expr, WINDOWS)).to.throw(VdeployError); // "~=10" has one release number
    expect(evaluateMarker(expr, { ...LINUX, platform_release: '5.15' })).to.equal(false);
    expect(evaluateMarker(expr, { ...LINUX, platform_release: '6.0' })).to.equal(true);
  });
});

describe('evaluateMarker against real packaging', () => {
  const HAND_WRITTEN = [
    'python_version < "3.12"',
    "python_version >= '3.8'",
    'python_version == "3.11"',
    'python_version == "3.1"',
    'python_version != "3.13"',
    'python_version > "3.11"',
    'python_version ~= "3.11"',
    'python_version == "3.*"',
    'python_version == "3.11.*"',
    'python_version > "3.11.1"',
    'python_full_version >= "3.11.0"',
    'python_full_version < "3.13"',
    'python_full_version >= "3.13"',
    'python_full_version >= "3.13.0rc1"',
    'python_full_version === "3.11.2"',
    '"3.8" < python_version',
    '"3.13" <= python_full_version',
    '"3.1" in python_version',
    'python_version not in "3.6 3.7"',
    'sys_platform == "linux"',
    "sys_platform == 'win32'",
    'sys_platform != "darwin"',
    'sys_platform in "linux darwin"',
    '"win" in sys_platform',
    "sys_platform not in 'win32 cygwin'",
    'os_name == "posix"',
    'os_name < "z"',
    'os_name >= "a"',
    'platform_machine == "x86_64"',
    'platform_machine in "x86_64 AMD64"',
    'platform_python_implementation == "CPython"',
    'python_implementation != "PyPy"',
    'implementation_name == "cpython"',
    'implementation_version >= "3.11"',
    'platform_system == "Windows"',
    'platform_system != "Windows" and platform_system != "Darwin"',
    'platform_release >= "5.0"',
    'platform_release ~= "10.0"',
    'platform_release == "10"',
    'platform_release != "5.0"',
    'platform_version == "10.0.22631"',
    'platform_version >= "10"',
    'extra == "socks"',
    "extra == 'SOCKS'",
    'extra == "security" or extra == "socks"',
    'extra != "socks"',
    'extra == ""',
    'extra == "use_chardet.on-py3"',
    'python_version < "3.12" and (sys_platform == "win32" or extra == "socks")',
    '(python_version < "3.12" and sys_platform == "win32") or extra == "socks"',
    'python_version >= "3" and python_version < "4" or os_name == "nt"',
    'python_version<"3.12"and os_name=="posix"',
    "( ( os_name == 'nt' ) )",
    // Both refuse these (vdeploy when parsing, packaging when evaluating or parsing).
    'os_name ~= "posix"',
    'sys_platform === "linux"',
    'python_version <',
    'platform_arch == "x86_64"',
    '"a" == "b"',
  ];
  const EXTRAS = [[], ['socks'], ['Security', 'use_chardet_on_py3']];

  const requiresDist = readSharedRequiresDist();
  const fromWheels = typeof requiresDist === 'string' ? [] : requiresDist.flatMap((r) => (r.marker ? [r.marker] : []));
  const markers = [...new Set([...HAND_WRITTEN, ...fromWheels])];

  it('includes every Requires-Dist marker of the shared wheels', function () {
    if (typeof requiresDist === 'string') this.skip();
    expect(fromWheels.length).to.be.greaterThan(30);
    for (const marker of fromWheels) expect(markers).to.include(marker);
  });

  /** vdeploy's answer in the oracle's terms: a value, or an error (parse or evaluation). */
  function ours(marker: string, env: MarkerEnvironment, extras: string[]): Answer {
    try {
      return { value: evaluateMarker(parseMarker(marker), env, extras) };
    } catch (error) {
      if (error instanceof VdeployError) return { error: error.name };
      throw error;
    }
  }
  const same = (a: Answer, b: Answer) => ('value' in a && 'value' in b ? a.value === b.value : 'error' in a && 'error' in b);
  const show = (a: Answer | undefined) => (a === undefined ? 'nothing' : 'value' in a ? String(a.value) : `error ${a.error}`);

  /** Asks the oracle once for every marker × environment × extras; returns a lookup. */
  function askAll(oracle: Oracle) {
    const envs: Array<[string, MarkerEnvironment]> = [['linux', LINUX], ['windows', WINDOWS], ['this machine', oracle.defaultEnvironment()]];
    const cases = markers.flatMap((m) => envs.flatMap(([name, env]) => EXTRAS.map((extras) => ({ marker: m, name, env, extras }))));
    const answers = oracle.ask({ markers: cases.map((c) => [c.marker, c.env, c.extras]) }).markers;
    return cases.map((c, i) => ({ ...c, theirs: answers[i]!, ours: ours(c.marker, c.env, c.extras) }));
  }

  const modern = modernPackaging();
  if (typeof modern === 'string') {
    it.skip(`agrees with the current packaging (skipped: ${modern})`);
  } else {
    describe(`agrees with ${modern.label}`, () => {
      let results: ReturnType<typeof askAll> = [];
      before(() => {
        results = askAll(modern);
      });
      for (const marker of markers) {
        it(marker, () => {
          const rows = results.filter((r) => r.marker === marker);
          expect(rows).to.have.length(3 * EXTRAS.length);
          const differ = rows.filter((r) => !same(r.ours, r.theirs));
          const report = differ.map((r) => `${r.name} [${r.extras.join(',')}]: ours ${show(r.ours)}, packaging ${show(r.theirs)}`);
          expect(report).to.deep.equal([]);
        });
      }
    });
  }

  /**
   * Where packaging 21.x (vendored in Debian's pip 23) answers differently from the current
   * packaging, which vdeploy follows. Any other difference fails the test.
   */
  type Row = ReturnType<typeof askAll>[number];
  const OLD_PACKAGING_DIFFERENCES: Array<{ why: string; applies: (row: Row) => boolean }> = [
    {
      why: 'it leaves pre-release Pythons (3.13.0rc2) out of version comparisons',
      applies: (r) => r.env === WINDOWS && /python_full_version|implementation_version/.test(r.marker),
    },
    {
      why: 'it does not normalize extra names (PEP 685)',
      applies: (r) =>
        /\bextra\b/.test(r.marker) &&
        [...r.extras, ...[...r.marker.matchAll(/["']([^"']*)["']/g)].map((m) => m[1]!)].some((name) => name !== normalizeName(name)),
    },
    { why: 'it orders plain strings where the current one answers false (<, >) or equality (<=, >=)', applies: (r) => ['os_name < "z"', 'os_name >= "a"'].includes(r.marker) },
    { why: 'it compares any variable as a version when the value parses as one', applies: (r) => r.marker === 'platform_version >= "10"' },
    { why: 'it allows === on any variable', applies: (r) => r.marker === 'sys_platform === "linux"' },
  ];

  const pip = pipVendoredPackaging();
  after(() => cleanUpOracles());
  if (typeof pip === 'string') {
    it.skip(`matches pip's vendored packaging except for known differences (skipped: ${pip})`);
  } else {
    it(`matches ${pip.label} except for known differences of old packaging`, () => {
      const unexpected = askAll(pip)
        .filter((r) => !same(r.ours, r.theirs) && !OLD_PACKAGING_DIFFERENCES.some((d) => d.applies(r)))
        .map((r) => `${r.marker} on ${r.name} [${r.extras.join(',')}]: ours ${show(r.ours)}, pip's packaging ${show(r.theirs)}`);
      expect(unexpected).to.deep.equal([]);
    });
  }

  it('types MarkerEnvironment with exactly the keys of default_environment()', function () {
    const oracle = typeof modern === 'string' ? pip : modern;
    if (typeof oracle === 'string') this.skip();
    const keys = Object.keys(oracle.defaultEnvironment()).sort();
    const ours: Array<keyof MarkerEnvironment> = Object.keys(LINUX) as Array<keyof MarkerEnvironment>;
    expect(keys).to.deep.equal([...ours].sort());
    expect(MARKER_VARIABLES.filter((v) => v !== 'extra').sort()).to.deep.equal(keys);
  });
});
