/**
 * Build once, ship — the controller's half (issue 16): what the builder and receivers are asked
 * (buildApplyInput's pack/ship), and the group coordination (ship-apply.ts): a builder's answer is
 * downloaded into the local cache and turned into one upload per host; a failed builder, a failed
 * download or an empty cache fall back to pip, with the reason.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ResolvedVenv } from '../../src/config/resolve-config.js';
import { buildApplyInput } from '../../src/deploy/apply-venv.js';
import { artifactsDir, cachedGroup, fullTarName, recordArtifact, storeTar } from '../../src/deploy/artifact-cache.js';
import type { DeployEvent } from '../../src/deploy/events.js';
import type { HostPlan, Plan, ShipPlan, VenvPlan } from '../../src/deploy/plan.js';
import type { VenvReport } from '../../src/deploy/report.js';
import { Shipping } from '../../src/deploy/ship-apply.js';
import { LocalConnection } from '../../src/remote/local-connection.js';
import { makeTempDir } from '../helpers/cli.js';

type OkPlan = Extract<VenvPlan, { status: 'ok' }>;
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const DIGEST = sha('manifest');
const GROUP = sha('group');

const hostPlan = (name: string): HostPlan => ({ name, cacheDir: `/var/cache/${name}`, cachedWheels: [] });
const desired = [{ key: 'app', name: 'app', version: '1.1', filename: 'app-1.1-py3-none-any.whl', sha256: sha('wheel'), requiredBy: ['requirements.txt:1'] }];

function venvPlan(host: string, ship?: ShipPlan): OkPlan {
  return {
    id: `root@${host}:/srv/app`, host, user: 'root', path: '/srv/app', status: 'ok', create: null,
    changes: [{ kind: 'upgrade', key: 'app', name: 'app', from: '1.0', to: '1.1' }], unchanged: [], unneeded: [], desired, installed: [],
    releases: { keep: 3, live: 'R0', build: 'clone', onHost: ['R0'] },
    ...(ship ? { ship } : {}),
  };
}

const venv = { id: 'root@h:/srv/app', path: '/srv/app', user: 'root', host: { name: 'h', user: 'root' } } as unknown as ResolvedVenv;
const settings = { migrate: 'auto', lockWaitSeconds: 0, autoRollback: true, repoDir: '/repo' } as const;

describe('buildApplyInput: pack and ship', () => {
  it('a builder installs with pip as always and is asked to pack', () => {
    const plan = venvPlan('h');
    const pack = { cacheDir: '/var/cache/h', group: GROUP, fingerprint: 'fp', desired: [desired[0]!.filename], delta: true };
    const input = buildApplyInput(venv, hostPlan('h'), plan, desired, settings, {}, { ship: { pack } });
    expect(input.install?.wheels.map((w) => w.filename)).to.deep.equal([desired[0]!.filename]);
    expect(input.releases).to.deep.include({ pack });
    expect(input.releases?.ship).to.equal(undefined);
  });

  it('a receiver installs nothing, removes nothing, creates nothing: its release comes from the tar; expect still lists the versions', () => {
    const plan = { ...venvPlan('h'), create: '/usr/bin/python3', changes: [...venvPlan('h').changes, { kind: 'remove' as const, key: 'old', name: 'old', from: '1' }] };
    const ship = { tar: '/var/cache/h/artifacts/x.tar', kind: 'full' as const, digest: DIGEST, base: null, releaseId: 'R1', sourcePath: '/srv/app/releases/R1' };
    const input = buildApplyInput(venv, hostPlan('h'), plan, desired, settings, {}, { ship: { ship } });
    expect(input).to.deep.include({ install: null, uninstall: [], uninstallKeys: [], create: null, expect: { app: '1.1' } });
    expect(input.releases).to.deep.include({ ship });
  });

  it('without ship inputs the request has neither field (hosts of an older protocol see no change)', () => {
    const input = buildApplyInput(venv, hostPlan('h'), venvPlan('h'), desired, settings, {});
    expect(input.releases).to.deep.equal({ keep: 3, switchTo: null, switchBack: true });
  });
});

describe('Shipping: builder answer → local cache → receivers', () => {
  let env: NodeJS.ProcessEnv;
  let hostDir: string;
  let events: DeployEvent[];
  const builder = venvPlan('h1', { role: 'builder', group: GROUP, members: 3 });
  const r2 = venvPlan('h2', { role: 'receiver', group: GROUP, from: builder.id, kind: 'delta', base: sha('base') });
  const r3 = venvPlan('h3', { role: 'receiver', group: GROUP, from: builder.id, kind: 'full' });
  const plan: Plan = { venvs: [builder, r2, r3], hosts: [], prune: false, recovered: [], groups: [{ key: GROUP, fingerprint: 'fp', builder: builder.id, members: [builder.id, r2.id, r3.id], desired: [desired[0]!.filename] }] };

  beforeEach(async () => {
    env = { VDEPLOY_CACHE_DIR: await makeTempDir('vdeploy-ship-') };
    hostDir = await makeTempDir('vdeploy-ship-host-');
    events = [];
  });

  /** The builder's tars "on its host" (a local directory) and its answer. */
  async function packed(outcome: VenvReport['outcome'] = 'deployed', withDelta = true): Promise<VenvReport> {
    const full = Buffer.from('the full tar');
    const delta = Buffer.from('the delta');
    await writeFile(join(hostDir, 'full.tar'), full);
    await writeFile(join(hostDir, 'delta.tar'), delta);
    return {
      id: builder.id, host: 'h1', user: 'root', path: '/srv/app', outcome, changes: [], created: false, ms: 1, steps: [],
      release: {
        id: 'R1', previous: 'R0', live: 'R1', removed: [],
        artifact: {
          digest: DIGEST, files: 10,
          full: { path: join(hostDir, 'full.tar'), bytes: full.length, sha256: sha(full) },
          delta: withDelta ? { path: join(hostDir, 'delta.tar'), bytes: delta.length, sha256: sha(delta), base: sha('base') } : null,
          ms: { manifest: 1, pack: 2 },
        },
      },
    };
  }

  it('downloads the tars, records the group, and plans one upload per tar for a receiver host (delta where its base matches)', async () => {
    const shipping = new Shipping(plan, [builder, r2, r3], (e) => events.push(e), undefined, env);
    expect(shipping.packInput(builder, hostPlan('h1'))?.pack).to.deep.include({ group: GROUP, fingerprint: 'fp', delta: true, cacheDir: '/var/cache/h1' });
    expect(shipping.packInput(r2, hostPlan('h2'))).to.equal(undefined);
    const report = await packed();
    shipping.onAnswer(builder, report, new LocalConnection());
    expect(report.shipped).to.deep.equal({ role: 'builder', group: GROUP, bytes: 12 });
    await shipping.waitFor([r2], 'h2');
    await shipping.drain();
    expect(events.map((e) => e.kind)).to.deep.equal(['ship:packed', 'ship:fetched']);
    expect(cachedGroup(GROUP, env)?.meta).to.deep.include({ digest: DIGEST, releaseId: 'R1', sourcePath: '/srv/app/releases/R1' });
    expect(await readFile(join(artifactsDir(env), fullTarName(DIGEST)), 'utf8')).to.equal('the full tar');

    const two = shipping.planReceive('h2', hostPlan('h2'), [r2]);
    expect(two.inputs.get(r2.id)?.ship).to.deep.equal({ tar: `/var/cache/h2/artifacts/${DIGEST}.from-${sha('base').slice(0, 16)}.tar`, kind: 'delta', digest: DIGEST, base: sha('base'), releaseId: 'R1', sourcePath: '/srv/app/releases/R1' });
    expect(two.uploads).to.have.length(1);
    expect(two.uploads[0]).to.deep.include({ final: two.inputs.get(r2.id)!.ship!.tar, kind: 'delta', bytes: 9 });
    expect(two.shipped.get(r2.id)).to.deep.equal({ role: 'receiver', group: GROUP, kind: 'delta', from: builder.id, bytes: 9 });
    const three = shipping.planReceive('h3', hostPlan('h3'), [r3]);
    expect(three.inputs.get(r3.id)?.ship).to.deep.include({ kind: 'full', base: null, tar: `/var/cache/h3/artifacts/${DIGEST}.tar` });

    // Uploads: one put per tar, counted as artifact bytes.
    const sent = await makeTempDir('vdeploy-ship-recv-');
    const shifted = three.uploads.map((u) => ({ ...u, tmp: join(sent, 'tmp.tar'), final: join(sent, 'final.tar') }));
    await shipping.sendTars(new LocalConnection(), 'h3', shifted);
    expect(await readFile(join(sent, 'tmp.tar'), 'utf8')).to.equal('the full tar');
    expect(shipping.bytesSent.artifacts).to.equal(12);
    expect(events.at(-1)).to.deep.include({ kind: 'ship:sent', host: 'h3', ship: 'full', bytes: 12 });
  });

  it('a receiver on the builder\'s own host takes the tar in place: no download wait, no upload', async () => {
    const local = { ...venvPlan('h1', { role: 'receiver', group: GROUP, from: builder.id, kind: 'full' }), id: 'root@h1:/srv/other', path: '/srv/other' };
    const shipping = new Shipping({ ...plan, venvs: [builder, local] }, [builder, local], (e) => events.push(e), undefined, env);
    shipping.onAnswer(builder, await packed(), new LocalConnection());
    await shipping.waitFor([local], 'h1');
    const got = shipping.planReceive('h1', hostPlan('h1'), [local]);
    expect(got.uploads).to.deep.equal([]);
    expect(got.inputs.get(local.id)?.ship?.tar).to.equal(join(hostDir, 'full.tar'));
    await shipping.drain();
  });

  it('a failed builder: its receivers build with pip, each with the reason', async () => {
    const shipping = new Shipping(plan, [builder, r2, r3], (e) => events.push(e), undefined, env);
    const report = await packed('failed');
    shipping.onAnswer(builder, report, new LocalConnection());
    expect(report.shipped).to.deep.include({ role: 'builder', group: GROUP });
    await shipping.waitFor([r2, r3], 'h2');
    const got = shipping.planReceive('h2', hostPlan('h2'), [r2]);
    expect(got.inputs.size).to.equal(0);
    expect(got.shipped.get(r2.id)).to.deep.equal({ role: 'receiver', group: GROUP, fellBack: `its builder ${builder.id} failed` });
    expect(events).to.deep.include({ kind: 'ship:fallback', venv: r2.id, reason: `its builder ${builder.id} failed` });
  });

  it('a download whose sha256 does not match falls back, and caches nothing', async () => {
    const shipping = new Shipping(plan, [builder, r2, r3], (e) => events.push(e), undefined, env);
    const report = await packed('deployed', false);
    await writeFile(join(hostDir, 'full.tar'), 'corrupted on the way');
    shipping.onAnswer(builder, report, new LocalConnection());
    await shipping.waitFor([r3], 'h3');
    const got = shipping.planReceive('h3', hostPlan('h3'), [r3]);
    expect(got.shipped.get(r3.id)?.fellBack).to.match(/^downloading its release from h1 failed: artifact .*\.tar: sha256 mismatch after download/);
    expect(cachedGroup(GROUP, env)).to.equal(undefined);
  });

  it('a builder host that never answered (connect failed, interrupted) releases its waiters', async () => {
    const shipping = new Shipping(plan, [builder, r2, r3], (e) => events.push(e), undefined, env);
    shipping.settleHost('h1', 'its builder on h1 did not answer');
    await shipping.waitFor([r2], 'h2');
    expect(shipping.planReceive('h2', hostPlan('h2'), [r2]).shipped.get(r2.id)?.fellBack).to.equal('its builder on h1 did not answer');
  });

  it("Ctrl-C releases the waiters with no fallback noise (they are skipped as not started)", async () => {
    const abort = new AbortController();
    const shipping = new Shipping(plan, [builder, r2, r3], (e) => events.push(e), abort.signal, env);
    abort.abort();
    await shipping.waitFor([r2, r3], 'h2');
    shipping.planReceive('h2', hostPlan('h2'), [r2]);
    expect(events).to.deep.equal([]);
  });

  it("from the local cache: every member receives it whole; an emptied cache falls back", async () => {
    const body = Buffer.from('cached tar');
    await mkdir(artifactsDir(env), { recursive: true });
    const stored = await storeTar(fullTarName(DIGEST), sha(body), (tmp) => writeFile(tmp, body), env);
    recordArtifact({ group: GROUP, fingerprint: 'fp', desired: [], digest: DIGEST, bytes: stored.bytes, sha256: stored.sha256, created: '', releaseId: 'R9', sourcePath: '/srv/x/releases/R9' }, env);
    const a = venvPlan('h2', { role: 'receiver', group: GROUP, from: 'cache', kind: 'full' });
    const cachePlan: Plan = { ...plan, venvs: [a], groups: [{ ...plan.groups![0]!, builder: 'cache', members: [a.id] }] };
    const shipping = new Shipping(cachePlan, [a], (e) => events.push(e), undefined, env);
    await shipping.waitFor([a], 'h2');
    expect(shipping.planReceive('h2', hostPlan('h2'), [a]).inputs.get(a.id)?.ship).to.deep.include({ kind: 'full', releaseId: 'R9', sourcePath: '/srv/x/releases/R9' });

    const emptied = new Shipping(cachePlan, [a], (e) => events.push(e), undefined, { VDEPLOY_CACHE_DIR: join(env.VDEPLOY_CACHE_DIR!, 'empty') });
    await emptied.waitFor([a], 'h2');
    expect(emptied.planReceive('h2', hostPlan('h2'), [a]).shipped.get(a.id)?.fellBack).to.equal('the local artifact cache no longer holds its release');
  });
});

describe('the deploy summary line about shipping', () => {
  const r = (id: string, shipped: VenvReport['shipped']): VenvReport => ({ id, host: 'h', user: 'u', path: '/p', outcome: 'deployed', changes: [], created: false, ms: 1, steps: [], ...(shipped ? { shipped } : {}) });
  it('counts builds, receivers by kind, the bytes sent, and says each fallback', async () => {
    const { renderShipSummary } = await import('../../src/cli/render-ship.js');
    const lines = renderShipSummary({
      venvs: [
        r('b', { role: 'builder', group: GROUP, bytes: 100 }),
        r('f', { role: 'receiver', group: GROUP, kind: 'full', from: 'b', bytes: 100 }),
        r('d', { role: 'receiver', group: GROUP, kind: 'delta', from: 'b', bytes: 5 }),
        r('x', { role: 'receiver', group: GROUP, fellBack: 'its builder b failed' }),
        r('plain', undefined),
      ],
      hosts: [], ok: true, interrupted: false,
      bytesSent: { wheels: 0, artifacts: 246 * 1024 * 1024 },
    }).map((l) => l.replace(/\x1b\[[0-9;]*m/g, ''));
    expect(lines).to.deep.equal(['shipped: 1 build, 2 receivers (1 full, 1 delta); sent 246.0 MiB of artifacts, 0 B of wheels', '  ↯ x: built with pip instead (its builder b failed)']);
  });
});
