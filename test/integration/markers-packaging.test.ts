/** Our marker evaluation against the real `packaging` (run by Python): split from test/unit/markers.test.ts. */
import { expect } from 'chai';
import { VdeployError } from '../../src/errors.js';
import { MARKER_VARIABLES, evaluateMarker, parseMarker, type MarkerEnvironment } from '../../src/requirements/markers.js';
import { normalizeName } from '../../src/requirements/pep508.js';
import { cleanUpOracles, pipVendoredPackaging, modernPackaging, type Answer, type Oracle } from '../fixtures/requirements/packaging-oracle.js';
import { readSharedRequiresDist } from '../fixtures/requirements/wheel-metadata.js';
import { LINUX, WINDOWS } from '../helpers/marker-environments.js';

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
