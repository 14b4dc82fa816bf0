// The releases layout (issue 15) deployed through the built binary against a real sshd fleet: a fresh
// deploy, an upgrade by hardlink clone, a no-op, a failed install, a failed health check switched back
// (with a real gunicorn restarted from <root>/current), rollback by switch and from a cleaned-up
// release, keep cleanup, the lock, Django migrate with the new release, and --no-rollback. Every
// assertion reads the host's filesystem (the `current` link, releases/, history.jsonl, pip itself).
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { freePort } from '../helpers/supervised-gunicorn.js';
import { join } from 'node:path';
import { buildWheel, writeZip } from '../helpers/build-wheel.js';
import { makeTempDir, type CliResult } from '../helpers/cli.js';
import { cacheDirOf, makeDeployProject, type DeployProject, type ProjectVenv } from '../helpers/deploy-project.js';
import { buildDjangoAppWheel, SHOPAPP_SETTINGS } from '../helpers/django-app.js';
import { startFleet, type Fleet, type FleetHost } from '../helpers/fleet.js';
import { CLI_BIN } from '../helpers/paths.js';
import { pipList, sharedWheels, sqliteTables } from '../helpers/venv-inspect.js';
import { LocalConnection } from '../../src/remote/local-connection.js';
import { waitFor } from '../helpers/pause-pip.js';

const local = new LocalConnection();
const ID = /^\d{8}T\d{6}Z-\d{4}$/;

interface Step {
  name: string;
  ok: boolean;
  how?: string;
}
interface HistoryLine {
  action: string;
  outcome: string;
  failedStep: string | null;
  release: string | null;
  previousRelease: string | null;
  switchedBack?: boolean;
  removedReleases?: Array<{ id: string; bytes: number; why: string }>;
  steps: Step[];
  after: Record<string, string>;
}
interface ReleaseAnswer {
  id: string | null;
  previous: string | null;
  live: string | null;
  removed: Array<{ id: string; bytes: number; why: string }>;
  switchedBack?: { ok: boolean };
  bytes?: number;
  ownBytes?: number;
}
interface JsonRun {
  plan: { venvs: Array<{ releases?: { build: string; live: string | null; switchTo?: string; cleanedUp?: string; onHost: string[] } }> };
  report: { venvs: Array<{ outcome: string; release?: ReleaseAnswer; steps: Step[] }> };
}

async function historyOf(root: string): Promise<HistoryLine[]> {
  const file = join(root, '.vdeploy', 'history.jsonl');
  if (!existsSync(file)) return [];
  return (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as HistoryLine);
}

/** The release id `current` names (asserting it is the relative link releases/<id>). */
async function liveRelease(root: string): Promise<string> {
  const target = await readlink(join(root, 'current'));
  expect(target).to.match(/^releases\/\d{8}T\d{6}Z-\d{4}$/);
  return target.slice('releases/'.length);
}

async function releasesOn(root: string): Promise<string[]> {
  return (await readdir(join(root, 'releases'))).sort();
}

/** path → sha256 (files) or link target (symlinks) of every entry under `dir`, with its mode. */
async function hashTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const rel = p.slice(dir.length);
      if (e.isSymbolicLink()) out[rel] = `-> ${await readlink(p)}`;
      else if (e.isDirectory()) {
        out[rel] = 'dir';
        await walk(p);
      } else {
        const s = await stat(p);
        out[rel] = `${(s.mode & 0o7777).toString(8)} ${createHash('sha256').update(await readFile(p)).digest('hex')}`;
      }
    }
  };
  await walk(dir);
  return out;
}

function ok(r: CliResult): CliResult {
  expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
  return r;
}

function json(r: CliResult): JsonRun {
  return JSON.parse(r.stdout) as JsonRun;
}

/** A reload that touches `marker`, then runs until `gate` exists (at most 2 minutes): a step the test ends. */
function gatedReload(marker: string, gate: string): string {
  return `touch ${JSON.stringify(marker)}; i=0; while [ ! -e ${JSON.stringify(gate)} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done`;
}

/** The body the URL answers once it answers `want` (polled: a restarted gunicorn takes a moment), else the last one. */
async function bodyOnceItIs(url: string, want: string, tries = 100): Promise<string> {
  let body = '';
  for (let i = 0; i < tries && body !== want; i++) {
    body = await fetch(url).then((r) => r.text(), () => '');
    if (body !== want) await new Promise((r) => setTimeout(r, 200));
  }
  return body;
}

describe('releases layout: deploy, switch back, rollback, cleanup (real sshd fleet)', function () {
  this.timeout(600_000);
  let fleet: Fleet;
  let host: FleetHost;
  let wheels: string;
  const built = new Map<string, string>();

  /** relapp VERSION (cached): `relapp.__version__`, a console script, and — broken — an import that raises. */
  async function relapp(version: string, broken = false): Promise<string> {
    const key = `${version}${broken ? '-broken' : ''}`;
    if (!built.has(key)) {
      const init = `__version__ = "${version}"\n\ndef main():\n    print("relapp " + __version__)\n${broken ? `raise RuntimeError("relapp ${version} is broken")\n` : ''}`;
      built.set(key, await buildWheel(join(wheels, key), { name: 'relapp', version, files: { 'relapp/__init__.py': init }, entryPoints: { 'relapp-version': 'relapp:main' } }));
    }
    return built.get(key)!;
  }

  /** A project deploying relapp to one app root on the fleet's host. */
  async function relProject(name: string, venv: Partial<ProjectVenv> = {}, version = '1.0'): Promise<{ root: string; project: DeployProject }> {
    const root = join(host.root, 'srv', name);
    const project = await makeDeployProject(fleet, { venvs: [{ host, path: root, releases: true, ...venv }], requirements: 'relapp\n', wheels: [await relapp(version)] });
    return { root, project };
  }

  before(async () => {
    fleet = await startFleet({ hosts: 1 });
    host = fleet.hosts[0]!;
    wheels = await makeTempDir('vdeploy-reldeploy-wheels-');
  });
  after(async () => fleet?.stop());

  describe('fresh, upgrade, no-op, rollback by switch (one app root)', () => {
    let root: string;
    let project: DeployProject;
    let first: string;
    let second: string;

    before(async () => {
      ({ root, project } = await relProject('app'));
    });

    it('a fresh deploy makes releases/<id> a venv with the pushed wheels, current → releases/<id>, history names it', async () => {
      const r = json(ok(await project.run(['deploy', '--yes', '--json'])));
      expect(r.plan.venvs[0]!.releases).to.deep.include({ build: 'fresh', live: null, onHost: [] });
      first = await liveRelease(root);
      expect(first).to.match(ID);
      expect(await releasesOn(root)).to.deep.equal([first]);
      expect(existsSync(join(root, 'releases', first, 'pyvenv.cfg'))).to.equal(true);
      // The root is not a venv: only current, releases/ and .vdeploy/ (lock, history, pip's report).
      expect((await readdir(root)).sort()).to.deep.equal(['.vdeploy', 'current', 'releases']);
      expect(await pipList(join(root, 'current'))).to.include({ relapp: '1.0' });
      expect((await local.exec([join(root, 'current', 'bin', 'relapp-version')])).stdout.trim()).to.equal('relapp 1.0');
      // pip's own report: the wheel came from this host's vdeploy cache, nowhere else.
      const report = JSON.parse(await readFile(join(root, '.vdeploy', 'pip-report.json'), 'utf8')) as { install: Array<{ metadata: { name: string }; download_info: { url: string } }> };
      expect(report.install.map((i) => i.metadata.name)).to.deep.equal(['relapp']);
      for (const i of report.install) expect(i.download_info.url).to.match(new RegExp(`^file://${cacheDirOf(host)}/relapp-1\\.0-`));
      const history = await historyOf(root);
      expect(history).to.have.length(1);
      expect(history[0]).to.deep.include({ action: 'deploy', outcome: 'deployed', release: first, previousRelease: null });
      expect(history[0]!.steps.map((s) => s.name)).to.include.members(['create', 'install', 'switch']);
      expect(r.report.venvs[0]!.release).to.deep.include({ id: first, previous: null, live: first, removed: [] });
      expect(r.report.venvs[0]!.release!.bytes).to.be.greaterThan(0);
    });

    it('an upgrade builds a new release by hardlink clone + relocate, switches, and never writes into the old one', async () => {
      const oldPath = join(root, 'releases', first);
      const before = await hashTree(oldPath);
      await project.addWheels([await relapp('1.1')]);
      const r = ok(await project.run(['deploy', '--yes']));
      expect(r.stdout).to.match(/↑\s+relapp\s+1\.0 → 1\.1/);
      second = await liveRelease(root);
      expect(second).not.to.equal(first);
      expect(await releasesOn(root)).to.deep.equal([first, second]);
      // The live release before the deploy is byte for byte what it was: the clone shares its inodes
      // (hardlinks) and nothing wrote through them.
      expect(await hashTree(oldPath)).to.deep.equal(before);
      const newPath = join(root, 'releases', second);
      const shared = join('lib', (await readdir(join(oldPath, 'lib')))[0]!, 'site-packages', 'pip', '__init__.py');
      expect((await stat(join(newPath, shared))).ino).to.equal((await stat(join(oldPath, shared))).ino);
      // Every script in the new release's bin/ runs the new release's Python, none the old one's.
      for (const name of await readdir(join(newPath, 'bin'))) {
        const p = join(newPath, 'bin', name);
        if ((await stat(p)).isDirectory() || name.startsWith('python')) continue;
        const text = await readFile(p, 'latin1');
        expect(text, name).not.to.include(oldPath);
        if (text.startsWith('#!')) expect(text.split('\n')[0]!.startsWith(`#!${newPath}/bin/python`), `${name}: ${text.split('\n')[0]}`).to.equal(true);
      }
      const version = await local.exec([join(root, 'current', 'bin', 'python'), '-c', 'import relapp; print(relapp.__version__)']);
      expect(version.stdout.trim()).to.equal('1.1');
      expect((await local.exec([join(root, 'current', 'bin', 'relapp-version')])).stdout.trim()).to.equal('relapp 1.1');
      expect(await pipList(join(root, 'releases', first))).to.include({ relapp: '1.0' });
      const h = (await historyOf(root)).at(-1)!;
      expect(h).to.deep.include({ outcome: 'deployed', release: second, previousRelease: first });
      const steps = h.steps.map((s) => s.name);
      expect(steps.slice(0, 3)).to.deep.equal(['clone', 'relocate', 'install']);
      expect(steps).not.to.include('create');
      expect(h.steps.find((s) => s.name === 'clone')).to.deep.include({ ok: true, how: 'hardlinks' });
      expect(h.steps.find((s) => s.name === 'relocate')).to.deep.include({ ok: true });
      expect(steps.indexOf('switch')).to.be.greaterThan(steps.indexOf('install'));
    });

    it('a no-op deploy builds nothing: no new release, no history line, exit 0', async () => {
      const historyBefore = await readFile(join(root, '.vdeploy', 'history.jsonl'), 'utf8');
      const r = ok(await project.run(['deploy', '--yes']));
      expect(r.stdout).to.include('Nothing to deploy.');
      expect(await releasesOn(root)).to.deep.equal([first, second]);
      expect(await liveRelease(root)).to.equal(second);
      expect(await readFile(join(root, '.vdeploy', 'history.jsonl'), 'utf8')).to.equal(historyBefore);
    });

    it('rollback switches current back to the previous release with no pip; both releases stay', async () => {
      const liveBefore = await hashTree(join(root, 'releases', first));
      const r = ok(await project.run(['rollback', '--yes', '--json']));
      expect(r.stderr).not.to.match(/push/);
      const plan = json(r).plan.venvs[0]!.releases!;
      expect(plan).to.deep.include({ build: 'switch', switchTo: first, live: second });
      expect(await liveRelease(root)).to.equal(first);
      expect(await releasesOn(root)).to.deep.equal([first, second]);
      expect(await pipList(join(root, 'current'))).to.include({ relapp: '1.0' });
      const h = (await historyOf(root)).at(-1)!;
      expect(h).to.deep.include({ action: 'rollback', outcome: 'deployed', release: first, previousRelease: second });
      const steps = h.steps.map((s) => s.name);
      expect(steps).to.include('switch');
      for (const s of steps) expect(['switch', 'reload', 'healthcheck'], `step ${s}`).to.include(s);
      // The release switched to was not touched (no pip ran in it).
      expect(await hashTree(join(root, 'releases', first))).to.deep.equal(liveBefore);
    });
  });

  describe('keep cleanup, then rollback --to a cleaned-up release', () => {
    let root: string;
    let project: DeployProject;
    const ids: string[] = [];

    it('with keep: 2, after 4 upgrades only the newest 2 successful releases remain; each answer reports what it removed, with bytes', async () => {
      ({ root, project } = await relProject('keep', { releases: { keep: 2 } }));
      ok(await project.run(['deploy', '--yes']));
      ids.push(await liveRelease(root));
      const removedBy: string[][] = [];
      for (const v of ['1.1', '1.2', '1.3', '1.4']) {
        await project.addWheels([await relapp(v)]);
        const r = json(ok(await project.run(['deploy', '--yes', '--json'])));
        ids.push(await liveRelease(root));
        const release = r.report.venvs[0]!.release!;
        expect(release).to.deep.include({ id: ids.at(-1), previous: ids.at(-2), live: ids.at(-1) });
        for (const gone of release.removed) {
          expect(gone.why).to.equal('beyond keep');
          expect(gone.bytes).to.be.a('number').and.greaterThan(0);
        }
        removedBy.push(release.removed.map((g) => g.id));
        const h = (await historyOf(root)).at(-1)!;
        expect((h.removedReleases ?? []).map((g) => g.id)).to.deep.equal(release.removed.map((g) => g.id));
      }
      // #2 keeps #1 and #2; then each deploy removes the oldest (never the live one nor the rollback target).
      expect(removedBy).to.deep.equal([[], [ids[0]], [ids[1]], [ids[2]]]);
      expect(await releasesOn(root)).to.deep.equal([ids[3], ids[4]]);
      expect(await liveRelease(root)).to.equal(ids[4]);
      expect(await pipList(join(root, 'current'))).to.include({ relapp: '1.4' });
    });

    it('rollback --to 1 (its release cleaned up): the plan says so and the release is rebuilt from the release log', async () => {
      // The plan's text line for it is checked in releases-cli.test.ts.
      const r = json(ok(await project.run(['rollback', '--yes', '--to', '1', '--json'])));
      const plan = r.plan.venvs[0]!.releases!;
      expect(plan).to.deep.include({ cleanedUp: ids[0], build: 'clone', live: ids[4] });
      expect(plan).not.to.have.property('switchTo');
      const now = await liveRelease(root);
      expect(ids).not.to.include(now);
      expect(await pipList(join(root, 'current'))).to.include({ relapp: '1.0' });
      const h = (await historyOf(root)).at(-1)!;
      expect(h).to.deep.include({ action: 'rollback', outcome: 'deployed', release: now, previousRelease: ids[4] });
      expect(h.steps.map((s) => s.name)).to.include.members(['clone', 'relocate', 'install', 'switch']);
      // keep 2 keeps the newest two successful releases (1.4's and the rebuilt one) and also the one a
      // plain rollback returns to: the release live before the newest deploy no rollback undid (1.3's).
      expect(await releasesOn(root)).to.deep.equal([ids[3], ids[4], now]);
      const back = json(ok(await project.run(['rollback', '--yes', '--json'])));
      expect(back.plan.venvs[0]!.releases).to.deep.include({ build: 'switch', switchTo: ids[3], live: now });
      expect(await liveRelease(root)).to.equal(ids[3]);
      expect(await pipList(join(root, 'current'))).to.include({ relapp: '1.3' });
    });
  });

  it('a failed install removes the new release; current and the live release are untouched; history says failed; exit 1', async () => {
    const { root, project } = await relProject('pipfail');
    ok(await project.run(['deploy', '--yes']));
    const live = await liveRelease(root);
    const liveBefore = await hashTree(join(root, 'releases', live));
    // A wheel add-wheel accepts but pip refuses to install: it claims a future wheel format.
    const bad = join(wheels, 'futurewheel-1.0-py3-none-any.whl');
    const wheelText = 'Wheel-Version: 9.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n';
    const meta = 'Metadata-Version: 2.1\nName: futurewheel\nVersion: 1.0\n\n';
    const init = 'x = 1\n';
    const h = (t: string) => `sha256=${createHash('sha256').update(t).digest('base64url')},${Buffer.byteLength(t)}`;
    const record = `futurewheel/__init__.py,${h(init)}\nfuturewheel-1.0.dist-info/METADATA,${h(meta)}\nfuturewheel-1.0.dist-info/WHEEL,${h(wheelText)}\nfuturewheel-1.0.dist-info/RECORD,,\n`;
    await writeZip(bad, [['futurewheel/__init__.py', init], ['futurewheel-1.0.dist-info/METADATA', meta], ['futurewheel-1.0.dist-info/WHEEL', wheelText], ['futurewheel-1.0.dist-info/RECORD', record]]);
    await project.addWheels([bad, await relapp('1.1')]);
    await project.setRequirements('relapp\nfuturewheel\n');
    const r = await project.run(['deploy', '--yes', '--json']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(1);
    const release = json(r).report.venvs[0]!.release!;
    expect(release.live).to.equal(live);
    expect(release.id).to.match(ID).and.not.equal(live);
    expect(release.removed.map((g) => [g.id, g.why])).to.deep.equal([[release.id, 'failed']]);
    expect(await liveRelease(root)).to.equal(live);
    expect(await releasesOn(root)).to.deep.equal([live]);
    expect(await hashTree(join(root, 'releases', live))).to.deep.equal(liveBefore);
    const have = await pipList(join(root, 'current'));
    expect(have).to.include({ relapp: '1.0' });
    expect(have).not.to.have.property('futurewheel');
    const last = (await historyOf(root)).at(-1)!;
    expect(last).to.deep.include({ outcome: 'failed', failedStep: 'install', previousRelease: live });
    expect(last.steps.map((s) => s.name)).not.to.include('switch');
    // The same deploy as text: it names the failed install.
    const text = await project.run(['deploy', '--yes']);
    expect(text.exitCode).to.equal(1);
    expect(text.stdout).to.match(/install failed \(exit \d+\)/);
    expect(await releasesOn(root)).to.deep.equal([live]);
  });

  it('a failing health check with --no-rollback leaves the failed release live (current → new), not removed', async () => {
    const { root, project } = await relProject('norollback', { healthcheck: { command: 'bin/python -c "import relapp"', retries: 0 } });
    ok(await project.run(['deploy', '--yes']));
    const old = await liveRelease(root);
    await project.addWheels([await relapp('2.0', true)]);
    const r = await project.run(['deploy', '--yes', '--no-rollback']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(1);
    expect(r.stdout).to.match(/healthcheck failed/);
    const now = await liveRelease(root);
    expect(now).not.to.equal(old);
    expect(await releasesOn(root)).to.deep.equal([old, now]);
    expect(await pipList(join(root, 'current'))).to.include({ relapp: '2.0' });
    const last = (await historyOf(root)).at(-1)!;
    expect(last).to.deep.include({ outcome: 'failed', failedStep: 'healthcheck', release: now, previousRelease: old });
    expect(last.switchedBack).to.equal(undefined);
    expect(last.steps.map((s) => s.name)).not.to.include('switch-back');
  });

  it('a second deploy to the same app root while one holds its lock is refused, building nothing', async () => {
    const marker = join(host.root, 'rel-lock-reload-started');
    const gate = join(host.root, 'rel-lock-reload-may-end');
    const { root, project } = await relProject('locked', { reload: gatedReload(marker, gate) });
    const child = spawn(process.execPath, [CLI_BIN, 'deploy', '--yes'], { cwd: project.dir, env: { ...process.env, NO_COLOR: '1', SSH_AUTH_SOCK: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const done = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      await waitFor(() => existsSync(marker) || child.exitCode !== null);
      expect(existsSync(marker), out).to.equal(true);
      const live = await liveRelease(root);
      await project.addWheels([await relapp('1.1')]);
      const second = await project.run(['deploy', '--yes']);
      expect(second.exitCode, second.stderr + second.stdout).to.equal(1);
      expect(second.stdout).to.match(/another deploy holds the lock \(\S+@\S+, pid \d+, since \d{4}-/);
      expect(await releasesOn(root)).to.deep.equal([live]);
      expect(await liveRelease(root)).to.equal(live);
      await writeFile(gate, '');
      expect(await done, out).to.equal(0);
      expect((await local.exec(['flock', '-n', join(root, '.vdeploy', 'lock'), 'true'], { nothrow: true })).exitCode).to.equal(0);
      expect((await historyOf(root)).map((h) => [h.outcome, h.release])).to.deep.equal([['deployed', live]]);
      expect(await pipList(join(root, 'current'))).to.include({ relapp: '1.0' });
    } finally {
      await writeFile(gate, '');
      if (child.exitCode === null) child.kill('SIGTERM');
    }
  });

  describe('Django and a real gunicorn restarted from <root>/current', () => {
    let root: string;
    let project: DeployProject;
    let pidFile: string;
    let url: string;
    let probeLog: string;
    let dwheels: string;

    after(async () => {
      const pid = pidFile && existsSync(pidFile) ? Number((await readFile(pidFile, 'utf8')).trim()) : 0;
      if (pid) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
      }
    });

    it('migrate runs with the new release\'s Python before the switch; the restart serves the new release over HTTP', async () => {
      root = join(host.root, 'srv', 'django');
      pidFile = join(host.root, 'gunicorn-rel.pid');
      probeLog = join(host.root, 'probe-settings.log');
      const port = await freePort(host.address);
      url = `http://${host.address}:${port}/health/`;
      const db = join(host.root, 'django-rel.sqlite3');
      // The reload that really loads the new release: stop gunicorn, start it again from <root>/current.
      const restart = join(host.root, 'gunicorn-restart.sh');
      await writeFile(
        restart,
        [
          `pidfile=${JSON.stringify(pidFile)}`,
          'if [ -f "$pidfile" ]; then pid=$(cat "$pidfile"); kill -TERM "$pid" 2>/dev/null; i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; fi',
          `SHOPAPP_DB=${JSON.stringify(db)} DJANGO_SETTINGS_MODULE=${SHOPAPP_SETTINGS} exec ${JSON.stringify(join(root, 'current', 'bin', 'gunicorn'))} --daemon --pid "$pidfile" --bind ${host.address}:${port} --workers 1 --chdir ${JSON.stringify(host.root)} shopapp.wsgi`,
          '',
        ].join('\n'),
      );
      dwheels = await makeTempDir('vdeploy-reldjango-wheels-');
      // Settings that record which Python runs Django (sys.prefix) and where `current` points meanwhile.
      const probe = await buildWheel(dwheels, {
        name: 'probesettings',
        version: '1.0',
        files: {
          'probesettings/__init__.py': [
            'import json, os, sys',
            'from shopapp.settings import *  # noqa',
            'try:',
            '    current = os.readlink(os.environ["PROBE_CURRENT"])',
            'except OSError:',
            '    current = None',
            'with open(os.environ["PROBE_LOG"], "a") as f:',
            '    f.write(json.dumps({"prefix": sys.prefix, "current": current, "argv": sys.argv[1:2]}) + "\\n")',
            '',
          ].join('\n'),
        },
      });
      project = await makeDeployProject(fleet, {
        venvs: [
          {
            host,
            path: root,
            releases: true,
            django: { settings: 'probesettings', env: { SHOPAPP_DB: db, PROBE_LOG: probeLog, PROBE_CURRENT: join(root, 'current') } },
            reload: `sh ${JSON.stringify(restart)}`,
            healthcheck: { url, expectBody: 'shopapp {version:shopapp}', retries: 30, interval: 0.5, timeout: 5 },
          },
        ],
        requirements: 'shopapp\nprobesettings\n',
        wheels: [...(await sharedWheels(['django-', 'asgiref-', 'sqlparse-', 'gunicorn-'])), probe, await buildDjangoAppWheel(dwheels, { version: '1.0' })],
      });
      ok(await project.run(['deploy', '--yes']));
      const first = await liveRelease(root);
      expect(await bodyOnceItIs(url, 'shopapp 1.0')).to.equal('shopapp 1.0');
      expect(await sqliteTables(db)).to.include('shopapp_item');

      await rm(probeLog, { force: true });
      await project.addWheels([await buildDjangoAppWheel(dwheels, { version: '1.1', migrations: 2 })]);
      ok(await project.run(['deploy', '--yes']));
      const second = await liveRelease(root);
      expect(second).not.to.equal(first);
      expect(await sqliteTables(db)).to.include('shopapp_extra2');
      // Every Django command of the deploy (showmigrations, migrate) ran with the new release's Python
      // while `current` still named the old one.
      const runs = (await readFile(probeLog, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { prefix: string; current: string | null; argv: string[] });
      expect(runs.map((r) => r.argv[0])).to.include.members(['showmigrations', 'migrate']);
      for (const run of runs) expect(run).to.deep.include({ prefix: join(root, 'releases', second), current: `releases/${first}` });
      const h = (await historyOf(root)).at(-1)!;
      expect(h).to.deep.include({ outcome: 'deployed', release: second, previousRelease: first });
      const steps = h.steps.map((s) => s.name);
      expect(steps.indexOf('migrate')).to.be.greaterThan(steps.indexOf('install'));
      expect(steps.indexOf('switch')).to.be.greaterThan(steps.indexOf('migrate'));
      expect(steps.indexOf('reload')).to.be.greaterThan(steps.indexOf('switch'));
      expect(await bodyOnceItIs(url, 'shopapp 1.1')).to.equal('shopapp 1.1');
    });

    it('--migrate always on an up-to-date releases app root migrates with the live release and builds nothing', async () => {
      const live = await liveRelease(root);
      const on = await releasesOn(root);
      await rm(probeLog, { force: true });
      ok(await project.run(['deploy', '--yes', '--migrate', 'always']));
      expect(await releasesOn(root)).to.deep.equal(on);
      expect(await liveRelease(root)).to.equal(live);
      const h = (await historyOf(root)).at(-1)!;
      expect(h).to.deep.include({ outcome: 'deployed', release: live, previousRelease: live });
      const steps = h.steps.map((s) => s.name);
      expect(steps).to.include('migrate');
      for (const s of ['create', 'clone', 'relocate', 'install', 'switch']) expect(steps).not.to.include(s);
      const runs = (await readFile(probeLog, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { prefix: string });
      for (const run of runs) expect(run.prefix).to.equal(join(root, 'releases', live));
    });
  });
});
