import { expect } from 'chai';
import { ConfigError } from '../../src/errors.js';
import { formatMarker } from '../../src/requirements/markers.js';
import {
  formatRequirement,
  normalizeName,
  parseRequirement,
  satisfiesSpecifier,
  tryParseRequirement,
} from '../../src/requirements/pep508.js';

describe('normalizeName (PEP 503)', () => {
  const table: Array<[string, string]> = [
    ['Django', 'django'],
    ['zope.interface', 'zope-interface'],
    ['Foo_Bar', 'foo-bar'],
    ['foo__-.bar', 'foo-bar'],
    ['charset_normalizer', 'charset-normalizer'],
    ['A', 'a'],
  ];
  for (const [name, key] of table) it(`${name} → ${key}`, () => expect(normalizeName(name)).to.equal(key));
});

describe('parseRequirement', () => {
  // [text, name, key, extras, specifier, marker (formatted) or undefined]
  const good: Array<[string, string, string, string[], string, string?]> = [
    ['django', 'django', 'django', [], ''],
    ['Django>=5.2,<6', 'Django', 'django', [], '>=5.2,<6'],
    ['zope.interface>=5', 'zope.interface', 'zope-interface', [], '>=5'],
    ['Foo_Bar', 'Foo_Bar', 'foo-bar', [], ''],
    ['0x10c', '0x10c', '0x10c', [], ''],
    ['  requests  ', 'requests', 'requests', [], ''],
    ['requests[socks]', 'requests', 'requests', ['socks'], ''],
    ['requests[ Socks , Security ]>=2', 'requests', 'requests', ['security', 'socks'], '>=2'],
    ['requests [socks,socks,SOCKS]', 'requests', 'requests', ['socks'], ''],
    ['requests[use_chardet.on-py3]', 'requests', 'requests', ['use-chardet-on-py3'], ''],
    ['requests[]', 'requests', 'requests', [], ''],
    ['pkg==1.0', 'pkg', 'pkg', [], '==1.0'],
    ['pkg===1.0-weird', 'pkg', 'pkg', [], '===1.0-weird'],
    ['pkg!=1.5', 'pkg', 'pkg', [], '!=1.5'],
    ['pkg<=2', 'pkg', 'pkg', [], '<=2'],
    ['pkg>=1', 'pkg', 'pkg', [], '>=1'],
    ['pkg<2', 'pkg', 'pkg', [], '<2'],
    ['pkg>1', 'pkg', 'pkg', [], '>1'],
    ['pkg~=2.2', 'pkg', 'pkg', [], '~=2.2'],
    ['pkg==1.*', 'pkg', 'pkg', [], '==1.*'],
    ['pkg!=1.4.*', 'pkg', 'pkg', [], '!=1.4.*'],
    ['pkg==1.0+local.7', 'pkg', 'pkg', [], '==1.0+local.7'],
    ['pkg >= 1.0 , < 2.0 , != 1.5.*', 'pkg', 'pkg', [], '>=1.0,<2.0,!=1.5.*'],
    ['pkg>=1.0,', 'pkg', 'pkg', [], '>=1.0'], // packaging accepts a trailing comma too
    ['pkg (>=1.0)', 'pkg', 'pkg', [], '>=1.0'],
    ['pkg(>=1.0, <2)', 'pkg', 'pkg', [], '>=1.0,<2'],
    ['pkg[extra] ( == 1.0 ) ; os_name == "nt"', 'pkg', 'pkg', ['extra'], '==1.0', 'os_name == "nt"'],
    ['pkg; python_version < "3.12"', 'pkg', 'pkg', [], '', 'python_version < "3.12"'],
    ["pkg;python_version<'3.12'", 'pkg', 'pkg', [], '', 'python_version < "3.12"'],
    [
      'PySocks!=1.5.7,>=1.5.6; extra == "socks"',
      'PySocks',
      'pysocks',
      [],
      '!=1.5.7,>=1.5.6',
      'extra == "socks"',
    ],
    [
      'pkg>=2 ; python_version < "3.12" and (sys_platform == "win32" or extra == "socks")',
      'pkg',
      'pkg',
      [],
      '>=2',
      'python_version < "3.12" and (sys_platform == "win32" or extra == "socks")',
    ],
    ['pkg; extra == \'Use_Chardet\'', 'pkg', 'pkg', [], '', 'extra == "use-chardet"'],
  ];
  for (const [text, name, key, extras, specifier, marker] of good) {
    it(`parses ${text}`, () => {
      const req = parseRequirement(text);
      expect({ name: req.name, key: req.key, extras: req.extras, specifier: req.specifier }).to.deep.equal({ name, key, extras, specifier });
      expect(req.marker ? formatMarker(req.marker) : undefined).to.equal(marker);
      // The canonical text parses back to the same thing.
      expect(parseRequirement(formatRequirement(req))).to.deep.equal(req);
    });
  }

  it('formats as packaging does: name[extras]specifier; marker', () => {
    expect(formatRequirement(parseRequirement('Foo_Bar [ b , a ] >= 1.0 , < 2 ; python_version<"3.12"'))).to.equal(
      'Foo_Bar[a,b]>=1.0,<2; python_version < "3.12"',
    );
  });

  const bad: Array<[string, RegExp]> = [
    ['', /it is empty/],
    ['-e ./app', /must start with a package name/],
    ['_private', /must start with a package name/],
    ['pkg-', /"-" does not start with a comparison operator/],
    ['pkg 1.0', /"1.0" does not start with a comparison operator/],
    ['pkg=1.0', /"=1.0" does not start with a comparison operator/],
    ['pkg>=', /has no version after >=/],
    ['pkg>=1.0 python_version < "3"', /white space inside the version \(missing ";" before a marker\?\)/],
    ['pkg>=abc', /">=abc" is not a valid PEP 440 version specifier/],
    ['pkg~=1', /"~=1" is not a valid PEP 440 version specifier/],
    ['pkg>=1.0.*', /a \.\* wildcard is only allowed with == and !=/],
    ['pkg==1.0a1.*', /can't follow a pre-, post-, dev or local version/],
    ['pkg<1.0+local', /not a valid PEP 440 version specifier/],
    ['pkg[socks', /without a closing "]"/],
    ['pkg[so cks]', /expected a comma between extra names/],
    ['pkg[a,,b]', /empty extra name/],
    ['pkg[-a]', /"-a" is not a valid extra name/],
    ['pkg (>=1.0', /"\(" around the version specifier is not closed/],
    ['pkg >=1.0)', /unexpected parenthesis/],
    ['pkg;', /nothing after ";"/],
    ['pkg; python_version <', /bad marker: expected a marker variable or a quoted string at column 22/],
    ['pkg; platform_arch == "x"', /bad marker: unknown marker variable "platform_arch" at column 6/],
  ];
  for (const [text, pattern] of bad) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      expect(() => parseRequirement(text)).to.throw(ConfigError, pattern);
      try {
        parseRequirement(text);
      } catch (error) {
        expect((error as ConfigError).message).to.match(/^invalid requirement "/).and.not.include('\n');
        expect((error as ConfigError).hint).to.include('name[extra1,extra2]>=1.0,<2');
      }
    });
  }

  const urls = ['pkg @ https://example.invalid/pkg-1.0-py3-none-any.whl', 'pkg[extra]@file:///tmp/pkg.whl', 'pkg @ git+https://example.invalid/pkg.git ; os_name == "nt"'];
  for (const text of urls) {
    it(`recognises and refuses the URL requirement ${text}`, () => {
      const parsed = tryParseRequirement(text);
      expect(parsed.ok === false && parsed.kind).to.equal('url');
      expect(() => parseRequirement(text)).to.throw(ConfigError, /is not supported: direct URL references \(name @ url\)/);
    });
  }
});

describe('satisfiesSpecifier', () => {
  // [version, specifier, options, expected]
  const table: Array<[string, string, { prereleases?: boolean }, boolean]> = [
    ['1.0', '', {}, true],
    ['1.0a1', '', {}, false],
    ['1.0a1', '', { prereleases: true }, true],
    ['5.2.17', '>=5.2,<6', {}, true],
    ['6.0', '>=5.2,<6', {}, false],
    ['6.0a1', '>=5.2,<6', { prereleases: true }, false], // <6 excludes 6's own pre-releases
    ['5.3a1', '>=5.2,<6', {}, false],
    ['5.3a1', '>=5.2,<6', { prereleases: true }, true],
    ['5.3a1', '>=5.3a1,<6', {}, true], // the specifier names a pre-release
    ['1.0', '>1.0rc1', {}, true],
    ['1.0.post1', '>1.0', {}, false],
    ['1.0.post2', '>1.0.post1', {}, true],
    ['1.0+local', '>1.0', {}, false],
    ['1.0+ubuntu1', '==1.0', {}, true],
    ['1.0+b', '==1.0+a', {}, false],
    ['1.4.9', '==1.4.*', {}, true],
    ['1.5', '==1.4.*', {}, false],
    ['1', '==1.0.*', {}, true], // prefix match pads with zeros
    ['2.2.5', '~=2.2', {}, true],
    ['3.0', '~=2.2', {}, false],
    ['1.0', '~=1.0.0', {}, true],
    ['1.0.1', '~=1.0.0', {}, true],
    ['1.1', '~=1.0.0', {}, false],
    ['1.0-Weird', '===1.0-weird', {}, true],
    ['not-a-version', '>=1', {}, false],
    ['1.0', '!=1.0', {}, false],
    ['1.0.0', '==1.0', {}, true],
    ['1!1.0', '>=2.0', {}, true],
  ];
  for (const [version, specifier, options, expected] of table) {
    it(`${version} ${expected ? 'satisfies' : 'does not satisfy'} "${specifier}" ${JSON.stringify(options)}`, () => {
      expect(satisfiesSpecifier(version, specifier, options)).to.equal(expected);
    });
  }

  it('refuses an invalid specifier with a ConfigError', () => {
    expect(() => satisfiesSpecifier('1.0', '>=1.0.*')).to.throw(ConfigError, /^invalid version specifier ">=1.0.\*"/);
  });
});
