import { expect } from 'chai';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../src/errors.js';
import { formatRequirement } from '../../src/requirements/pep508.js';
import { logicalLines, readRequirementsFile, type RequirementLine } from '../../src/requirements/requirements-file.js';

const FIXTURES = relative(process.cwd(), join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'requirements'));

/** file:line requirement, compactly. */
const summarize = (lines: RequirementLine[]) => lines.map((l) => `${l.file}:${l.line} ${formatRequirement(l.requirement)}`);

async function rejection(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, got none');
}

describe('logicalLines', () => {
  const table: Array<[string, Array<[number, string]>]> = [
    ['a\nb\n', [[1, 'a'], [2, 'b']]],
    ['# comment\n\n  \nreq  # trailing\n', [[4, 'req']]],
    ['pkg#not-a-comment\n', [[1, 'pkg#not-a-comment']]],
    ['a \\\n  >=1 \\\n  ,<2\nb', [[1, 'a   >=1   ,<2'], [4, 'b']]],
    ['a \\\n# comment \\\nb', [[1, 'a'], [3, 'b']]],
    ['a\r\nb\r\n', [[1, 'a'], [2, 'b']]],
    ['last \\', [[1, 'last']]],
    ['\\\n\\\nx', [[1, 'x']]],
  ];
  for (const [text, expected] of table) {
    it(`splits ${JSON.stringify(text)}`, () => {
      expect(logicalLines(text).map((l) => [l.line, l.text])).to.deep.equal(expected);
    });
  }
});

describe('readRequirementsFile', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vdeploy-reqs-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Writes files (path → content) under the temp dir and returns the path of the first. */
  async function write(files: Record<string, string>): Promise<string> {
    for (const [name, content] of Object.entries(files)) {
      await mkdir(dirname(join(dir, name)), { recursive: true });
      await writeFile(join(dir, name), content);
    }
    return join(dir, Object.keys(files)[0]!);
  }

  it('reads requirements, comments, continuations, hashes and nested includes in order', async () => {
    const project = join(FIXTURES, 'project');
    const lines = await readRequirementsFile(join(project, 'requirements.txt'));
    expect(summarize(lines)).to.deep.equal([
      `${project}/requirements.txt:2 Django>=5.2,<6`,
      `${project}/base.txt:1 asgiref>=3.8.1`,
      `${project}/base.txt:2 sqlparse>=0.3.1`,
      `${project}/requirements.txt:5 gunicorn==26.2.0`,
      `${project}/requirements.txt:8 requests[security,socks]>=2.30; python_version < "3.12" and (sys_platform == "win32" or extra == "socks")`,
      `${project}/extra.txt:1 tzdata; sys_platform == "win32"`,
      `${project}/sub/more.txt:3 Foo_Bar[socks]==1.*`,
      `${project}/requirements.txt:10 zope.interface>=5`,
      `${project}/requirements.txt:13 typing_extensions; python_version < "3.11"`,
    ]);
    expect(lines[0]!.requirement).to.deep.include({ name: 'Django', key: 'django', specifier: '>=5.2,<6' });
    // Both --hash options of the gunicorn line, as alternatives.
    expect(lines[3]!.hashes).to.deep.equal([
      { algorithm: 'sha256', digest: '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef' },
      { algorithm: 'sha256', digest: 'fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210' },
    ]);
    expect(lines[0]!.hashes).to.equal(undefined);
  });

  it('reads a file included twice without a cycle (a diamond) once', async () => {
    const lines = await readRequirementsFile(join(FIXTURES, 'diamond', 'all.txt'));
    expect(lines.map((l) => l.requirement.key)).to.deep.equal(['django', 'ruff', 'pytest']);
  });

  it('names every file of an include cycle', async () => {
    const a = join(FIXTURES, 'cycle', 'a.txt');
    const error = await rejection(readRequirementsFile(a));
    const c = join(FIXTURES, 'cycle');
    expect(error.message).to.equal(`${c}/c.txt:1: "-r ./a.txt" makes an include cycle: ${c}/a.txt → ${c}/b.txt → ${c}/c.txt → ${c}/a.txt`);
    expect(error.hint).to.match(/remove one of these -r lines/);
  });

  it('refuses a file that includes itself', async () => {
    const file = await write({ 'requirements.txt': 'six\n-r requirements.txt\n' });
    const error = await rejection(readRequirementsFile(file));
    expect(error.message).to.match(/requirements\.txt:2: "-r requirements\.txt" makes an include cycle: .*requirements\.txt → .*requirements\.txt$/);
  });

  it('names a missing top-level file', async () => {
    const error = await rejection(readRequirementsFile(join(dir, 'nope.txt')));
    expect(error.message).to.equal(`requirements file not found: ${join(dir, 'nope.txt')}`);
    expect(error.hint).to.match(/create the file/);
  });

  it('names a missing include and where it is included', async () => {
    const file = await write({ 'requirements.txt': 'six\n\n-r lib/base.txt\n' });
    const error = await rejection(readRequirementsFile(file));
    expect(error.message).to.equal(`requirements file not found: ${join(dir, 'lib', 'base.txt')} (included from ${file}:3)`);
    expect(error.hint).to.match(/relative to the file that includes it/);
  });

  it('refuses a directory', async () => {
    await mkdir(join(dir, 'reqs'));
    const error = await rejection(readRequirementsFile(join(dir, 'reqs')));
    expect(error.message).to.match(/^requirements file is a directory: /);
  });

  it('accepts the include spellings -r, -rFILE, --requirement FILE, --requirement=FILE and quoted names', async () => {
    const file = await write({
      'requirements.txt': '-r a.txt\n-rb.txt\n--requirement c.txt\n--requirement=d.txt\n-r "with space.txt"\n',
      'a.txt': 'a\n',
      'b.txt': 'b\n',
      'c.txt': 'c\n',
      'd.txt': 'd\n',
      'with space.txt': 'e\n',
    });
    const lines = await readRequirementsFile(file);
    expect(lines.map((l) => l.requirement.key)).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
  });

  it('strips a UTF-8 byte order mark', async () => {
    const file = await write({ 'requirements.txt': '\uFEFFdjango\n' });
    expect((await readRequirementsFile(file)).map((l) => l.requirement.key)).to.deep.equal(['django']);
  });

  it('names both places when a package is required twice, across includes and spellings', async () => {
    const file = await write({ 'requirements.txt': '-r base.txt\nDjango>=5\n', 'base.txt': '# base\ndjango==5.2.17\n' });
    const error = await rejection(readRequirementsFile(file));
    expect(error.message).to.equal(
      `${file}:2: "Django>=5" requires Django again; it is already required by "django==5.2.17" at ${join(dir, 'base.txt')}:2`,
    );
    expect(error.hint).to.match(/merge the version specifiers/);
  });

  it('treats names that normalize alike as the same package', async () => {
    const file = await write({ 'requirements.txt': 'zope.interface\nZope_Interface>=5\n' });
    const error = await rejection(readRequirementsFile(file));
    expect(error.message).to.match(/:2: "Zope_Interface>=5" requires Zope_Interface again; .* "zope.interface" at .*:1$/);
  });

  // [line 7 of the file, the reason after "is not supported: "]
  const refused: Array<[string, RegExp]> = [
    ['-e ./app', /editable installs can't be deployed from wheels$/],
    ['--editable ./app', /editable installs can't be deployed from wheels$/],
    ['-e git+https://example.invalid/app.git#egg=app', /editable installs/],
    ['-e./app', /editable installs/],
    ['--index-url https://example.invalid/simple', /not from package indexes or find-links/],
    ['-i https://example.invalid/simple', /not from package indexes/],
    ['--extra-index-url=https://example.invalid/simple', /not from package indexes/],
    ['--no-index', /not from package indexes/],
    ['--find-links ./wheels', /find-links/],
    ['-f ./wheels', /find-links/],
    ['-c constraints.txt', /constraints files are not supported/],
    ['--constraint=constraints.txt', /constraints files are not supported/],
    ['--pre', /pre-releases are chosen per requirement/],
    ['--trusted-host example.invalid', /the pip option --trusted-host is not supported/],
    ['--only-binary :all:', /the pip option --only-binary is not supported/],
    ['--hash=sha256:00', /--hash must follow a requirement/],
    ['pkg==1.0 --global-option=--fast', /build options don't apply to prebuilt wheels/],
    ['pkg==1.0 --no-deps', /the pip option --no-deps is not supported/],
    ['https://example.invalid/pkg-1.0-py3-none-any.whl', /direct URLs can't be deployed/],
    ['git+https://example.invalid/pkg.git#egg=pkg', /direct URLs can't be deployed/],
    ['pkg @ https://example.invalid/pkg-1.0.tar.gz', /direct URLs can't be deployed/],
    ['pkg[extra] @ file:///srv/pkg', /direct URLs can't be deployed/],
    ['./app', /local paths and archives can't be deployed/],
    ['../lib/', /local paths and archives/],
    ['/srv/wheels/pkg-1.0-py3-none-any.whl', /local paths and archives/],
    ['pkg-1.0-py3-none-any.whl', /local paths and archives/],
    ['app/', /local paths and archives/],
    ['pkg>=${MIN_VERSION}', /environment variables \(\$\{NAME\}\) are not expanded/],
  ];
  for (const [line, reason] of refused) {
    it(`refuses line 7: ${line}`, async () => {
      const file = await write({ 'requirements.txt': `a\nb\nc\n\n# six\n\n${line}\n` });
      const error = await rejection(readRequirementsFile(file));
      expect(error.message.startsWith(`${file}:7: "${line}" is not supported: `), error.message).to.equal(true);
      expect(error.message).to.match(reason).and.not.include('\n');
      expect(error.hint).to.be.a('string').and.not.equal('');
    });
  }

  it('words the refusal exactly as the house style', async () => {
    const file = await write({ 'requirements.txt': 'a\nb\nc\nd\ne\nf\n-e ./app\n' });
    const error = await rejection(readRequirementsFile(file));
    expect(error.message).to.equal(`${file}:7: "-e ./app" is not supported: editable installs can't be deployed from wheels`);
    expect(error.hint).to.match(/vdeploy add-wheel/);
  });

  const invalid: Array<[string, RegExp]> = [
    ['pkg 1.0', /is not a valid requirement: "1.0" does not start with a comparison operator/],
    ['pkg>=1.0 python_version < "3"', /missing ";" before a marker/],
    ['pkg; python_version <', /is not a valid requirement: bad marker: expected a marker variable/],
    ['pkg==1.0 --hash=md5:abc', /has a malformed --hash/],
    ['pkg==1.0 --hash', /has a malformed --hash/],
    ['pkg==1.0 --hash=sha256:abc', /has a malformed --hash/],
    ['-r', /-r needs a file name/],
    ['-r a.txt b.txt', /unexpected "b.txt" after the included file/],
  ];
  for (const [line, pattern] of invalid) {
    it(`reports line 2: ${line}`, async () => {
      const file = await write({ 'requirements.txt': `a\n${line}\n` });
      const error = await rejection(readRequirementsFile(file));
      expect(error.message.startsWith(`${file}:2: "${line}" `), error.message).to.equal(true);
      expect(error.message).to.match(pattern).and.not.include('\n');
    });
  }

  it('numbers a continued line by its first line', async () => {
    const file = await write({ 'requirements.txt': 'a\npkg \\\n  >=1.0 \\\n  python_version\n' });
    const error = await rejection(readRequirementsFile(file));
    expect(error.message).to.match(/requirements\.txt:2: "pkg   >=1.0   python_version" is not a valid requirement/);
  });

  it('returns [] for a file of comments', async () => {
    const file = await write({ 'requirements.txt': '# nothing yet\n\n' });
    expect(await readRequirementsFile(file)).to.deep.equal([]);
  });
});
