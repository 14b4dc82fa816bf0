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
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { chmod, mkdtemp, readFile, writeFile, mkdir, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { CommandResult } from '../../src/remote/command-result.js';
import type { ExecOptions } from '../../src/remote/connection.js';
import { LocalConnection } from '../../src/remote/local-connection.js';
import { Semaphore } from '../../src/remote/semaphore.js';
import { quoteCommand } from '../../src/remote/shell-quote.js';
import { ensureTestUsers, type TestUser } from './test-users.js';

const SSHD = '/usr/sbin/sshd';
/** Generous: under load (a 2-core machine shared by other work) 128 sshds starting take a while. */
const START_TIMEOUT_MS = 30_000;
/**
 * sshds started at once. All 128 at once (a keygen, an sshd and a port poller each) starved one
 * another past any timeout on a loaded 2-core machine; eight at a time start 128 in ~10 s.
 */
const START_CONCURRENCY = 8;
const STOP_TIMEOUT_MS = 5_000;
/** Venv creation is CPU- and IO-heavy; more than two at once only makes each slower. */
const VENV_CONCURRENCY = 2;

export interface StartFleetOptions {
  hosts: number;
  /** Venvs per host, at <root>/srv/venv1 … venvN. Default 0. */
  venvsPerHost?: number;
  /** Interpreter the venvs are made with. Default /usr/bin/python3 (Debian's). */
  python?: string;
  /**
   * Also start this many hosts on a PRIVATE network that only the fleet's bastion can reach (ProxyJump
   * tests). Default 0. See startPrivateNetwork below for how; needs root (unshare/nsenter) and `ip`.
   */
  privateHosts?: number;
  /**
   * Set up the two test users of test-users.ts (a non-root login user allowed to `sudo -n -u` the
   * venvs' owner) and let them in: the fleet's directory becomes traversable and authorized_keys
   * readable by them (sshd reads it as the user logging in). Needs root. Default false.
   */
  sudoUsers?: boolean;
  /**
   * Give each host a small disk: its sshd starts in its own mount namespace (`unshare -m`, needs root)
   * with a tmpfs of this many MiB mounted on <root>/srv, which its sessions (and so vdeploy's venvs
   * there) see and this process does not. Fill and free it through `exec`.
   */
  srvMegabytes?: number;
  /**
   * Sessions skip the login user's ~/.bashrc. The hosts share this machine's HOME, and root's .bashrc
   * here runs `pyenv init` (0.6 CPU-seconds, and a rehash lock that serializes concurrent sessions):
   * harmless for a test, but at 128 simulated hosts it is a minute of CPU on the cores vdeploy runs
   * on, which a real fleet's own servers would pay. bash reads ~/.bashrc for an sshd command only when
   * SHLVL < 2 (SSH_SOURCE_BASHRC), so the sshds set SHLVL=1 (`SetEnv`). Default false.
   */
  lightShell?: boolean;
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
  /**
   * With privateHosts: the jump host, reachable from here at `address`:`port` like any fleet host and
   * itself on the private network (its own address there is 127.0.100.1). Undefined otherwise.
   */
  bastion: FleetHost | undefined;
  /** With privateHosts: private1, private2, … at 127.0.100.2, .3, … port 22, reachable only via the bastion. */
  privateHosts: FleetHost[];
  /** The authorized_keys file every host reads (append a public key to let it in everywhere). */
  authorizedKeysPath: string;
  /** known_hosts with every host's key under `[address]:port` (private hosts: `address`, port 22). */
  knownHostsPath: string;
  /** Unencrypted ed25519 key accepted by every host. */
  clientKeyPath: string;
  /** The user tests log in as: whoever runs them. */
  user: string;
  /** With sudoUsers: the login user (also accepted by every host) and the venvs' owner it may sudo to. */
  sudoUsers: { deployer: TestUser; app: TestUser } | undefined;
  /** argv for the `ssh` binary, ending with user@address: append a command (private hosts go through the bastion). */
  sshArgs(host: FleetHost): string[];
  /** Run argv on a host with the real `ssh` binary (independent of vdeploy's own SSH code). */
  exec(host: FleetHost, argv: string[], opts?: ExecOptions): Promise<CommandResult>;
  /** Kill exactly the sshds started here, wait for them, remove the directory. Safe to call twice. */
  stop(): Promise<void>;
  /**
   * Crash a host: SIGKILL its sshd and every session process it forked (they are ours: children of
   * the sshd we started), as a machine or network dying mid-transfer would. `restartHost` brings it
   * back on the same address, port and host key.
   */
  crashHost(host: FleetHost): Promise<void>;
  restartHost(host: FleetHost): Promise<void>;
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
  sweepPyenvLockWhileLive();
  const user = os.userInfo().username;
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= stopFleet(state));

  try {
    const clientKeyPath = path.join(dir, 'client_ed25519');
    await keygen(clientKeyPath, 'vdeploy-fleet-client');
    await writeFile(path.join(dir, 'authorized_keys'), await readFile(`${clientKeyPath}.pub`));
    const sudoUsers = opts.sudoUsers ? ensureTestUsers() : undefined;
    if (sudoUsers) {
      await chmod(dir, 0o755);
      await chmod(path.join(dir, 'authorized_keys'), 0o644);
    }

    // allSettled: every sshd must have started (or failed) before a failure makes stop() kill them.
    const starting = new Semaphore(START_CONCURRENCY);
    const started = await Promise.allSettled(Array.from({ length: opts.hosts }, (_, i) => starting.run(() => startHost(state, i + 1, opts.srvMegabytes, opts.lightShell))));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    const hosts = started.map((s) => (s as PromiseFulfilledResult<FleetHost>).value);
    const privateNet = opts.privateHosts ? await startPrivateNetwork(state, `127.0.0.${opts.hosts + 2}`, opts.privateHosts) : undefined;
    const privateHosts = privateNet?.hosts ?? [];
    const knownHostsPath = path.join(dir, 'known_hosts');
    const everyHost = [...hosts, ...(privateNet ? [privateNet.bastion] : []), ...privateHosts];
    await writeFile(
      knownHostsPath,
      everyHost.map((h) => `${h.port === 22 ? h.address : `[${h.address}]:${h.port}`} ${h.hostKeyPub}\n`).join(''),
    );
    await createVenvs([...hosts, ...privateHosts], opts.venvsPerHost ?? 0, opts.python ?? '/usr/bin/python3');

    const baseOptions = [
      '-F', '/dev/null',
      '-i', clientKeyPath,
      '-o', 'IdentitiesOnly=yes',
      '-o', `UserKnownHostsFile=${knownHostsPath}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'BatchMode=yes',
    ];
    const sshOptions = (host: FleetHost) => [
      ...baseOptions,
      // A private host through the bastion, with the same options for the jump (ProxyJump would not pass -i).
      ...(privateHosts.includes(host)
        ? ['-o', `ProxyCommand=${quoteCommand(['ssh', ...baseOptions, '-p', String(privateNet!.bastion.port), '-W', '%h:%p', `${user}@${privateNet!.bastion.address}`])}`]
        : []),
      '-p', String(host.port),
    ];
    const local = new LocalConnection();
    return {
      dir,
      hosts,
      bastion: privateNet?.bastion,
      privateHosts,
      authorizedKeysPath: path.join(dir, 'authorized_keys'),
      knownHostsPath,
      clientKeyPath,
      user,
      sudoUsers,
      sshArgs: (host) => [...sshOptions(host), `${user}@${host.address}`],
      // `--` so a command starting with '-' is never read as an ssh option.
      exec: (host, argv, execOpts) =>
        local.exec(['ssh', ...sshOptions(host), '--', `${user}@${host.address}`, quoteCommand(argv)], execOpts),
      stop,
      crashHost: async (host) => {
        const victims = [...descendantsOf(host.pid), host.pid];
        const rehashing = victims.some(isPyenvRehash);
        for (const pid of victims) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
        const sshd = state.sshds.find((s) => s.child.pid === host.pid);
        await sshd?.exited;
        if (rehashing) removeStalePyenvLock();
      },
      restartHost: async (host) => {
        const etc = path.join(host.root, 'sshd');
        const config = path.join(etc, 'sshd_config');
        const child = spawn(SSHD, ['-D', '-f', config, '-E', path.join(etc, 'sshd.log')], { stdio: 'ignore' });
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.once('error', () => {});
        state.sshds.push({ child, exited });
        await waitForPort(host.address, host.port, exited);
        host.pid = child.pid!;
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function startHost(state: { dir: string; sshds: RunningSshd[] }, n: number, srvMegabytes?: number, lightShell?: boolean): Promise<FleetHost> {
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
        ...(lightShell ? ['SetEnv SHLVL=1'] : []),
        '',
      ].join('\n'),
    );
    const sshdArgv = [SSHD, '-D', '-f', config, '-E', log];
    // unshare and sh exec (no fork) into sshd: the PID we spawn is still the daemon's.
    const argv = srvMegabytes ? ['/usr/bin/unshare', '-m', '--', 'sh', '-c', `mount -t tmpfs -o size=${srvMegabytes}m vdeploy-srv "$0" && exec "$@"`, path.join(root, 'srv'), ...sshdArgv] : sshdArgv;
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
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

/**
 * A private network the test machine cannot reach, and a bastion on it that it can: all on one kernel,
 * so the isolation is a real network namespace, not a pretence.
 *
 * - The bastion's sshd runs in a new network namespace (`unshare --net`), on 127.0.100.1:22 there.
 * - The private hosts' sshds join that namespace (`nsenter --net`), on 127.0.100.2, .3, … port 22.
 *   From the test's namespace nothing listens on 127.0.100.x: a direct connection is refused.
 * - The bastion is published on `publicAddress` like a host behind a router's port forward: this
 *   process opens the listening socket here and hands it (Node IPC) to a small forwarder running in the
 *   private namespace, which connects each accepted connection to the bastion's sshd there.
 * So an SSH client reaches the bastion, and the bastion's sshd (direct-tcpip, what ProxyJump uses)
 * reaches the private hosts, exactly as with a real jump host.
 */
async function startPrivateNetwork(
  state: { dir: string; sshds: RunningSshd[] },
  publicAddress: string,
  count: number,
): Promise<{ bastion: FleetHost; hosts: FleetHost[] }> {
  for (const tool of ['/usr/bin/unshare', '/usr/bin/nsenter']) {
    if (!existsSync(tool)) throw new Error(`privateHosts needs ${tool} (util-linux)`);
  }
  const namespaceOf = (pid: number) => `--net=/proc/${pid}/ns/net`;
  const bastion = await startNamespacedHost(state, 'bastion', '127.0.100.1', (sshd) => [
    '/usr/bin/unshare', '--net', '--', 'sh', '-c', `ip link set lo up && exec ${quoteCommand(sshd)}`,
  ]);
  const hosts = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      startNamespacedHost(state, `private${i + 1}`, `127.0.100.${i + 2}`, (sshd) => ['/usr/bin/nsenter', namespaceOf(bastion.pid), '--', ...sshd]),
    ),
  );

  const forwarder = path.join(state.dir, 'forwarder.mjs');
  await writeFile(
    forwarder,
    [
      "import net from 'node:net';",
      "process.on('message', (message, server) => {",
      "  if (message !== 'listen') return;",
      '  server.on(\'connection\', (outside) => {',
      `    const inside = net.connect({ host: '127.0.100.1', port: 22 });`,
      '    outside.pipe(inside).pipe(outside);',
      "    inside.on('error', () => outside.destroy());",
      "    outside.on('error', () => inside.destroy());",
      '  });',
      "  process.send('ready');",
      '});',
      "process.on('disconnect', () => {});",
      '',
    ].join('\n'),
  );
  const server = net.createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, publicAddress, resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  const child = spawn('/usr/bin/nsenter', [namespaceOf(bastion.pid), '--', process.execPath, forwarder], {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', () => {});
  state.sshds.push({ child, exited });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the bastion forwarder did not start')), START_TIMEOUT_MS);
      child.once('message', () => {
        clearTimeout(timer);
        resolve();
      });
      void exited.then(() => reject(new Error('the bastion forwarder exited')));
      child.send('listen', server);
    });
  } finally {
    // The forwarder holds its own copy of the listening socket now.
    server.close();
  }
  child.disconnect();
  return { bastion: { ...bastion, address: publicAddress, port }, hosts };
}

/** An sshd on port 22 of `address` inside the private namespace; `wrap` says how to get there. */
async function startNamespacedHost(
  state: { dir: string; sshds: RunningSshd[] },
  name: string,
  address: string,
  wrap: (sshdArgv: string[]) => string[],
): Promise<FleetHost> {
  const root = path.join(state.dir, name);
  const etc = path.join(root, 'sshd');
  await mkdir(etc, { recursive: true });
  await mkdir(path.join(root, 'srv'), { recursive: true });
  const hostKey = path.join(etc, 'ssh_host_ed25519_key');
  await keygen(hostKey, `${name}-hostkey`);
  const hostKeyPub = (await readFile(`${hostKey}.pub`, 'utf8')).trim();
  const config = path.join(etc, 'sshd_config');
  const pidFile = path.join(etc, 'sshd.pid');
  const log = path.join(etc, 'sshd.log');
  await writeFile(config, sshdConfigLines(state.dir, `${address}:22`, hostKey, pidFile).join('\n'));
  const argv = wrap([SSHD, '-D', '-f', config, '-E', log]);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', () => {});
  state.sshds.push({ child, exited });
  // Not reachable from here: readiness comes from sshd's own log line.
  const deadline = Date.now() + START_TIMEOUT_MS;
  let hasExited = false;
  void exited.then(() => (hasExited = true));
  while (!(await readFile(log, 'utf8').catch(() => '')).includes(`Server listening on ${address} port 22`)) {
    if (hasExited || Date.now() > deadline) {
      const tail = await readFile(log, 'utf8').catch(() => '');
      throw new Error(`sshd for ${name} (${address}:22, private network) did not start: ${`${tail}\n${stderr}`.trim().split('\n').slice(-8).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  // unshare and nsenter exec (no fork) into sh and sshd: the PID we spawned is the daemon's.
  await checkPidFile(pidFile, child.pid!);
  return { name, address, port: 22, root, venvs: [], hostKeyPub, pid: child.pid! };
}

function sshdConfigLines(dir: string, listen: string, hostKey: string, pidFile: string): string[] {
  return [
    `ListenAddress ${listen}`,
    `HostKey ${hostKey}`,
    `PidFile ${pidFile}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    'PermitRootLogin prohibit-password',
    'StrictModes no',
    'UsePAM no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'MaxSessions 10',
    'LogLevel VERBOSE',
    'Subsystem sftp internal-sftp',
    '',
  ];
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

/**
 * The fleet's hosts share this machine's HOME, and on these machines root's .bashrc runs `pyenv
 * rehash` in every SSH session, holding ~/.pyenv/shims/.pyenv-shim as a lock while it works. A
 * session killed inside it (crashHost) leaves the lock behind, and every later session on every host
 * then waits 60 s for it: one crashed simulated host must not slow the whole machine down.
 */
const PYENV_LOCK = path.join(os.homedir(), '.pyenv', 'shims', '.pyenv-shim');

function isPyenvRehash(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('pyenv-rehash');
  } catch {
    return false;
  }
}

/**
 * A rehash holds the lock for well under a second; one older than this was left by a session killed
 * inside it — not only by crashHost: a vdeploy killed or Ctrl-C'd twice mid-session, or a practice
 * fleet's Ctrl-C, closes connections whose shells may be inside their rehash. The waiting rehashes
 * of later sessions then each sit out their 60 s, so "is any rehash running" cannot tell a live
 * holder from a dead one: the lock's age can.
 */
const STALE_PYENV_LOCK_MS = 15_000;
let lockSweeper: NodeJS.Timeout | undefined;

/** While any fleet lives, remove a stale rehash lock every 2 s (stops by itself after the last fleet). */
function sweepPyenvLockWhileLive(): void {
  if (lockSweeper) return;
  lockSweeper = setInterval(() => {
    if (live.size === 0) {
      clearInterval(lockSweeper);
      lockSweeper = undefined;
      return;
    }
    try {
      if (Date.now() - statSync(PYENV_LOCK).mtimeMs > STALE_PYENV_LOCK_MS) rmSync(PYENV_LOCK, { force: true });
    } catch {
      // No lock: nothing to do.
    }
  }, 2_000);
  // The sweep must never keep a test process alive.
  lockSweeper.unref();
}

/** Only when no rehash is running any more: a live one holds the lock rightly. */
function removeStalePyenvLock(): void {
  if (!existsSync(PYENV_LOCK)) return;
  const running = readdirSync('/proc').some((entry) => /^\d+$/.test(entry) && isPyenvRehash(Number(entry)));
  if (!running) rmSync(PYENV_LOCK, { force: true });
}

/** PIDs whose parent chain leads to `pid` (read from /proc): the session processes an sshd forked. */
export function descendantsOf(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name (field 2) may contain spaces and parentheses: parse after its last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(entry), ppid);
    } catch {
      /* exited meanwhile */
    }
  }
  const found: number[] = [];
  const walk = (p: number) => {
    for (const [child, parent] of parents) {
      if (parent === p) {
        found.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return found;
}
