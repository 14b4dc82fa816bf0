// deploy --yes has no barrier between hosts (issue 16): a host applies as soon as its own plan is
// ready, while a silent host (a TCP listener that accepts and never speaks SSH) is still connecting.
// The silent host is let go only once the reachable hosts' venvs have finished, so the order is the
// proof, whatever the machine's load: before the fix their applies waited for its connect to end.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir, runVdeployInPty, startVdeploy } from '../helpers/cli.js';
import { makeDeployProject, type DeployProject } from '../helpers/deploy-project.js';
import { startFleet, type Fleet } from '../helpers/fleet.js';
import { LocalConnection } from '../../src/remote/local-connection.js';

const local = new LocalConnection();

async function installedVersion(venv: string, name: string): Promise<string | undefined> {
  const r = await local.exec([join(venv, 'bin', 'python'), '-c', `import importlib.metadata as m\ntry: print(m.version(${JSON.stringify(name)}))\nexcept Exception: print("")`]);
  return r.stdout.trim() || undefined;
}

async function lastOutcome(venv: string): Promise<string | undefined> {
  const file = join(venv, '.vdeploy', 'history.jsonl');
  if (!existsSync(file)) return undefined;
  return (JSON.parse((await readFile(file, 'utf8')).trim().split('\n').at(-1)!) as { outcome: string }).outcome;
}

async function waitFor(what: () => Promise<boolean> | boolean, ms = 90_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/** A host that accepts TCP connections and never says a word; `release()` hangs up on them (and every later one). */
async function silentHost(address: string): Promise<{ port: number; release(): void; close(): Promise<void> }> {
  const sockets: net.Socket[] = [];
  let released = false;
  const server = net.createServer((socket) => (released ? socket.destroy() : sockets.push(socket)));
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    release() {
      released = true;
      sockets.forEach((s) => s.destroy());
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('vdeploy deploy --yes: no barrier between hosts (real sshd fleet)', function () {
  this.timeout(300_000);
  let fleet: Fleet;
  let wheels: string;
  before(async () => {
    fleet = await startFleet({ hosts: 2, venvsPerHost: 1 });
    wheels = await makeTempDir('vdeploy-nobarrier-wheels-');
  });
  after(async () => fleet?.stop());

  async function project(version: string, port: number): Promise<DeployProject> {
    const [h1, h2] = fleet.hosts as [Fleet['hosts'][number], Fleet['hosts'][number]];
    return makeDeployProject(fleet, {
      venvs: [{ host: h1, path: h1.venvs[0]! }, { host: 'silent', path: '/srv/silent/venv' }, { host: h2, path: h2.venvs[0]! }],
      // Long enough never to run out here: the test ends the silent host's connect itself.
      extraHosts: [{ name: 'silent', address: '127.0.0.1', port, user: fleet.user }],
      extra: { ssh: { knownHosts: fleet.knownHostsPath, identityFile: fleet.clientKeyPath, strictHostKeyChecking: 'yes', connectTimeout: 120 } },
      requirements: 'tinyapp\n',
      wheels: [await buildWheel(wheels, { name: 'tinyapp', version })],
    });
  }
  const idOf = (venv: string, host: string) => `${fleet.user}@${host}:${venv}`;

  it('plain: the reachable hosts deploy while the silent host is still connecting; exit 1', async () => {
    const silent = await silentHost('127.0.0.1');
    try {
      const p = await project('1.0', silent.port);
      const [h1, h2] = fleet.hosts as [Fleet['hosts'][number], Fleet['hosts'][number]];
      const ends = [idOf(h1.venvs[0]!, h1.name), idOf(h2.venvs[0]!, h2.name)].map((id) => `${id}: deployed`);
      const run = startVdeploy(['deploy', '--yes'], p.dir);
      const before = await waitFor(() => ends.every((e) => run.stderr().includes(e)));
      silent.release();
      const r = await run.done;
      expect(before, `the reachable venvs did not finish while the silent host was connecting:\n${r.stderr}`).to.equal(true);
      expect(r.exitCode, r.stderr + r.stdout).to.equal(1);
      const lines = r.stderr.split('\n');
      const failedAt = lines.findIndex((l) => /^silent: connect failed/.test(l));
      expect(failedAt, r.stderr).to.be.greaterThan(-1);
      for (const e of ends) {
        const at = lines.findIndex((l) => l.startsWith(e));
        expect(at, r.stderr).to.be.within(0, failedAt - 1);
      }
      // The plan (printed once planning is over) and the summary name every venv.
      expect(r.stdout).to.match(/@silent:\/srv\/silent\/venv\s+failed/);
      expect(await installedVersion(h1.venvs[0]!, 'tinyapp')).to.equal('1.0');
      expect(await installedVersion(h2.venvs[0]!, 'tinyapp')).to.equal('1.0');
      // Each part records its venvs in release_log once.
      const log = await readFile(join(p.repo, 'release_log'), 'utf8');
      for (const h of [h1, h2]) expect(log.split('\n').filter((l) => l.startsWith('install:') && l.includes(`${h.name}:${h.venvs[0]!}`) && l.includes('tinyapp-1.0'))).to.have.length(1);
    } finally {
      silent.release();
      await silent.close();
    }
  });

  it('on a terminal: one live view from connect to apply; exit 1 with the silent host', async () => {
    const silent = await silentHost('127.0.0.1');
    try {
      const p = await project('2.0', silent.port);
      const [h1, h2] = fleet.hosts as [Fleet['hosts'][number], Fleet['hosts'][number]];
      const running = runVdeployInPty(['deploy', '--yes', '--deployfile', join(p.dir, 'deployfile.ts')], { answers: [] });
      const before = await waitFor(async () => (await lastOutcome(h1.venvs[0]!)) === 'deployed' && (await lastOutcome(h2.venvs[0]!)) === 'deployed' && (await installedVersion(h2.venvs[0]!, 'tinyapp')) === '2.0' && (await installedVersion(h1.venvs[0]!, 'tinyapp')) === '2.0');
      silent.release();
      const r = await running;
      expect(before, r.output).to.equal(true);
      expect(r.exitCode, r.output).to.equal(1);
      const out = stripVTControlCharacters(r.output);
      expect(out).to.not.match(/TypeError|ReferenceError|at .*\.js:\d+/);
      expect(out).to.match(/@silent:\/srv\/silent\/venv\s+connect failed/);
      expect(out).to.match(new RegExp(`${h1.name}:${h1.venvs[0]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+deployed`));
      // The plan text and the summary follow the view.
      expect(out).to.match(/VENV\s+OUTCOME\s+CHANGES\s+TIME/);
    } finally {
      silent.release();
      await silent.close();
    }
  });
});
