/** Our PEP 508 / 440 parsing against the real `packaging` (run by Python) and the shared wheels' metadata: split from test/unit/pep508.test.ts. */
import { expect } from 'chai';
import { formatRequirement, normalizeName, parseRequirement, satisfiesSpecifier, tryParseRequirement } from '../../src/requirements/pep508.js';
import { modernPackaging } from '../fixtures/requirements/packaging-oracle.js';
import { readSharedRequiresDist } from '../fixtures/requirements/wheel-metadata.js';

describe('requirements and specifiers against real packaging', () => {
  const modern = modernPackaging();
  if (typeof modern === 'string') {
    it.skip(`agrees with the current packaging (skipped: ${modern})`);
    return;
  }

  it(`satisfiesSpecifier agrees with ${modern.label} on a version × specifier grid`, () => {
    const versions = [
      '0.9', '1', '1.0', '1.0.0', '1.0.1', '1.0a1', '1.0rc1', '1.0.dev1', '1.0.post1', '1.0.post1.dev1', '1.0+local',
      '1.0.post1+x', '1.0-1', '1.1', '1.4', '1.4.5', '1.5a1', '2.0', '2.0a1', '2.0.post1', '2.2.post3', '1!1.0', 'v1.0', 'abc',
    ];
    const specifiers = [
      '', '>=1.0', '<2', '>1.0', '<1.0', '>1.0rc1', '<2.0rc1', '<2.0.post1', '>1.0.post1', '>1.0.dev0', '==1.0', '==1.0+local',
      '!=1.0+local', '!=1.0', '==1.*', '==1.0.*', '!=1.0.*', '~=1.0', '~=1.0.0', '~=1.4.5', '~=2.2.post3', '~=1.4.5a4', '===1.0',
      '===abc', '>=1.0a1,<2', '>=1.0,!=1.0.1,<2', '<=1.0', '>=2.0a1', '==1!1.0', '>=1.0.dev1', '>1.0,<1.0.post2',
    ];
    const cases: Array<[string, string, boolean | null]> = [];
    for (const v of versions) for (const s of specifiers) for (const p of [null, true, false]) cases.push([v, s, p]);
    const answers = modern.ask({ specifiers: cases }).specifiers;
    const differ = cases.flatMap(([v, s, p], i) => {
      const ours = satisfiesSpecifier(v, s, p === null ? {} : { prereleases: p });
      const theirs = answers[i]!;
      return 'value' in theirs && theirs.value === ours ? [] : [`${v} in "${s}" (prereleases ${p}): ours ${ours}, packaging ${JSON.stringify(theirs)}`];
    });
    expect(differ).to.deep.equal([]);
  });

  it(`accepts and refuses the same requirements as ${modern.label}`, () => {
    const texts = [
      'django', 'Django>=5.2,<6', 'zope.interface', 'Foo_Bar[ Socks , Security ](>=1.0,<2)', 'pkg==1.*', 'pkg===anything',
      'pkg~=2.2', 'pkg!=1.4.*', 'pkg==1.0+local', 'pkg>=1.0,', 'pkg; extra == "x"', "pkg; python_version<'3.12' and os_name=='nt'",
      'pkg 1.0', 'pkg=1.0', 'pkg>=', 'pkg>=abc', 'pkg~=1', 'pkg>=1.0.*', 'pkg==1.0a1.*', 'pkg<1.0+local', 'pkg[socks', 'pkg[so cks]',
      'pkg (>=1.0', 'pkg;', 'pkg; platform_arch == "x"', 'pkg >=1.0 python_version < "3"', '_pkg', 'pkg-',
    ];
    const answers = modern.ask({ requirements: texts }).requirements;
    const differ = texts.flatMap((text, i) => {
      const theirs = answers[i]!;
      const ours = tryParseRequirement(text);
      if ('error' in theirs || !ours.ok) {
        return 'error' in theirs === !ours.ok ? [] : [`${text}: ours ${ours.ok ? 'valid' : ours.reason}, packaging ${JSON.stringify(theirs)}`];
      }
      const mine = ours.requirement;
      const same =
        mine.name === theirs.value.name &&
        JSON.stringify(mine.extras) === JSON.stringify(theirs.value.extras.map(normalizeName).sort()) &&
        JSON.stringify(mine.specifier.split(',').filter(Boolean).sort()) === JSON.stringify(theirs.value.specifiers);
      return same ? [] : [`${text}: ours ${JSON.stringify(mine)}, packaging ${JSON.stringify(theirs.value)}`];
    });
    expect(differ).to.deep.equal([]);
  });
});

describe('Requires-Dist of the shared wheels', () => {
  const entries = readSharedRequiresDist();
  if (typeof entries === 'string') {
    it.skip(`parse (skipped: ${entries})`);
    return;
  }
  for (const { wheel, requirement } of entries) {
    it(`parses ${requirement} (${wheel.split('-')[0]})`, () => {
      const req = parseRequirement(requirement);
      expect(req.key).to.equal(normalizeName(req.name));
      expect(parseRequirement(formatRequirement(req))).to.deep.equal(req);
    });
  }
});
