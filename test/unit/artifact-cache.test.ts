/** The local artifact cache (issue 16): store checked by sha256, lookups, LRU pruning; a broken cache is never an error. */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  artifactsDir,
  cachedArtifact,
  cachedDelta,
  cachedGroup,
  deltaTarName,
  forgetArtifact,
  fullTarName,
  pruneArtifacts,
  recordArtifact,
  storeTar,
  type ArtifactMeta,
} from '../../src/deploy/artifact-cache.js';
import { makeTempDir } from '../helpers/cli.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const digest = (n: number) => sha(`manifest ${n}`);

describe('artifact cache', () => {
  let env: NodeJS.ProcessEnv;
  beforeEach(async () => {
    env = { VDEPLOY_CACHE_DIR: await makeTempDir('vdeploy-artifacts-') };
  });

  /** A full artifact of `bytes` for group `group`, last used `age` seconds ago. */
  async function put(n: number, bytes: number, age: number, group = `g${n}`): Promise<ArtifactMeta> {
    const body = Buffer.alloc(bytes, n);
    const stored = await storeTar(fullTarName(digest(n)), sha(body), (tmp) => writeFile(tmp, body), env);
    const meta: ArtifactMeta = { group, fingerprint: 'fp', desired: ['a.whl'], digest: digest(n), bytes, sha256: sha(body), created: new Date().toISOString(), releaseId: 'R1', sourcePath: '/srv/app/releases/R1' };
    recordArtifact(meta, env);
    const t = new Date(Date.now() - age * 1000);
    await utimes(stored.path, t, t);
    return meta;
  }

  it('stores a tar under its name once its sha256 matched, and finds it by group key and by digest', async () => {
    await put(1, 1000, 0, 'groupkey1');
    const found = cachedGroup('groupkey1', env);
    expect(found?.meta.digest).to.equal(digest(1));
    expect(found?.full).to.deep.include({ name: fullTarName(digest(1)), bytes: 1000 });
    expect(cachedArtifact(digest(1), env)?.meta.group).to.equal('groupkey1');
    expect(cachedGroup('other', env)).to.equal(undefined);
  });

  it('a sha256 mismatch rejects and leaves nothing behind (no temp file, no tar)', async () => {
    const err = await storeTar('x.tar', sha('something else'), (tmp) => writeFile(tmp, 'body'), env).then(() => undefined, (e: Error) => e);
    expect(err?.message).to.match(/x\.tar: sha256 mismatch after download/);
    expect(await readdir(artifactsDir(env))).to.deep.equal([]);
  });

  it('a delta is found by digest and base, and only for that base', async () => {
    const meta = await put(2, 100, 0);
    const body = Buffer.from('delta');
    const base = digest(1);
    await storeTar(deltaTarName(meta.digest, base), sha(body), (tmp) => writeFile(tmp, body), env);
    recordArtifact({ ...meta, deltas: { [base.slice(0, 16)]: { base, bytes: body.length, sha256: sha(body) } } }, env);
    expect(cachedDelta(meta.digest, base, env)?.name).to.equal(`${meta.digest}.from-${base.slice(0, 16)}.tar`);
    expect(cachedDelta(meta.digest, digest(3), env)).to.equal(undefined);
  });

  it('missing, truncated or corrupt entries read as not cached', async () => {
    await put(4, 500, 0, 'g4');
    const dir = artifactsDir(env);
    await writeFile(join(dir, fullTarName(digest(4))), 'short');
    expect(cachedGroup('g4', env)).to.equal(undefined);
    await writeFile(join(dir, 'groups', 'g5.json'), '{not json');
    expect(cachedGroup('g5', env)).to.equal(undefined);
    await writeFile(join(dir, `${digest(6)}.json`), JSON.stringify({ digest: 'not this one' }));
    expect(cachedArtifact(digest(6), env)).to.equal(undefined);
    expect(cachedGroup('no-such-group', { VDEPLOY_CACHE_DIR: join(env.VDEPLOY_CACHE_DIR!, 'nowhere') })).to.equal(undefined);
  });

  it('prunes the least recently used tars until the cache is within its limit, with their records and group pointers', async () => {
    await put(1, 1 * MiB, 300);
    await put(2, 1 * MiB, 100);
    await put(3, 1 * MiB, 200);
    const r = await pruneArtifacts({ megabytes: 2 }, env);
    expect(r.removed.map((x) => x.name)).to.deep.equal([fullTarName(digest(1))]);
    expect(r).to.deep.include({ freedBytes: MiB, keptBytes: 2 * MiB, limitBytes: 2 * MiB });
    expect(cachedGroup('g1', env)).to.equal(undefined);
    expect(existsSync(join(artifactsDir(env), `${digest(1)}.json`))).to.equal(false);
    expect(existsSync(join(artifactsDir(env), 'groups', 'g1.json'))).to.equal(false);
    expect(cachedGroup('g2', env)).not.to.equal(undefined);
    // Within the limit: nothing goes.
    expect((await pruneArtifacts({ megabytes: 2 }, env)).removed).to.deep.equal([]);
    // Smaller limit: the older of the two (3, used 200 s ago) goes first.
    expect((await pruneArtifacts({ megabytes: 1 }, env)).removed.map((x) => x.name)).to.deep.equal([fullTarName(digest(3))]);
  });

  it('prune --all empties the cache; stale temp files go, fresh ones (a download in progress) stay', async () => {
    await put(1, 1000, 0);
    const dir = artifactsDir(env);
    await writeFile(join(dir, 'a.tar.tmp-1-old'), 'x');
    const old = new Date(Date.now() - 2 * 3600 * 1000);
    await utimes(join(dir, 'a.tar.tmp-1-old'), old, old);
    await writeFile(join(dir, 'b.tar.tmp-2-new'), 'y');
    const r = await pruneArtifacts({ megabytes: 2048 }, env);
    expect(r.removed.map((x) => x.name)).to.deep.equal(['a.tar.tmp-1-old']);
    expect(existsSync(join(dir, 'b.tar.tmp-2-new'))).to.equal(true);
    const all = await pruneArtifacts({ all: true }, env);
    expect(all.limitBytes).to.equal(null);
    expect(all.removed.map((x) => x.name).sort()).to.deep.equal(['b.tar.tmp-2-new', fullTarName(digest(1))].sort());
    expect(await readdir(dir)).to.deep.equal(['groups']);
    expect(await readdir(join(dir, 'groups'))).to.deep.equal([]);
  });

  it('forgetting an artifact a host found bad removes its tars, record and group pointer', async () => {
    const meta = await put(7, 100, 0, 'g7');
    await put(8, 100, 0, 'g8');
    await writeFile(join(artifactsDir(env), deltaTarName(meta.digest, digest(1))), 'delta');
    forgetArtifact('g7', meta.digest, env);
    expect(cachedGroup('g7', env)).to.equal(undefined);
    expect((await readdir(artifactsDir(env))).filter((n) => n.startsWith(meta.digest))).to.deep.equal([]);
    expect(cachedGroup('g8', env)).not.to.equal(undefined);
  });

  it('an absent cache directory prunes to nothing, without an error', async () => {
    const r = await pruneArtifacts({ megabytes: 1 }, { VDEPLOY_CACHE_DIR: join(env.VDEPLOY_CACHE_DIR!, 'absent') });
    expect(r).to.deep.include({ removed: [], freedBytes: 0, keptBytes: 0 });
  });

  it('an unreadable entry (a directory named like a tar) is skipped', async () => {
    await mkdir(join(artifactsDir(env), 'weird.tar'), { recursive: true });
    await put(1, 1000, 0);
    const r = await pruneArtifacts({ all: true }, env);
    expect(r.removed.map((x) => x.name)).to.deep.equal([fullTarName(digest(1))]);
  });
});
