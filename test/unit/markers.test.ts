import { expect } from 'chai';
import { ConfigError, VdeployError } from '../../src/errors.js';
import { evaluateMarker, formatMarker, markerUsesExtra, parseMarker } from '../../src/requirements/markers.js';
import { LINUX, WINDOWS } from '../helpers/marker-environments.js';

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
