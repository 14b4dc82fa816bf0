import { expect } from 'chai';
import { ConfigError } from '../../src/errors.js';
import { looksLikeGitUrl, sourceSpec } from '../../src/build/git-source.js';
import { dosDateTime, sortMembers } from '../../src/build/normalize-wheel.js';
import { pipFailureSummary } from '../../src/build/pip-wheel.js';

describe('vdeploy build: what to build', () => {
  it('without an argument: the HEAD commit (or --ref) of the repository here, never the work tree', () => {
    expect(sourceSpec(undefined, undefined, false)).to.deep.equal({ kind: 'git-dir', dir: '.', ref: 'HEAD', explicit: false });
    expect(sourceSpec(undefined, 'v2', false)).to.deep.equal({ kind: 'git-dir', dir: '.', ref: 'v2', explicit: false });
  });
  it('a directory without --ref is built as it is; with --ref, that commit of its repository', () => {
    expect(sourceSpec('../app', undefined, true)).to.deep.equal({ kind: 'dir', dir: '../app' });
    expect(sourceSpec('../app', 'main', true)).to.deep.equal({ kind: 'git-dir', dir: '../app', ref: 'main', explicit: true });
  });
  it('a git URL is cloned, at HEAD unless --ref', () => {
    expect(sourceSpec('https://git.example/app.git', undefined, false)).to.deep.equal({ kind: 'git-url', url: 'https://git.example/app.git', ref: 'HEAD' });
    expect(sourceSpec('git@git.example:team/app.git', 'v1.2', false)).to.deep.equal({ kind: 'git-url', url: 'git@git.example:team/app.git', ref: 'v1.2' });
  });
  it('an existing directory wins over a URL-looking name', () => {
    expect(sourceSpec('host:path', undefined, true)).to.deep.equal({ kind: 'dir', dir: 'host:path' });
  });
  const refused: Array<[string, string | undefined, string | undefined, boolean | 'not-a-dir', RegExp]> = [
    ['a missing directory', 'nowhere/app', undefined, false, /nowhere\/app: no such directory, and not a git URL/],
    ['a file', 'setup.py', undefined, 'not-a-dir', /setup\.py is a file/],
    ['an option-like ref', '.', '--upload-pack=evil', true, /--ref "--upload-pack=evil" is not a git ref/],
    ['an empty ref', '.', '', true, /is not a git ref/],
    ['a ref with a space', '.', 'a b', true, /is not a git ref/],
  ];
  for (const [what, arg, ref, isDir, message] of refused) {
    it(`refuses ${what} (a usage error)`, () => {
      let caught: unknown;
      try {
        sourceSpec(arg, ref, isDir);
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(ConfigError);
      expect((caught as Error).message).to.match(message);
    });
  }
  const urls: Array<[string, boolean]> = [
    ['https://github.com/a/b.git', true],
    ['ssh://git@host:2222/b.git', true],
    ['file:///srv/git/app.git', true],
    ['git@github.com:a/b.git', true],
    ['host.example:repo.git', true],
    ['./app', false],
    ['/srv/app', false],
    ['app', false],
    ['sub/dir:x', false],
  ];
  for (const [arg, url] of urls) it(`${arg} ${url ? 'is' : 'is not'} a git URL`, () => expect(looksLikeGitUrl(arg)).to.equal(url));
});

describe('vdeploy build: pip failure summary', () => {
  it("keeps the backend's own words from its output block, not pip's framing", () => {
    const out = [
      'Processing /tmp/app',
      '  Preparing metadata (pyproject.toml): started',
      '  error: subprocess-exited-with-error',
      '  ',
      '  × Preparing metadata (pyproject.toml) did not run successfully.',
      '  │ exit code: 1',
      '  ╰─> [2 lines of output]',
      '      running dist_info',
      '      boom: the build is broken',
      '      [end of output]',
      '  ',
      '  note: This error originates from a subprocess, and is likely not a problem with pip.',
      'error: metadata-generation-failed',
      '',
      '× Encountered error while generating package metadata.',
      '╰─> See above for output.',
      '',
      'note: This is an issue with the package mentioned above, not pip.',
      'hint: See above for details.',
    ].join('\n');
    expect(pipFailureSummary(out)).to.equal('running dist_info | boom: the build is broken');
  });
  it('gives only the last line of a traceback', () => {
    const out = ['ERROR: Exception:', 'Traceback (most recent call last):', '  File "x.py", line 1, in <module>', '    import nosuch', "ModuleNotFoundError: No module named 'nosuch'"].join('\n');
    expect(pipFailureSummary(out)).to.equal("ModuleNotFoundError: No module named 'nosuch'");
  });
  it("else pip's own last lines", () => {
    expect(pipFailureSummary("Processing /x\nERROR: Directory '/x' is not installable. Neither 'setup.py' nor 'pyproject.toml' found.\n")).to.equal(
      "Processing /x | ERROR: Directory '/x' is not installable. Neither 'setup.py' nor 'pyproject.toml' found.",
    );
  });
});

describe('vdeploy build: zip normalisation', () => {
  it('orders the package first, then .dist-info with RECORD last', () => {
    const names = ['app-1.0.dist-info/RECORD', 'app/b.py', 'app-1.0.dist-info/METADATA', 'app/__init__.py', 'app-1.0.dist-info/WHEEL', 'top.py'];
    expect(sortMembers(names.map((fileName) => ({ fileName }))).map((e) => e.fileName)).to.deep.equal([
      'app/__init__.py',
      'app/b.py',
      'top.py',
      'app-1.0.dist-info/METADATA',
      'app-1.0.dist-info/WHEEL',
      'app-1.0.dist-info/RECORD',
    ]);
  });
  it('turns SOURCE_DATE_EPOCH into a UTC DOS time, clamped to 1980', () => {
    // 2026-12-04T09:45:07Z: seconds in 2-second steps.
    const t = dosDateTime(Date.UTC(2026, 11, 4, 9, 45, 7) / 1000);
    expect(t).to.deep.equal({ time: (9 << 11) | (45 << 5) | 3, date: ((2026 - 1980) << 9) | (12 << 5) | 4 });
    expect(dosDateTime(0)).to.deep.equal({ time: 0, date: (1 << 5) | 1 });
  });
});
