import { expect } from 'chai';
import { VdeployError } from '../../src/errors.js';
import { parseMetadata } from '../../src/wheels/metadata.js';
import { parseRecord } from '../../src/wheels/record.js';

describe('wheel METADATA', () => {
  const requestsLike = [
    'Metadata-Version: 2.4',
    'Name: requests',
    'Version: 2.34.2',
    'Summary: Python HTTP for Humans.',
    'Requires-Python: >=3.9',
    'Requires-Dist: charset_normalizer<4,>=2',
    'Requires-Dist: idna<4,>=2.5',
    'Requires-Dist: PySocks!=1.5.7,>=1.5.6; extra == "socks"',
    'Provides-Extra: socks',
    'Provides-Extra: use-chardet-on-py3',
    'Requires-Dist: chardet<6,>=3.0.2; extra == "use-chardet-on-py3"',
    'License: Apache 2.0',
    '  with a folded second line',
    '',
    'Name: not-a-header (this is the description body)',
    'Requires-Dist: neither-is-this',
  ].join('\n');

  it('reads the fields vdeploy needs, in order, and stops at the first blank line', () => {
    const m = parseMetadata(requestsLike, 'METADATA');
    expect(m).to.deep.include({
      metadataVersion: '2.4',
      name: 'requests',
      version: '2.34.2',
      requiresPython: '>=3.9',
      requiresDist: [
        'charset_normalizer<4,>=2',
        'idna<4,>=2.5',
        'PySocks!=1.5.7,>=1.5.6; extra == "socks"',
        'chardet<6,>=3.0.2; extra == "use-chardet-on-py3"',
      ],
      providesExtra: ['socks', 'use-chardet-on-py3'],
    });
    expect(m.headers['license']).to.deep.equal(['Apache 2.0\nwith a folded second line']);
    expect(m.headers['summary']).to.deep.equal(['Python HTTP for Humans.']);
  });

  it('joins folded structured fields into one line', () => {
    const m = parseMetadata('Name: app\nVersion: 1.0\nRequires-Dist: foo>=1;\n  python_version < "3.12"\n', 'M');
    expect(m.requiresDist).to.deep.equal(['foo>=1; python_version < "3.12"']);
  });

  it('accepts CRLF line ends, a BOM, any header case, and no trailing body', () => {
    const m = parseMetadata('\uFEFFmetadata-version: 2.1\r\nNAME: App\r\nversion: 1.0\r\n', 'M');
    expect(m).to.deep.include({ name: 'App', version: '1.0', requiresDist: [], providesExtra: [] });
    expect(m).not.to.have.property('requiresPython');
  });

  const bad: Array<[string, string, RegExp]> = [
    ['no name', 'Version: 1.0\n', /^x\/METADATA: no Name field$/],
    ['no version', 'Name: a\n', /^x\/METADATA: no Version field$/],
    ['body before the headers end', 'Name: a\nthis is not a header\nVersion: 1\n', /^x\/METADATA:2: malformed metadata header "this is not a header"$/],
    ['a continuation with nothing to continue', '  folded\nName: a\n', /^x\/METADATA:1: malformed/],
    ['an empty field name', ': value\n', /^x\/METADATA:1: malformed/],
  ];
  for (const [what, text, message] of bad) {
    it(`refuses ${what}`, () => {
      expect(() => parseMetadata(text, 'x/METADATA')).to.throw(VdeployError, message);
    });
  }
});

describe('wheel RECORD', () => {
  it('parses hashed rows, rows without a hash, quoted paths and CRLF', () => {
    const text = [
      'app/__init__.py,sha256=AAAA,12',
      '"app/with,comma.py",sha256=BBBB,3',
      '"app/with ""quotes"".py",SHA384=CCCC,4',
      'app-1.0.dist-info/RECORD,,',
      '',
    ].join('\r\n');
    expect(parseRecord(text, 'RECORD')).to.deep.equal([
      { path: 'app/__init__.py', hash: { algorithm: 'sha256', digest: 'AAAA' }, size: 12, lineNumber: 1 },
      { path: 'app/with,comma.py', hash: { algorithm: 'sha256', digest: 'BBBB' }, size: 3, lineNumber: 2 },
      { path: 'app/with "quotes".py', hash: { algorithm: 'sha384', digest: 'CCCC' }, size: 4, lineNumber: 3 },
      { path: 'app-1.0.dist-info/RECORD', lineNumber: 4 },
    ]);
  });

  it('keeps the last row when the file lacks a final newline', () => {
    expect(parseRecord('a,sha256=x,1\nb,sha256=y,2', 'R').map((r) => r.path)).to.deep.equal(['a', 'b']);
  });

  for (const [what, text, line] of [
    ['a non-numeric size', 'a,sha256=x,1\nb,sha256=y,big\n', 2],
    ['a hash without "="', 'a,deadbeef,1\n', 1],
    ['an empty digest', 'a,sha256=,1\n', 1],
    ['too many fields', 'a,sha256=x,1,extra\n', 1],
    ['an unterminated quote', 'a,sha256=x,1\n"b,sha256=y,2\n', 2],
  ] as const) {
    it(`refuses ${what}, naming the line`, () => {
      expect(() => parseRecord(text, 'w.whl!RECORD')).to.throw(VdeployError, new RegExp(`^w\\.whl!RECORD:${line}: malformed RECORD row$`));
    });
  }
});
