import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VdeployError } from '../../src/errors.js';
import { validateWheel } from '../../src/wheels/validate-wheel.js';
import { buildWheel, writeZip, type WheelCorruption } from '../helpers/build-wheel.js';
import { makeTempDir } from '../helpers/cli.js';
import { SHARED_WHEELS } from '../helpers/paths.js';

/** A RECORD row for `data` the way wheel builders write it. */
function row(path: string, data: string, algorithm = 'sha256'): string {
  return `${path},${algorithm}=${createHash(algorithm).update(data).digest('base64url')},${Buffer.byteLength(data)}`;
}

const METADATA = 'Metadata-Version: 2.1\nName: app\nVersion: 1.0\n\n';
const WHEEL = 'Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n';
const INIT = 'X = 1\n';

/** A wheel from explicit members; by default a valid `app 1.0` whose RECORD covers everything. */
async function customWheel(
  dir: string,
  change: { filename?: string; members?: Array<[string, string]>; record?: string[] } = {},
): Promise<string> {
  const members = change.members ?? [
    ['app/__init__.py', INIT],
    ['app-1.0.dist-info/METADATA', METADATA],
    ['app-1.0.dist-info/WHEEL', WHEEL],
  ];
  const record = change.record ?? [...members.map(([p, d]) => row(p, d)), 'app-1.0.dist-info/RECORD,,'];
  const path = join(dir, change.filename ?? 'app-1.0-py3-none-any.whl');
  await writeZip(path, [...members, ['app-1.0.dist-info/RECORD', `${record.join('\n')}\n`]]);
  return path;
}

async function expectRefusal(path: string, message: RegExp): Promise<VdeployError> {
  try {
    await validateWheel(path);
  } catch (err) {
    expect(err).to.be.instanceOf(VdeployError);
    const e = err as VdeployError;
    expect(e.message).to.match(message);
    expect(e.message.startsWith(`${path}: `), e.message).to.equal(true);
    expect(e.message).not.to.include('\n');
    expect(e.hint, 'hint').to.be.a('string').that.is.not.empty;
    return e;
  }
  expect.fail(`${path} validated but should have been refused (${message})`);
}

describe('validateWheel', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir('vdeploy-validate-');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts a built wheel and describes it', async () => {
    const path = await buildWheel(dir, { name: 'my-app', version: '1.0', requiresDist: ['requests>=2'], entryPoints: { app: 'my_app:main' } });
    const w = await validateWheel(path);
    const bytes = await readFile(path);
    expect(w).to.deep.include({
      path,
      filename: 'my_app-1.0-py3-none-any.whl',
      name: 'my-app',
      version: '1.0',
      sha256: createHash('sha256').update(bytes).digest('hex'),
      size: bytes.length,
      tags: ['py3-none-any'],
      distInfo: 'my_app-1.0.dist-info',
    });
    expect(w.metadata.requiresDist).to.deep.equal(['requests>=2']);
  });

  const corruptions: Array<[WheelCorruption, RegExp]> = [
    ['record-hash', /: RECORD hash mismatch for app\/__init__\.py$/],
    ['no-record', /: no RECORD in app-1\.0\.dist-info$/],
    ['metadata-version', /: METADATA Version "1\.0\.post99" does not match the filename's "1\.0"$/],
    ['metadata-name', /: METADATA Name "app-impostor" does not match the filename's "app"$/],
    ['not-zip', /: not a readable zip archive \(.*\)$/],
    ['unlisted-file', /: file not listed in RECORD: app\/sneaky\.py$/],
  ];
  for (const [corrupt, message] of corruptions) {
    it(`refuses corruption "${corrupt}" with one line naming the file`, async () => {
      await expectRefusal(await buildWheel(dir, { name: 'app', version: '1.0', corrupt }), message);
    });
  }

  describe('the real wheels in the shared directory', () => {
    it('all validate, with the sha256 the README lists', async () => {
      const readme = await readFile(join(SHARED_WHEELS, 'README.md'), 'utf8');
      const files = (await readdir(SHARED_WHEELS)).filter((f) => f.endsWith('.whl'));
      expect(files).to.have.length(14);
      for (const f of files) {
        const w = await validateWheel(join(SHARED_WHEELS, f));
        expect(readme, f).to.include(`${w.sha256}  ${f}`);
        expect(w.filename).to.equal(f);
      }
    });
    it('reads names, versions, tags and dependencies from them', async () => {
      const django = await validateWheel(join(SHARED_WHEELS, 'django-5.2.17-py3-none-any.whl'));
      expect(django).to.include({ name: 'Django', version: '5.2.17' });
      expect(django.metadata.requiresDist.some((r) => r.startsWith('asgiref'))).to.equal(true);
      const ms = await validateWheel(
        join(SHARED_WHEELS, 'markupsafe-3.0.3-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl'),
      );
      expect(ms.tags).to.include('cp311-cp311-manylinux_2_17_x86_64').and.to.have.length(3);
    });
  });

  describe('hand-made edge cases', () => {
    it('accepts the minimal valid custom wheel (the baseline for the cases below)', async () => {
      expect((await validateWheel(await customWheel(dir))).name).to.equal('app');
    });

    it('compares names PEP 503-normalized and versions PEP 440-equal (1.0 == 1.0.0)', async () => {
      const meta = 'Metadata-Version: 2.1\nName: My.App\nVersion: 1.0.0\n\n';
      const members: Array<[string, string]> = [
        ['my_app/__init__.py', INIT],
        ['My.App-1.0.0.dist-info/METADATA', meta],
        ['My.App-1.0.0.dist-info/WHEEL', WHEEL],
      ];
      const record = [...members.map(([p, d]) => row(p, d)), 'My.App-1.0.0.dist-info/RECORD,,'];
      const path = join(dir, 'my_app-1.0-py3-none-any.whl');
      await writeZip(path, [...members, ['My.App-1.0.0.dist-info/RECORD', record.join('\n')]]);
      expect(await validateWheel(path)).to.include({ name: 'My.App', version: '1.0.0' });
    });

    it('accepts sha384/sha512, padded digests, and unlisted RECORD signatures', async () => {
      const members: Array<[string, string]> = [
        ['app/__init__.py', INIT],
        ['app/b.py', 'B = 2\n'],
        ['app-1.0.dist-info/METADATA', METADATA],
        ['app-1.0.dist-info/WHEEL', WHEEL],
        ['app-1.0.dist-info/RECORD.jws', '{}'],
      ];
      const record = [
        row('app/__init__.py', INIT, 'sha512'),
        `${row('app/b.py', 'B = 2\n', 'sha384').replace(/,(\d+)$/, '==,$1')}`,
        row('app-1.0.dist-info/METADATA', METADATA),
        row('app-1.0.dist-info/WHEEL', WHEEL),
        'app-1.0.dist-info/RECORD,,',
        'app/__pycache__/__init__.cpython-311.pyc,,', // installers add these; not in the zip and unhashed: fine
      ];
      await validateWheel(await customWheel(dir, { members, record }));
    });

    const refusals: Array<[string, () => Promise<string>, RegExp]> = [
      ['a missing file', async () => join(dir, 'gone-1.0-py3-none-any.whl'), /: no such file$/],
      [
        'a directory',
        async () => {
          await mkdir(join(dir, 'd-1.0-py3-none-any.whl'));
          return join(dir, 'd-1.0-py3-none-any.whl');
        },
        /: not a regular file$/,
      ],
      ['a bad filename before opening anything', async () => join(dir, 'nope.whl'), /not a PEP 427 wheel filename/],
      [
        'a truncated zip',
        async () => {
          const p = await buildWheel(dir, { name: 'app', version: '1.0' });
          await truncate(p, 100);
          return p;
        },
        /: not a readable zip archive/,
      ],
      [
        'no .dist-info directory',
        async () => {
          const p = join(dir, 'app-1.0-py3-none-any.whl');
          await writeZip(p, [['app/__init__.py', INIT]]);
          return p;
        },
        /: no \.dist-info directory$/,
      ],
      [
        'two .dist-info directories',
        () => customWheel(dir, { members: [['app/__init__.py', INIT], ['app-1.0.dist-info/METADATA', METADATA], ['other-2.0.dist-info/METADATA', METADATA]] }),
        /: 2 \.dist-info directories \(app-1\.0\.dist-info, other-2\.0\.dist-info\)$/,
      ],
      [
        'a .dist-info directory for another version',
        async () => {
          const p = join(dir, 'app-1.0-py3-none-any.whl');
          await writeZip(p, [['app-2.0.dist-info/METADATA', METADATA]]);
          return p;
        },
        /: app-2\.0\.dist-info does not match the filename's app 1\.0$/,
      ],
      ['no METADATA', () => customWheel(dir, { members: [['app/__init__.py', INIT], ['app-1.0.dist-info/WHEEL', WHEEL]] }), /: no METADATA in app-1\.0\.dist-info$/],
      ['no WHEEL', () => customWheel(dir, { members: [['app/__init__.py', INIT], ['app-1.0.dist-info/METADATA', METADATA]] }), /: no WHEEL file in app-1\.0\.dist-info$/],
      [
        'a duplicate zip entry',
        async () => {
          const p = join(dir, 'app-1.0-py3-none-any.whl');
          await writeZip(p, [['app/__init__.py', INIT], ['app/__init__.py', 'EVIL = 1\n']]);
          return p;
        },
        /: duplicate zip entry app\/__init__\.py$/,
      ],
      [
        'a path escaping the install directory',
        async () => {
          const p = join(dir, 'app-1.0-py3-none-any.whl');
          await writeZip(p, [['../evil.py', 'x']]);
          return p;
        },
        /: not a readable zip archive \(.*relative path.*\)$/,
      ],
      [
        'a RECORD row for a file the zip lacks',
        () => customWheel(dir, { record: [row('app/__init__.py', INIT), row('app/gone.py', 'x'), row('app-1.0.dist-info/METADATA', METADATA), row('app-1.0.dist-info/WHEEL', WHEEL)] }),
        /: RECORD lists app\/gone\.py but the wheel does not contain it$/,
      ],
      [
        'a file RECORD lists without a hash',
        () => customWheel(dir, { record: ['app/__init__.py,,', row('app-1.0.dist-info/METADATA', METADATA), row('app-1.0.dist-info/WHEEL', WHEEL)] }),
        /: RECORD has no hash for app\/__init__\.py$/,
      ],
      [
        'an md5 hash',
        () => customWheel(dir, { record: [row('app/__init__.py', INIT, 'md5'), row('app-1.0.dist-info/METADATA', METADATA), row('app-1.0.dist-info/WHEEL', WHEEL)] }),
        /: RECORD uses md5 for app\/__init__\.py; only sha256, sha384, sha512 are accepted$/,
      ],
      [
        'a sha1 hash',
        () => customWheel(dir, { record: [row('app/__init__.py', INIT, 'sha1'), row('app-1.0.dist-info/METADATA', METADATA), row('app-1.0.dist-info/WHEEL', WHEEL)] }),
        /: RECORD uses sha1 for app\/__init__\.py/,
      ],
      [
        'a size mismatch',
        () => customWheel(dir, { record: [row('app/__init__.py', INIT).replace(/,6$/, ',7'), row('app-1.0.dist-info/METADATA', METADATA), row('app-1.0.dist-info/WHEEL', WHEEL)] }),
        /: RECORD size mismatch for app\/__init__\.py \(RECORD says 7 bytes, the wheel has 6\)$/,
      ],
      [
        'a malformed RECORD',
        () => customWheel(dir, { record: ['app/__init__.py,sha256=x,notanumber'] }),
        /: app-1\.0\.dist-info\/RECORD:1: malformed RECORD row$/,
      ],
      [
        'damaged compressed data',
        async () => {
          const p = await customWheel(dir, { members: [['app/__init__.py', 'x'.repeat(5000)], ['app-1.0.dist-info/METADATA', METADATA], ['app-1.0.dist-info/WHEEL', WHEEL]] });
          const bytes = await readFile(p);
          bytes[50] = bytes[50]! ^ 0xff; // inside the first member's deflate stream (30-byte header + 15-byte name)
          await writeFile(p, bytes);
          return p;
        },
        /: (corrupt zip entry app\/__init__\.py|RECORD hash mismatch for app\/__init__\.py|RECORD size mismatch)/,
      ],
    ];
    for (const [what, make, message] of refusals) {
      it(`refuses ${what}`, async () => {
        await expectRefusal(await make(), message);
      });
    }
  });
});
