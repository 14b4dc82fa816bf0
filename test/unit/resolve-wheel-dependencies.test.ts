import { expect } from 'chai';
import { copyFile, readFile, rename, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VdeployError } from '../../src/errors.js';
import { createWheelDependencyReader } from '../../src/resolve/wheel-dependencies.js';
import { WheelMetadataCache } from '../../src/resolve/wheel-metadata-cache.js';
import { addWheels, releasedWheels, type ReleasedWheel } from '../../src/wheels/repository.js';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir } from '../helpers/cli.js';
import { SHARED_WHEELS } from '../helpers/paths.js';

const DJANGO = 'django-5.2.17-py3-none-any.whl';
const DJANGO_SHA256 = 'f04fb3b36ee119e1af4fa1d397d5fd6cf12700f49321e84d4f4c642c5b1973db';

describe('createWheelDependencyReader', () => {
  let repo: string;
  let wheels: ReleasedWheel[];
  const wheel = (filename: string) => wheels.find((w) => w.filename === filename)!;

  beforeEach(async () => {
    const dir = await makeTempDir('vdeploy-wheel-deps-');
    repo = join(dir, 'wheels');
    const app = await buildWheel(join(dir, 'dist'), { name: 'my.app', version: '1.0', requiresDist: ['Django>=5.2', 'idna; extra == "net"'] });
    const added = await addWheels(repo, [join(SHARED_WHEELS, DJANGO), app]);
    expect(added.map((r) => r.status)).to.deep.equal(['added', 'added']);
    wheels = await releasedWheels(repo);
  });

  it("reads Requires-Dist, Requires-Python and Provides-Extra from a real wheel's METADATA", async () => {
    const deps = await createWheelDependencyReader(repo).dependenciesOf(wheel(DJANGO));
    expect(deps.requiresPython).to.equal('>=3.10');
    expect(deps.requiresDist).to.deep.equal([
      'asgiref>=3.8.1',
      'sqlparse>=0.3.1',
      'tzdata; sys_platform == "win32"',
      'argon2-cffi>=19.1.0; extra == "argon2"',
      'bcrypt; extra == "bcrypt"',
    ]);
    expect(deps.providesExtra).to.deep.equal(['argon2', 'bcrypt']);
  });

  it('reads a built wheel whose name needed escaping, without Requires-Python', async () => {
    const deps = await createWheelDependencyReader(repo).dependenciesOf(wheel('my.app-1.0-py3-none-any.whl'));
    expect(deps).to.deep.equal({ requiresDist: ['Django>=5.2', 'idna; extra == "net"'], providesExtra: [] });
  });

  it('reads and hashes each wheel once', async () => {
    const reader = createWheelDependencyReader(repo);
    const first = await reader.dependenciesOf(wheel(DJANGO));
    expect(await reader.sha256Of(wheel(DJANGO))).to.equal(DJANGO_SHA256);
    await unlink(join(repo, DJANGO)); // a second read would now fail
    expect(await reader.dependenciesOf(wheel(DJANGO))).to.equal(first);
    expect(await reader.sha256Of(wheel(DJANGO))).to.equal(DJANGO_SHA256);
  });

  it('names a released wheel missing from the repository and how to put it back; tries again later', async () => {
    const reader = createWheelDependencyReader(repo);
    await rename(join(repo, DJANGO), join(repo, `${DJANGO}.away`));
    for (const read of [() => reader.dependenciesOf(wheel(DJANGO)), () => reader.sha256Of(wheel(DJANGO))]) {
      const err = await read().then(
        () => expect.fail('read a missing wheel'),
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(VdeployError);
      expect((err as VdeployError).message).to.equal(
        `${join(repo, DJANGO)}: Django 5.2.17 is released in release_log but its wheel file is missing from the repository`,
      );
      expect((err as VdeployError).hint).to.include('vdeploy add-wheel');
    }
    await copyFile(join(SHARED_WHEELS, DJANGO), join(repo, DJANGO));
    expect((await reader.dependenciesOf(wheel(DJANGO))).requiresPython).to.equal('>=3.10');
  });

  it('remembers dependencies across runs in the local cache, until the wheel file changes', async () => {
    const env = { VDEPLOY_CACHE_DIR: join(repo, '..', 'cache') };
    const app = 'my.app-1.0-py3-none-any.whl';
    await createWheelDependencyReader(repo, { cache: new WheelMetadataCache(env) }).dependenciesOf(wheel(app));
    const file = join(env.VDEPLOY_CACHE_DIR, 'wheel-metadata.json');
    const cached = JSON.parse(await readFile(file, 'utf8')) as { wheels: Record<string, { requiresDist: string[] }> };
    expect(Object.keys(cached.wheels)).to.deep.equal([join(repo, app)]);
    // A later run takes the cache's word for it (a changed entry shows which source answered)…
    cached.wheels[join(repo, app)]!.requiresDist = ['from-the-cache'];
    await writeFile(file, JSON.stringify(cached));
    expect((await createWheelDependencyReader(repo, { cache: new WheelMetadataCache(env) }).dependenciesOf(wheel(app))).requiresDist).to.deep.equal(['from-the-cache']);
    // …until the file is not the one it came from.
    await utimes(join(repo, app), new Date(), new Date(Date.now() + 5000));
    expect((await createWheelDependencyReader(repo, { cache: new WheelMetadataCache(env) }).dependenciesOf(wheel(app))).requiresDist).to.deep.equal(['Django>=5.2', 'idna; extra == "net"']);
    // A corrupt cache file is no error: it reads as empty and is replaced.
    await writeFile(file, '{not json');
    expect((await createWheelDependencyReader(repo, { cache: new WheelMetadataCache(env) }).dependenciesOf(wheel(DJANGO))).requiresPython).to.equal('>=3.10');
    expect(Object.keys((JSON.parse(await readFile(file, 'utf8')) as { wheels: object }).wheels)).to.deep.equal([join(repo, DJANGO)]);
  });
});
