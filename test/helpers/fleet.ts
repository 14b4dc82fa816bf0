/**
 * A fleet of REAL OpenSSH sshd processes on 127.0.0.2, .3, … for end-to-end tests and the benchmark.
 * Each host has its own directory (host key, sshd_config, log, venvs under <root>/srv); all share one
 * client key and one known_hosts file. Only the sshd PIDs started here are ever killed.
 *
 *   let fleet: Fleet | undefined;
 *   before(async () => { fleet = await startFleet({ hosts: 3, venvsPerHost: 1 }); });
 *   after(() => fleet?.stop());
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, writeFile, mkdir, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { CommandResult } from '../../src/remote/command-result.js';
import type { ExecOptions } from '../../src/remote/connection.js';
import { LocalConnection } from '../../src/remote/local-connection.js';
import { Semaphore } from '../../src/remote/semaphore.js';
import { quoteCommand } from '../../src/remote/shell-quote.js';

const SSHD = '/usr/sbin/sshd';
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
/** Venv creation is CPU- and IO-heavy; more than two at once only makes each slower. */
const VENV_CONCURRENCY = 2;

export interface StartFleetOptions {
  hosts: number;
  /** Venvs per host, at <root>/srv/venv1 … venvN. Default 0. */
  venvsPerHost?: number;
  /** Interpreter the venvs are made with. Default /usr/bin/python3 (Debian's). */
  python?: string;
}

export interface FleetHost {
  /** host1, host2, … */
  name: string;
  /** 127.0.0.2, 127.0.0.3, … */
  address: string;
  port: number;
  /** This host's own directory; its venvs live under <root>/srv. */
  root: string;
  venvs: string[];
  /** The host key's public line, "ssh-ed25519 AAAA… comment". */
  hostKeyPub: string;
  /** PID of the host's sshd (started with -D, so it is the process we spawned). */
  pid: number;
}

export interface Fleet {
  dir: string;
  hosts: FleetHost[];
  /** known_hosts with every host's key under `[address]:port`. */
  knownHostsPath: string;
  /** Unencrypted ed25519 key accepted by every host. */
  clientKeyPath: string;
  /** The user tests log in as: whoever runs them. */
  user: string;
  /** argv for the `ssh` binary, ending with user@address: append a command. */
  sshArgs(host: FleetHost): string[];
  /** Run argv on a host with the real `ssh` binary (independent of vdeploy's own SSH code). */
  exec(host: FleetHost, argv: string[], opts?: ExecOptions): Promise<CommandResult>;
  /** Kill exactly the sshds started here, wait for them, remove the directory. Safe to call twice. */
  stop(): Promise<void>;
}

interface RunningSshd {
  child: ChildProcess;
  exited: Promise<void>;
}

/** Fleets not yet stopped, for the emergency cleanup when the test process dies. */
const live = new Set<{ dir: string; sshds: RunningSshd[] }>();

export async function startFleet(opts: StartFleetOptions): Promise<Fleet> {
  if (!existsSync(SSHD)) {
    throw new Error(`${SSHD} not found: run the test suite with the README's test command (npm test), which installs openssh-server`);
  }
  if (opts.hosts < 1 || opts.hosts > 250) throw new Error(`startFleet: hosts must be 1..250, got ${opts.hosts}`);
  installEmergencyCleanup();
  // sshd refuses to start as root without its privilege-separation directory.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  const dir = await mkdtemp(path.join(os.tmpdir(), 'vdeploy-fleet-'));
  const state = { dir, sshds: [] as RunningSshd[] };
  live.add(state);
  const user = os.userInfo().username;
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= stopFleet(state));

  try {
    const clientKeyPath = path.join(dir, 'client_ed25519');
    await keygen(clientKeyPath, 'vdeploy-fleet-client');
    await writeFile(path.join(dir, 'authorized_keys'), await readFile(`${clientKeyPath}.pub`));

    // allSettled: every sshd must have started (or failed) before a failure makes stop() kill them.
    const started = await Promise.allSettled(Array.from({ length: opts.hosts }, (_, i) => startHost(state, i + 1)));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    const hosts = started.map((s) => (s as PromiseFulfilledResult<FleetHost>).value);
    const knownHostsPath = path.join(dir, 'known_hosts');
    await writeFile(knownHostsPath, hosts.map((h) => `[${h.address}]:${h.port} ${h.hostKeyPub}\n`).join(''));
    await createVenvs(hosts, opts.venvsPerHost ?? 0, opts.python ?? '/usr/bin/python3');

    const sshOptions = (host: FleetHost) => [
      '-F', '/dev/null',
      '-i', clientKeyPath,
      '-o', 'IdentitiesOnly=yes',
      '-o', `UserKnownHostsFile=${knownHostsPath}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'BatchMode=yes',
      '-p', String(host.port),
    ];
    const local = new LocalConnection();
    return {
      dir,
      hosts,
      knownHostsPath,
      clientKeyPath,
      user,
      sshArgs: (host) => [...sshOptions(host), `${user}@${host.address}`],
      // `--` so a command starting with '-' is never read as an ssh option.
      exec: (host, argv, execOpts) =>
        local.exec(['ssh', ...sshOptions(host), '--', `${user}@${host.address}`, quoteCommand(argv)], execOpts),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function startHost(state: { dir: string; sshds: RunningSshd[] }, n: number): Promise<FleetHost> {
  const name = `host${n}`;
  const address = `127.0.0.${n + 1}`;
  const root = path.join(state.dir, name);
  const etc = path.join(root, 'sshd');
  await mkdir(etc, { recursive: true });
  await mkdir(path.join(root, 'srv'), { recursive: true });
  const hostKey = path.join(etc, 'ssh_host_ed25519_key');
  await keygen(hostKey, `${name}-hostkey`);
  const hostKeyPub = (await readFile(`${hostKey}.pub`, 'utf8')).trim();

  // A free port can be taken between probing and sshd's bind; try a few times.
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await findFreePort(address);
    const config = path.join(etc, 'sshd_config');
    const pidFile = path.join(etc, 'sshd.pid');
    const log = path.join(etc, 'sshd.log');
    await writeFile(
      config,
      [
        `ListenAddress ${address}:${port}`,
        `HostKey ${hostKey}`,
        `PidFile ${pidFile}`,
        `AuthorizedKeysFile ${path.join(state.dir, 'authorized_keys')}`,
        'PermitRootLogin prohibit-password',
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'MaxSessions 10',
        'LogLevel VERBOSE',
        'Subsystem sftp internal-sftp',
        '',
      ].join('\n'),
    );
    const child = spawn(SSHD, ['-D', '-f', config, '-E', log], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    child.once('error', () => {}); // spawn failures surface as an early exit below
    const sshd = { child, exited };
    state.sshds.push(sshd);
    try {
      await waitForPort(address, port, exited);
      await checkPidFile(pidFile, child.pid!);
      return { name, address, port, root, venvs: [], hostKeyPub, pid: child.pid! };
    } catch (err) {
      child.kill('SIGTERM');
      const tail = await readFile(log, 'utf8').catch(() => '');
      const lines = `${tail}\n${stderr}`.trim().split('\n').slice(-8).join('\n');
      lastError = new Error(`sshd for ${name} (${address}:${port}) did not start: ${(err as Error).message}\n${lines}`);
      if (!/Address already in use/.test(lines)) break;
    }
  }
  throw lastError!;
}

// With -D the sshd we spawned is the daemon itself; its PidFile must agree, or we would kill the wrong thing.
async function checkPidFile(pidFile: string, pid: number): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const text = await readFile(pidFile, 'utf8').catch(() => '');
    if (text.trim() !== '') {
      if (Number(text.trim()) !== pid) throw new Error(`PidFile ${pidFile} says ${text.trim()}, but we started ${pid}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`sshd did not write its PidFile ${pidFile}`);
}

function findFreePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, address, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(address: string, port: number, exited: Promise<void>): Promise<void> {
  let hasExited = false;
  void exited.then(() => (hasExited = true));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (hasExited) throw new Error('sshd exited');
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: address, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port not open after ${START_TIMEOUT_MS / 1000}s`);
}

async function createVenvs(hosts: FleetHost[], perHost: number, python: string): Promise<void> {
  const limit = new Semaphore(VENV_CONCURRENCY);
  const local = new LocalConnection();
  const settled = await Promise.allSettled(
    hosts.flatMap((host) =>
      Array.from({ length: perHost }, async (_, i) => {
        const venv = path.join(host.root, 'srv', `venv${i + 1}`);
        host.venvs[i] = venv;
        await limit.run(() => local.exec([python, '-m', 'venv', venv]));
      }),
    ),
  );
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
}

function keygen(file: string, comment: string): Promise<CommandResult> {
  return new LocalConnection().exec(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
}

async function stopFleet(state: { dir: string; sshds: RunningSshd[] }): Promise<void> {
  await Promise.all(
    state.sshds.map(async ({ child, exited }) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }),
  );
  live.delete(state);
  await rm(state.dir, { recursive: true, force: true });
}

let cleanupInstalled = false;
/** If the test process exits or is signalled without stop(), still kill our sshds (by PID) and tidy up. */
function installEmergencyCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  const killAll = () => {
    for (const state of live) {
      for (const { child } of state.sshds) {
        if (child.exitCode === null && child.signalCode === null && child.pid) {
          try {
            process.kill(child.pid, 'SIGTERM');
          } catch {
            // already gone
          }
        }
      }
      rmSync(state.dir, { recursive: true, force: true });
    }
    live.clear();
  };
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      killAll();
      // If nobody else (e.g. mocha) handles this signal, restore the default and re-raise it.
      if (process.listenerCount(signal) === 1) {
        process.off(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}
