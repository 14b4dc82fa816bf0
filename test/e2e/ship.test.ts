// Build once, ship everywhere (issue 16) through the built binary against a real sshd fleet of 5 hosts:
// a fresh deploy of 4 hosts × 2 venvs with ONE pip run (the builder's), every other venv receiving the
// builder's release; an app upgrade shipped as a delta; a no-op; a host with another interpreter that
// builds its own; a corrupted artifact caught by the receivers' manifest check (they fall back to pip);
// Ctrl-C on a terminal while the receivers wait for their release; --no-ship; `vdeploy cache prune`.
// Every assertion reads the hosts' filesystem (current, releases/, history.jsonl, wheel caches, the
// installed files) and the local artifact cache, not only the CLI's output. Each project has its own
// local cache (VDEPLOY_CACHE_DIR), so nothing leaks between projects or into the user's cache.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { closeSync, constants, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { cp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir, runVdeployInPty, type CliResult } from '../helpers/cli.js';
import { cacheDirOf, makeDeployProject, type DeployProject, type ProjectVenv } from '../helpers/deploy-project.js';
import { startFleet, type Fleet, type FleetHost } from '../helpers/fleet.js';
import { CLI_BIN } from '../helpers/paths.js';
import { pipList } from '../helpers/venv-inspect.js';
import { LocalConnection } from '../../src/remote/local-connection.js';
import { waitFor, pauser } from '../helpers/pause-pip.js';
import type { ShipGroup, ShipPlan } from '../../src/deploy/plan.js';
import type { ShippedReport } from '../../src/deploy/report.js';

const local = new LocalConnection();
const PYENV = '/root/.pyenv/versions';

interface Step {
  name: string;
  ok: boolean;
}
interface HistoryLine {
  action: string;
  outcome: string;
  failedStep: string | null;
  release: string | null;
  previousRelease: string | null;
  artifact?: string;
  received?: { kind: string };
  steps: Step[];
}
interface JsonRun {
  plan: { venvs: Array<{ id: string; host: string; path: string; ship?: ShipPlan }>; groups?: ShipGroup[] };
  report: {
    venvs: Array<{ id: string; host: string; path: string; outcome: string; shipped?: ShippedReport; release?: { id: string | null; received?: { kind: string; relocated: boolean } } }>;
    bytesSent: { wheels: number; artifacts: number };
  };
}

function ok(r: CliResult): CliResult {
  expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
  return r;
}

function json(r: CliResult): JsonRun {
  return JSON.parse(r.stdout) as JsonRun;
}

async function historyOf(root: string): Promise<HistoryLine[]> {
  const file = join(root, '.vdeploy', 'history.jsonl');
  if (!existsSync(file)) return [];
  return (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as HistoryLine);
}

async function lastLine(root: string): Promise<HistoryLine> {
  return (await historyOf(root)).at(-1)!;
}

const stepsOf = (h: HistoryLine): string[] => h.steps.map((s) => s.name);

/** The release id `current` names (the relative link releases/<id>). */
async function liveRelease(root: string): Promise<string> {
  const target = await readlink(join(root, 'current'));
  expect(target).to.match(/^releases\/\d{8}T\d{6}Z-\d{4}$/);
  return target.slice('releases/'.length);
}

/** `current`'s target, or null when there is none: what Ctrl-C must leave as it was. */
async function currentOf(root: string): Promise<string | null> {
  return readlink(join(root, 'current')).catch(() => null);
}

async function releasesOn(root: string): Promise<string[]> {
  return (await readdir(join(root, 'releases')).catch(() => [])).sort();
}

/** relapp's version as the live app runs it on its host (over the fleet's own ssh), and its console script's output. */
async function liveApp(fleet: Fleet, host: FleetHost, root: string): Promise<{ version: string; script: string }> {
  const v = await fleet.exec(host, [join(root, 'current', 'bin', 'python'), '-c', 'import relapp; print(relapp.__version__)']);
  const s = await fleet.exec(host, [join(root, 'current', 'bin', 'relapp-version')]);
  return { version: v.stdout.trim(), script: s.stdout.trim() };
}

/** The wheel files in a host's wheel cache: what the controller pushed to it. */
async function wheelsPushedTo(host: FleetHost): Promise<string[]> {
  return (await readdir(cacheDirOf(host)).catch(() => [])).filter((f) => f.endsWith('.whl')).sort();
}

const sha256 = async (file: string): Promise<string> => createHash('sha256').update(await readFile(file)).digest('hex');

/** sha256 of relapp's installed files (module, .pth, dist-info) in a release: its provenance. */
async function relappFiles(release: string): Promise<Record<string, string>> {
  const lib = join(release, 'lib');
  const site = join(lib, (await readdir(lib))[0]!, 'site-packages');
  const out: Record<string, string> = {};
  for (const entry of await readdir(site)) {
    if (!entry.startsWith('relapp')) continue;
    const p = join(site, entry);
    if ((await stat(p)).isDirectory()) {
      for (const f of await readdir(p)) if (f !== '__pycache__') out[`${entry}/${f}`] = await sha256(join(p, f));
    } else out[entry] = await sha256(p);
  }
  return out;
}

/** The built CLI running with this deployfile has a thread waiting, in open(2), for a FIFO's writer. */
function cliReadingFifo(deployfile: string): boolean {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (!cmdline.includes(CLI_BIN) || !cmdline.includes(deployfile)) continue;
    try {
      for (const task of readdirSync(`/proc/${pid}/task`)) if (readFileSync(`/proc/${pid}/task/${task}/wchan`, 'utf8') === 'wait_for_partner') return true;
    } catch {
      // Gone meanwhile.
    }
  }
  return false;
}

describe('build once, ship everywhere (real sshd fleet of 5 hosts)', function () {
  this.timeout(600_000);
  let fleet: Fleet;
  let hosts: FleetHost[];
  let wheels: string;
  let pause: string;
  const built = new Map<string, string>();

  /** relapp VERSION (cached): `relapp.__version__`, a console script, and the pauser .pth. */
  async function relapp(version: string): Promise<string> {
    if (!built.has(version)) {
      const init = `__version__ = "${version}"\n\ndef main():\n    print("relapp " + __version__)\n`;
      built.set(
        version,
        await buildWheel(join(wheels, version), {
          name: 'relapp',
          version,
          files: { 'relapp/__init__.py': init, 'relapp_pause.pth': pauser(pause) },
          entryPoints: { 'relapp-version': 'relapp:main' },
        }),
      );
    }
    return built.get(version)!;
  }

  /** A project of releases venvs with its own local cache directory; `run` passes it. */
  async function shipProject(venvs: ProjectVenv[], versions: string[]): Promise<{ project: DeployProject; cache: string; run: (args: string[]) => Promise<CliResult> }> {
    const project = await makeDeployProject(fleet, { venvs, requirements: 'relapp\n', wheels: await Promise.all(versions.map(relapp)) });
    const cache = await makeTempDir('vdeploy-ship-cache-');
    return { project, cache, run: (args) => project.run(args, { env: { VDEPLOY_CACHE_DIR: cache } }) };
  }

  before(async () => {
    fleet = await startFleet({ hosts: 5 });
    hosts = fleet.hosts;
    wheels = await makeTempDir('vdeploy-ship-wheels-');
    pause = join(wheels, 'pause');
  });
  after(async () => fleet?.stop());

  describe('4 hosts × 2 venvs, one interpreter: fresh, upgrade by delta, no-op, Ctrl-C, a corrupted artifact', () => {
    let run: (args: string[]) => Promise<CliResult>;
    let project: DeployProject;
    let cacheA: string;
    /** [host, root] of every venv, in deploy order; the first is the builder. */
    let venvs: Array<{ host: FleetHost; root: string; id: string }>;
    let digest10: string;

    before(async () => {
      venvs = hosts.slice(0, 4).flatMap((host) => ['app1', 'app2'].map((name) => ({ host, root: join(host.root, 'srv', name), id: `${fleet.user}@${host.name}:${join(host.root, 'srv', name)}` })));
      ({ project, cache: cacheA, run } = await shipProject(
        venvs.map((v) => ({ host: v.host, path: v.root, releases: true })),
        ['1.0'],
      ));
    });

    it('plan: one builder line and 7 receiver lines, all one group', async () => {
      const r = ok(await run(['plan']));
      const builder = venvs[0]!;
      const builds = r.stdout.match(/build here with pip, then ship to 7 venvs \(group [0-9a-f]{16}\)/g) ?? [];
      expect(builds, r.stdout).to.have.length(1);
      const receives = r.stdout.match(/receive the release built for \S+ \(full\)/g) ?? [];
      expect(receives, r.stdout).to.have.length(7);
      for (const line of receives) expect(line).to.equal(`receive the release built for ${builder.host.name}:${builder.root} (full)`);
      expect(r.stdout).not.to.match(/receive from the local artifact cache/);
    });

    it('a fresh deploy runs pip ONCE in the whole fleet: the builder installs and packs, the 7 others receive its release', async () => {
      const r = json(ok(await run(['deploy', '--yes', '--json'])));
      const builder = venvs[0]!;
      // The plan as JSON: one group of 8, built by the first venv.
      expect(r.plan.groups).to.have.length(1);
      const group = r.plan.groups![0]!;
      expect(group.builder).to.equal(builder.id);
      expect([...group.members].sort()).to.deep.equal(venvs.map((v) => v.id).sort());
      expect(group.desired).to.deep.equal(['relapp-1.0-py3-none-any.whl']);
      for (const v of r.plan.venvs) {
        if (v.id === builder.id) expect(v.ship).to.deep.equal({ role: 'builder', group: group.key, members: 8 });
        else expect(v.ship).to.deep.equal({ role: 'receiver', group: group.key, from: builder.id, kind: 'full' });
      }
      for (const v of r.report.venvs) {
        expect(v.outcome, v.id).to.equal('deployed');
        expect(v.shipped, v.id).to.deep.include({ role: v.id === builder.id ? 'builder' : 'receiver', group: group.key });
        expect(v.shipped!.fellBack, v.id).to.equal(undefined);
        if (v.id !== builder.id) expect(v.shipped).to.deep.include({ kind: 'full', from: builder.id });
      }
      console.log(`      fresh: sent ${r.report.bytesSent.artifacts} B of artifacts, ${r.report.bytesSent.wheels} B of wheels`);
      expect(r.report.bytesSent.artifacts).to.be.greaterThan(0);
      expect(r.report.bytesSent.wheels).to.equal((await stat(await relapp('1.0'))).size);
      // Each receiver took the builder's release id (free on its empty root) and relocated the release
      // to its own path (every root's path differs here: the hosts share one disk).
      const builderId = r.report.venvs.find((v) => v.id === builder.id)!.release!.id;
      for (const v of r.report.venvs) {
        expect(v.release?.id, v.id).to.equal(builderId);
        if (v.id !== builder.id) expect(v.release?.received, v.id).to.deep.include({ kind: 'full', relocated: true });
      }

      // The hosts' own record: only the builder's apply ran an install (pip), and packed; every other
      // apply received. Only the builder's root has pip's report; only the builder's host got the wheel.
      const bh = await historyOf(builder.root);
      expect(bh).to.have.length(1);
      expect(bh[0]).to.deep.include({ action: 'deploy', outcome: 'deployed' });
      expect(stepsOf(bh[0]!)).to.include.members(['create', 'install', 'pack', 'switch']);
      expect(stepsOf(bh[0]!)).not.to.include('receive');
      digest10 = bh[0]!.artifact!;
      expect(digest10).to.match(/^[0-9a-f]{64}$/);
      let installs = 0;
      for (const v of venvs) {
        const h = await historyOf(v.root);
        expect(h, v.id).to.have.length(1);
        expect(h[0]!.outcome, v.id).to.equal('deployed');
        expect(h[0]!.artifact, v.id).to.equal(digest10);
        const steps = stepsOf(h[0]!);
        if (steps.includes('install')) installs++;
        if (v === builder) continue;
        expect(steps, v.id).to.include.members(['receive', 'switch']);
        for (const s of ['create', 'clone', 'install', 'pack']) expect(steps, `${v.id}: ${s}`).not.to.include(s);
        expect(h[0]!.received, v.id).to.deep.equal({ kind: 'full' });
        expect(existsSync(join(v.root, '.vdeploy', 'pip-report.json')), v.id).to.equal(false);
      }
      expect(installs).to.equal(1);
      expect(existsSync(join(builder.root, '.vdeploy', 'pip-report.json'))).to.equal(true);
      expect(await wheelsPushedTo(hosts[0]!)).to.deep.equal(['relapp-1.0-py3-none-any.whl']);
      for (const h of hosts.slice(1, 4)) expect(await wheelsPushedTo(h), h.name).to.deep.equal([]);

      // Every venv runs the app from its own live release (the console script's shebang relocated to
      // it), holds exactly what the builder holds, and relapp's files are the builder's, byte for byte.
      const builderRelease = join(builder.root, 'releases', await liveRelease(builder.root));
      const builderSet = await pipList(builderRelease);
      expect(builderSet).to.include({ relapp: '1.0' });
      const builderFiles = await relappFiles(builderRelease);
      expect(Object.keys(builderFiles)).to.include.members(['relapp/__init__.py', 'relapp-1.0.dist-info/RECORD', 'relapp_pause.pth']);
      for (const v of venvs) {
        const id = await liveRelease(v.root);
        expect(await releasesOn(v.root), v.id).to.deep.equal([id]);
        const release = join(v.root, 'releases', id);
        expect(await liveApp(fleet, v.host, v.root), v.id).to.deep.equal({ version: '1.0', script: 'relapp 1.0' });
        const shebang = (await readFile(join(release, 'bin', 'relapp-version'), 'utf8')).split('\n')[0];
        expect(shebang, v.id).to.equal(`#!${release}/bin/python`);
        expect(await pipList(join(v.root, 'current')), v.id).to.deep.equal(builderSet);
        expect(await relappFiles(release), v.id).to.deep.equal(builderFiles);
      }
      // The local artifact cache holds the group's release.
      expect(existsSync(join(cacheA, 'artifacts', `${digest10}.tar`))).to.equal(true);
    });

    it('an upgrade of the app only ships a delta: kilobytes of artifacts, no wheels to the receivers; every venv at 1.1 cloned from its own release', async () => {
      await project.addWheels([await relapp('1.1')]);
      const before = new Map<string, string>();
      for (const v of venvs) before.set(v.root, await liveRelease(v.root));
      const r = json(ok(await run(['deploy', '--yes', '--json'])));
      const builder = venvs[0]!;
      const group = r.plan.groups![0]!;
      for (const v of r.plan.venvs) {
        if (v.id === builder.id) expect(v.ship).to.deep.include({ role: 'builder', members: 8 });
        else expect(v.ship).to.deep.equal({ role: 'receiver', group: group.key, from: builder.id, kind: 'delta', base: digest10 });
      }
      for (const v of r.report.venvs) {
        expect(v.outcome, v.id).to.equal('deployed');
        if (v.id !== builder.id) expect(v.shipped, v.id).to.deep.include({ role: 'receiver', kind: 'delta', from: builder.id });
        expect(v.shipped!.fellBack, v.id).to.equal(undefined);
      }
      console.log(`      upgrade: sent ${r.report.bytesSent.artifacts} B of artifacts, ${r.report.bytesSent.wheels} B of wheels`);
      expect(r.report.bytesSent.artifacts).to.be.greaterThan(0).and.lessThan(1024 * 1024);
      // Wheels went to the builder's host only (the one wheel it installs).
      expect(r.report.bytesSent.wheels).to.equal((await stat(await relapp('1.1'))).size);
      for (const h of hosts.slice(1, 4)) expect(await wheelsPushedTo(h), h.name).to.deep.equal([]);

      const builderId = r.report.venvs.find((v) => v.id === builder.id)!.release!.id;
      for (const v of r.report.venvs) {
        expect(v.release?.id, v.id).to.equal(builderId);
        if (v.id !== builder.id) expect(v.release?.received, v.id).to.deep.include({ kind: 'delta', relocated: true });
      }
      const bh = await lastLine(builder.root);
      expect(stepsOf(bh).slice(0, 3)).to.deep.equal(['clone', 'relocate', 'install']);
      expect(stepsOf(bh)).to.include('pack');
      const digest11 = bh.artifact!;
      expect(digest11).to.match(/^[0-9a-f]{64}$/).and.not.equal(digest10);
      for (const v of venvs) {
        const h = await lastLine(v.root);
        expect(h, v.id).to.deep.include({ outcome: 'deployed', previousRelease: before.get(v.root), artifact: digest11 });
        const now = await liveRelease(v.root);
        expect(now, v.id).not.to.equal(before.get(v.root));
        expect(await releasesOn(v.root), v.id).to.deep.equal([before.get(v.root)!, now].sort());
        expect(await liveApp(fleet, v.host, v.root), v.id).to.deep.equal({ version: '1.1', script: 'relapp 1.1' });
        expect(await pipList(join(v.root, 'current')), v.id).to.include({ relapp: '1.1' });
        if (v === builder) continue;
        expect(stepsOf(h), v.id).to.include('receive');
        for (const s of ['install', 'create', 'pack']) expect(stepsOf(h), `${v.id}: ${s}`).not.to.include(s);
        expect(h.received, v.id).to.deep.equal({ kind: 'delta' });
        // The receiver cloned its own previous release: files the delta did not carry are hardlinks.
        const oldRel = join(v.root, 'releases', before.get(v.root)!);
        const pipInit = join('lib', (await readdir(join(oldRel, 'lib')))[0]!, 'site-packages', 'pip', '__init__.py');
        expect((await stat(join(v.root, 'releases', now, pipInit))).ino, v.id).to.equal((await stat(join(oldRel, pipInit))).ino);
      }
    });

    it('then a no-op deploy changes nothing: no new release, no history line, exit 0', async () => {
      const before = new Map<string, string>();
      for (const v of venvs) before.set(v.root, (await readFile(join(v.root, '.vdeploy', 'history.jsonl'), 'utf8')) + (await releasesOn(v.root)).join(','));
      const r = ok(await run(['deploy', '--yes']));
      expect(r.stdout).to.include('Nothing to deploy.');
      for (const v of venvs) {
        expect((await readFile(join(v.root, '.vdeploy', 'history.jsonl'), 'utf8')) + (await releasesOn(v.root)).join(','), v.id).to.equal(before.get(v.root));
      }
    });

    it('a corrupted file in the cached artifact is caught by the receivers\' manifest check: they fall back to pip and end at the right version', async () => {
      // Two new app roots wanting the same set as the fleet now (relapp 1.1, same interpreter): the
      // same group, so both receive its release from a local cache holding it — a copy of the fleet's
      // cache in which one byte of relapp/__init__.py inside the tar is changed (the tar's recorded
      // sha256 updated to match, as a bad disk or a bad copy would leave it: only the manifest knows).
      const roots = hosts.slice(2, 4).map((host) => ({ host, root: join(host.root, 'srv', 'corrupt') }));
      const c = await shipProject(roots.map((v) => ({ host: v.host, path: v.root, releases: true })), ['1.0', '1.1']);
      await rm(c.cache, { recursive: true, force: true });
      await cp(cacheA, c.cache, { recursive: true });
      const digest11 = (await lastLine(venvs[0]!.root)).artifact!;
      const tar = join(c.cache, 'artifacts', `${digest11}.tar`);
      const meta = join(c.cache, 'artifacts', `${digest11}.json`);
      const corrupt = `
import hashlib, json, sys, tarfile
tar, meta = sys.argv[1:3]
with tarfile.open(tar) as t:
    m = next(m for m in t.getmembers() if m.name.endswith('site-packages/relapp/__init__.py'))
with open(tar, 'r+b') as f:
    f.seek(m.offset_data)
    data = f.read(m.size)
    bad = data.replace(b'"1.1"', b'"6.6"')
    assert bad != data and len(bad) == len(data)
    f.seek(m.offset_data)
    f.write(bad)
with open(tar, 'rb') as f:
    digest = hashlib.sha256(f.read()).hexdigest()
with open(meta) as f:
    info = json.load(f)
info['sha256'] = digest
with open(meta, 'w') as f:
    json.dump(info, f)
print(m.name[len('files/'):] if m.name.startswith('files/') else m.name)
`;
      const relpath = (await local.exec(['/usr/bin/python3', '-c', corrupt, tar, meta])).stdout.trim();
      expect(relpath).to.match(/site-packages\/relapp\/__init__\.py$/);

      const r = json(ok(await c.run(['deploy', '--yes', '--json'])));
      expect(r.plan.groups).to.have.length(1);
      expect(r.plan.groups![0]).to.deep.include({ builder: 'cache' });
      for (const v of r.plan.venvs) expect(v.ship).to.deep.include({ role: 'receiver', from: 'cache', kind: 'full' });
      for (const v of r.report.venvs) {
        expect(v.outcome, v.id).to.equal('deployed');
        expect(v.shipped?.fellBack, v.id).to.be.a('string').and.include(relpath);
        expect(v.shipped!.fellBack, v.id).to.match(/sha256/);
      }
      for (const { host, root } of roots) {
        // The host's record: a receive that failed, then the same venv built with pip.
        const h = await historyOf(root);
        expect(h.map((l) => [l.outcome, l.failedStep]), host.name).to.deep.equal([
          ['failed', 'receive'],
          ['deployed', null],
        ]);
        expect(stepsOf(h[1]!), host.name).to.include('install');
        expect(stepsOf(h[1]!), host.name).not.to.include('receive');
        const live = await liveRelease(root);
        expect(await releasesOn(root), host.name).to.deep.equal([live]);
        expect(await liveApp(fleet, host, root), host.name).to.deep.equal({ version: '1.1', script: 'relapp 1.1' });
        expect(await wheelsPushedTo(host), host.name).to.include('relapp-1.1-py3-none-any.whl');
      }
    });

    it('Ctrl-C on a terminal while the group\'s build runs and its receivers wait: every current untouched, nothing received, exit 130', async () => {
      await project.addWheels([await relapp('1.2')]);
      const before = new Map<string, { current: string | null; releases: string[]; history: string }>();
      for (const v of venvs) before.set(v.root, { current: await currentOf(v.root), releases: await releasesOn(v.root), history: await readFile(join(v.root, '.vdeploy', 'history.jsonl'), 'utf8') });
      const artifactsBefore = (await readdir(join(cacheA, 'artifacts'))).sort();
      await writeFile(pause, '');
      const transcript = join(wheels, 'ctrl-c-transcript');
      try {
        const running = runVdeployInPty(['deploy', '--yes', '--deployfile', join(project.dir, 'deployfile.ts')], {
          answers: ['\x03'],
          whenFile: `${pause}.reached`,
          env: { PTY_DRIVE_TRANSCRIPT: transcript, VDEPLOY_CACHE_DIR: cacheA },
        });
        // Once the CLI says it is stopping, the held pip may go on: the stop has been sent to the host.
        await waitFor(async () => (await readFile(transcript, 'utf8').catch(() => '')).includes('Stopping')).catch(async (e) => {
          throw new Error(`${(e as Error).message}; reached: ${existsSync(`${pause}.reached`)}; transcript: ${await readFile(transcript, 'utf8').catch(() => '(none)')}`);
        });
        await rm(pause);
        const r = await running;
        expect(r.exitCode, r.output).to.equal(130);
        expect(r.output).to.match(/Stopping/);
      } finally {
        await rm(pause, { force: true });
      }
      const builder = venvs[0]!;
      for (const v of venvs) {
        const was = before.get(v.root)!;
        expect(await currentOf(v.root), v.id).to.equal(was.current);
        expect(await releasesOn(v.root), v.id).to.deep.equal(was.releases);
        expect(await liveApp(fleet, v.host, v.root), v.id).to.deep.include({ version: '1.1' });
        const history = await readFile(join(v.root, '.vdeploy', 'history.jsonl'), 'utf8');
        if (v === builder) {
          // The builder stopped after its install, before its pack and switch, and removed what it built.
          const last = await lastLine(v.root);
          expect(last.outcome).to.equal('interrupted');
          expect(stepsOf(last)).not.to.include('switch');
          expect(stepsOf(last)).not.to.include('pack');
        } else {
          // The receivers never started: no apply ran on their roots.
          expect(history, v.id).to.equal(was.history);
        }
      }
      // Nothing was packed, so nothing new in the local cache.
      expect((await readdir(join(cacheA, 'artifacts'))).sort().filter((f) => !f.includes('.tmp'))).to.deep.equal(artifactsBefore);
    });

    it('Ctrl-C while the controller streams a cached release to the hosts: every current untouched, no apply ran, exit 130', async () => {
      // The fleet goes back to relapp 1.0 by deploy: the set of the first deploy, whose release the local
      // cache holds, so there is no builder and every venv receives from the cache. The cached tar is
      // made a FIFO (its recorded size 0): the controller's read of it for the uploads waits, in the
      // kernel, until someone writes — a deterministic "the artifact is on its way" for the test.
      await project.setRequirements('relapp==1.0\n');
      const tar = join(cacheA, 'artifacts', `${digest10}.tar`);
      const metaFile = join(cacheA, 'artifacts', `${digest10}.json`);
      const savedTar = await readFile(tar);
      const savedMeta = await readFile(metaFile, 'utf8');
      const before = new Map<string, { current: string | null; releases: string[]; history: string }>();
      for (const v of venvs) before.set(v.root, { current: await currentOf(v.root), releases: await releasesOn(v.root), history: await readFile(join(v.root, '.vdeploy', 'history.jsonl'), 'utf8') });
      await rm(tar);
      await local.exec(['mkfifo', tar]);
      await writeFile(metaFile, JSON.stringify({ ...(JSON.parse(savedMeta) as object), bytes: 0 }));
      const deployfile = join(project.dir, 'deployfile.ts');
      const inFlight = join(wheels, 'upload-in-flight');
      const transcript = join(wheels, 'ctrl-c-upload-transcript');
      let done = false;
      // Until the CLI has exited: give every reader of the FIFO an end of file (a writer that opens and
      // closes), once the test has seen the CLI blocked reading it and pressed Ctrl-C.
      let feeding = false;
      const feeder = (async () => {
        while (!done) {
          if (feeding) {
            try {
              closeSync(openSync(tar, constants.O_WRONLY | constants.O_NONBLOCK));
            } catch {
              // ENXIO: nobody reads it now.
            }
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      try {
        const running = runVdeployInPty(['deploy', '--yes', '--deployfile', deployfile], {
          answers: ['\x03'],
          whenFile: inFlight,
          env: { PTY_DRIVE_TRANSCRIPT: transcript, VDEPLOY_CACHE_DIR: cacheA },
        });
        await waitFor(() => cliReadingFifo(deployfile)).catch(async (e) => {
          throw new Error(`${(e as Error).message}: the CLI never read the cached tar; transcript: ${await readFile(transcript, 'utf8').catch(() => '(none)')}`);
        });
        await writeFile(inFlight, '');
        await waitFor(async () => (await readFile(transcript, 'utf8').catch(() => '')).includes('Stopping'));
        feeding = true;
        const r = await running;
        expect(r.exitCode, r.output).to.equal(130);
        expect(r.output).to.match(/receive from the local artifact cache \(full\)/);
      } finally {
        done = true;
        await feeder;
        await rm(tar, { force: true });
        await writeFile(tar, savedTar);
        await writeFile(metaFile, savedMeta);
      }
      for (const v of venvs) {
        const was = before.get(v.root)!;
        expect(await currentOf(v.root), v.id).to.equal(was.current);
        expect(await releasesOn(v.root), v.id).to.deep.equal(was.releases);
        expect(await readFile(join(v.root, '.vdeploy', 'history.jsonl'), 'utf8'), v.id).to.equal(was.history);
        expect(await liveApp(fleet, v.host, v.root), v.id).to.deep.include({ version: '1.1' });
      }
    });
  });

  describe('a host with another interpreter, --no-ship, cache prune', () => {
    let project: DeployProject;
    let cache: string;
    let run: (args: string[]) => Promise<CliResult>;
    let roots: Array<{ host: FleetHost; root: string; python?: string }>;

    before(async () => {
      const py312 = (await readdir(PYENV)).find((v) => v.startsWith('3.12.'));
      expect(py312, `a pyenv 3.12 in ${PYENV}`).to.be.a('string');
      const python = join(PYENV, py312!, 'bin', 'python3');
      const host5 = hosts[4]!;
      roots = [
        { host: hosts[0]!, root: join(hosts[0]!.root, 'srv', 'mixed') },
        { host: hosts[1]!, root: join(hosts[1]!.root, 'srv', 'mixed') },
        { host: host5, root: join(host5.root, 'srv', 'mixed1'), python },
        { host: host5, root: join(host5.root, 'srv', 'mixed2'), python },
      ];
      ({ project, cache, run } = await shipProject(
        roots.map((v) => ({ host: v.host, path: v.root, releases: true, ...(v.python ? { python: v.python } : {}) })),
        ['1.1'],
      ));
    });

    it('the host with a pyenv Python builds its own release (and ships it to its second venv); the others still ship theirs', async () => {
      const r = json(ok(await run(['deploy', '--yes', '--json'])));
      expect(r.plan.groups).to.have.length(2);
      const byRoot = (root: string) => r.plan.venvs.find((v) => v.path === root)!;
      const [sys1, sys2, py1, py2] = roots.map((v) => byRoot(v.root));
      expect(sys1!.ship).to.deep.include({ role: 'builder', members: 2 });
      expect(sys2!.ship).to.deep.include({ role: 'receiver', from: sys1!.id, group: sys1!.ship!.group });
      expect(py1!.ship).to.deep.include({ role: 'builder', members: 2 });
      expect(py2!.ship).to.deep.include({ role: 'receiver', from: py1!.id, group: py1!.ship!.group });
      expect(py1!.ship!.group).not.to.equal(sys1!.ship!.group);
      for (const v of r.report.venvs) {
        expect(v.outcome, v.id).to.equal('deployed');
        expect(v.shipped?.fellBack, v.id).to.equal(undefined);
      }
      const want = [['install'], ['receive'], ['install'], ['receive']];
      for (const [i, { host, root }] of roots.entries()) {
        const h = await lastLine(root);
        expect(h.outcome, root).to.equal('deployed');
        expect(stepsOf(h).filter((s) => s === 'install' || s === 'receive'), root).to.deep.equal(want[i]);
        expect(await liveApp(fleet, host, root), root).to.deep.equal({ version: '1.1', script: 'relapp 1.1' });
      }
      // The pyenv venvs run pyenv's 3.12, the others Debian's.
      const ver = await fleet.exec(roots[3]!.host, [join(roots[3]!.root, 'current', 'bin', 'python'), '-c', 'import sys; print("%d.%d" % sys.version_info[:2])']);
      expect(ver.stdout.trim()).to.equal('3.12');
      expect((await lastLine(roots[2]!.root)).artifact).to.not.equal((await lastLine(roots[0]!.root)).artifact);
    });

    it('--no-ship: every venv builds with pip, nothing is shipped', async () => {
      await project.addWheels([await relapp('1.2')]);
      const r = json(ok(await run(['deploy', '--yes', '--json', '--no-ship'])));
      expect(r.plan.groups ?? []).to.deep.equal([]);
      for (const v of r.plan.venvs) expect(v.ship, v.id).to.equal(undefined);
      expect(r.report.bytesSent.artifacts).to.equal(0);
      for (const { host, root } of roots) {
        const h = await lastLine(root);
        expect(h.outcome, root).to.equal('deployed');
        expect(stepsOf(h), root).to.include('install');
        expect(stepsOf(h), root).not.to.include('receive');
        expect(stepsOf(h), root).not.to.include('pack');
        expect(await liveApp(fleet, host, root), root).to.deep.equal({ version: '1.2', script: 'relapp 1.2' });
        expect(await wheelsPushedTo(host), host.name).to.include('relapp-1.2-py3-none-any.whl');
      }
    });

    it('vdeploy cache prune --all empties the local artifact cache and says what it freed', async () => {
      const dir = join(cache, 'artifacts');
      const tars = (await readdir(dir)).filter((f) => f.endsWith('.tar')).sort();
      expect(tars.length).to.be.greaterThan(0);
      let total = 0;
      for (const t of tars) total += (await stat(join(dir, t))).size;
      // A copy to prune as text afterwards.
      const copy = await makeTempDir('vdeploy-ship-cache-copy-');
      await cp(cache, copy, { recursive: true });
      const j = JSON.parse(ok(await run(['cache', 'prune', '--all', '--json'])).stdout) as { removed: Array<{ name: string; bytes: number }>; freedBytes: number };
      expect(j.removed.map((x) => x.name).sort()).to.deep.equal(tars);
      expect(j.freedBytes).to.equal(total);
      const left = async (d: string) => (await readdir(d).catch(() => [] as string[])).filter((f) => f.endsWith('.tar') || f.endsWith('.json'));
      expect(await left(dir)).to.deep.equal([]);
      expect(await left(join(dir, 'groups'))).to.deep.equal([]);
      // As text: one line per artifact, then how many and what was freed.
      const text = ok(await project.run(['cache', 'prune', '--all'], { env: { VDEPLOY_CACHE_DIR: copy } }));
      for (const t of tars) expect(text.stdout).to.include(`removed ${t} (`);
      expect(text.stdout).to.match(new RegExp(`removed ${tars.length} artifacts?, freed \\d`));
      expect(await left(join(copy, 'artifacts'))).to.deep.equal([]);
      expect(ok(await run(['cache', 'prune', '--all'])).stdout).to.match(/nothing to remove/);
    });
  });
});
