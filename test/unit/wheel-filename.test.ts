import { expect } from 'chai';
import { VdeployError } from '../../src/errors.js';
import {
  expandWheelTags,
  isWheelCompatible,
  normalizeName,
  parseWheelFilename,
  rankWheelTags,
} from '../../src/wheels/wheel-filename.js';

describe('wheel filenames (PEP 427)', () => {
  const good: Array<[string, Record<string, unknown>]> = [
    ['app-1.0-py3-none-any.whl', { name: 'app', version: '1.0', pythonTags: ['py3'], abiTags: ['none'], platformTags: ['any'] }],
    ['tzdata-2026.4-py2.py3-none-any.whl', { pythonTags: ['py2', 'py3'] }],
    ['typing_extensions-4.16.0-py3-none-any.whl', { name: 'typing_extensions', version: '4.16.0' }],
    ['app-1.0-1-py3-none-any.whl', { build: '1', version: '1.0' }],
    ['app-1.0-2b-py3-none-any.whl', { build: '2b' }],
    ['app-2.0rc1.post3.dev4-py3-none-any.whl', { version: '2.0rc1.post3.dev4' }],
    ['app-1.0+local.7-py3-none-any.whl', { version: '1.0+local.7' }],
    ['zope.interface-6.0-cp311-cp311-manylinux_2_17_x86_64.whl', { name: 'zope.interface', abiTags: ['cp311'] }],
    [
      'markupsafe-3.0.3-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl',
      { platformTags: ['manylinux2014_x86_64', 'manylinux_2_17_x86_64', 'manylinux_2_28_x86_64'] },
    ],
    ['pkg-1.0-cp38.cp39-abi3-win_amd64.whl', { pythonTags: ['cp38', 'cp39'], abiTags: ['abi3'], platformTags: ['win_amd64'] }],
  ];
  for (const [filename, expected] of good) {
    it(`parses ${filename}`, () => {
      const parsed = parseWheelFilename(filename);
      expect(parsed).to.include({ filename });
      for (const [key, value] of Object.entries(expected)) expect(parsed[key as keyof typeof parsed], key).to.deep.equal(value);
      if (!('build' in expected)) expect(parsed).not.to.have.property('build');
    });
  }

  const bad: Array<[string, RegExp]> = [
    ['app-1.0-py3-none-any.zip', /does not end in \.whl/],
    ['app-1.0.whl', /2 dash-separated parts/],
    ['app.whl', /: 1 dash-separated part, expected/],
    ['app-1.0-py3-any.whl', /4 dash-separated parts/],
    ['my-app-1.0-1-py3-none-any.whl', /7 dash-separated parts/],
    ['app-one-py3-none-any.whl', /"one" is not a PEP 440 version/],
    ['app-1.0-x1-py3-none-any.whl', /build tag "x1" must start with a digit/],
    ['_app-1.0-py3-none-any.whl', /invalid distribution name "_app"/],
    ['app-1.0-py3..py2-none-any.whl', /invalid python tag "py3..py2"/],
    ['app-1.0-py3--any.whl', /invalid abi tag ""/],
    ['app-1.0-py3-none-any!.whl', /invalid platform tag "any!"/],
  ];
  for (const [filename, message] of bad) {
    it(`refuses ${filename}`, () => {
      expect(() => parseWheelFilename(filename))
        .to.throw(VdeployError, message)
        .with.property('message')
        .that.satisfies((m: string) => m.startsWith(`${filename}: not a PEP 427 wheel filename: `));
    });
  }

  it('names the file as the caller labels it, with a hint', () => {
    try {
      parseWheelFilename('app.whl', 'dist/app.whl');
      expect.fail('should throw');
    } catch (err) {
      expect((err as VdeployError).message).to.match(/^dist\/app\.whl: /);
      expect((err as VdeployError).hint).to.match(/rename/);
    }
  });

  for (const [name, normalized] of [
    ['Django', 'django'],
    ['typing_extensions', 'typing-extensions'],
    ['zope.interface', 'zope-interface'],
    ['Foo__Bar.-baz', 'foo-bar-baz'],
    ['charset-normalizer', 'charset-normalizer'],
  ] as const) {
    it(`normalizes ${name} → ${normalized}`, () => expect(normalizeName(name)).to.equal(normalized));
  }

  describe('tag compatibility', () => {
    const cp311Linux = [
      'cp311-cp311-manylinux_2_28_x86_64',
      'cp311-cp311-manylinux_2_17_x86_64',
      'cp311-cp311-linux_x86_64',
      'cp311-abi3-manylinux_2_17_x86_64',
      'cp311-none-linux_x86_64',
      'py3-none-linux_x86_64',
      'cp311-none-any',
      'py3-none-any',
    ];
    const cases: Array<[string, number | undefined]> = [
      ['app-1.0-py3-none-any.whl', 7],
      ['tzdata-2026.4-py2.py3-none-any.whl', 7],
      ['markupsafe-3.0.3-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl', 0],
      ['pkg-1.0-cp38.cp311-abi3-manylinux_2_17_x86_64.whl', 3],
      ['markupsafe-3.0.3-cp312-cp312-manylinux_2_17_x86_64.whl', undefined],
      ['pkg-1.0-py3-none-win_amd64.whl', undefined],
      ['pkg-1.0-py2-none-any.whl', undefined],
      ['pkg-1.0-PY3-NONE-ANY.whl', 7],
    ];
    for (const [filename, rank] of cases) {
      it(`${filename} on cp311 linux: ${rank === undefined ? 'incompatible' : `rank ${rank}`}`, () => {
        const wheel = parseWheelFilename(filename);
        expect(rankWheelTags(wheel, cp311Linux)).to.equal(rank);
        expect(isWheelCompatible(wheel, cp311Linux)).to.equal(rank !== undefined);
      });
    }
    it('expands compressed tag sets', () => {
      expect(expandWheelTags(parseWheelFilename('p-1-py2.py3-none-any.linux_x86_64.whl'))).to.deep.equal([
        'py2-none-any',
        'py2-none-linux_x86_64',
        'py3-none-any',
        'py3-none-linux_x86_64',
      ]);
    });
  });
});
