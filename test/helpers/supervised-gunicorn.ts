/**
 * A real gunicorn run the way a releases layout runs it in production: from `<root>/current/bin/...`
 * under a process supervisor — here a PRIVATE supervisord (its own config, socket, pidfile and logs
 * under `dir`; the system's supervisord, if any, is never touched). Usable from an e2e test whose
 * "hosts" are test sshds on 127.0.0.N sharing this machine's filesystem: the paths are real paths, so
 * a deployfile `reload` running on such a host can use `reloadCommand` as it is.
 *
 *   const app = await startSupervisedGunicorn({ dir, root, address: '127.0.0.2', module: 'verapp:application' });
 *   after(() => app?.stop());
 *   await app.supervisorctl(['restart', app.program]);   // the reload that loads the new release
 *
 * Only the supervisord spawned here, and gunicorn masters it started (read from gunicorn's own pid
 * files, and checked to be ours by their command line), are ever signalled.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { quoteCommand } from '../../src/remote/shell-quote.js';

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

export interface SupervisedGunicornOptions {
  /** Directory for supervisord.conf, its socket, pidfile and logs, and gunicorn's pid file (created). */
  dir: string;
  /** The app root: gunicorn runs from `<root>/current/bin/`. */
  root: string;
  /** 127.0.0.N to bind. */
  address: string;
  /** Default: a free port on `address`. */
  port?: number;
  /** WSGI target, e.g. 'verapp:application'. */
  module: string;
  /**
   * How gunicorn is started: 'script' (default) runs `<root>/current/bin/gunicorn` — the usual way, whose
   * shebang pins the release `current` pointed to at start; 'module' runs
   * `<root>/current/bin/python -m gunicorn`, whose sys.prefix stays `<root>/current` (see docs/deployfile.md).
   */
  launcher?: 'script' | 'module';
  workers?: number;
  /** Environment for gunicorn (supervisord's `environment=`). */
  env?: Record<string, string>;
  /** Program name in supervisord. Default 'app'. */
  program?: string;
}

export interface SupervisedGunicorn {
  url: string;
  address: string;
  port: number;
  program: string;
  configPath: string;
  supervisordPid: number;
  /** argv of supervisorctl for this supervisord, e.g. [...ctlArgv, 'restart', 'app']. */
  ctlArgv: string[];
  /** The recommended reload after a switch of `current`, as a shell command (for a deployfile `reload`). */
  reloadCommand: string;
  /** A reload that does NOT load the new release when started by 'script': HUP to the master. */
  hupCommand: string;
  supervisorctl(args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** PID of the gunicorn master supervisord tracks (0 when none). */
  masterPid(): Promise<number>;
  /** One GET of `path` (default '/'): its body, or undefined if no answer (refused, reset). */
  get(path?: string): Promise<string | undefined>;
  /** Polls until a GET of `path` answers `body`; throws with the last answer after `timeoutMs`. */
  waitForBody(body: string, timeoutMs?: number, path?: string): Promise<void>;
  /** Stops supervisord (which stops gunicorn), then any gunicorn master of ours still alive (an orphan of USR2). */
  stop(): Promise<void>;
}

export async function startSupervisedGunicorn(options: SupervisedGunicornOptions): Promise<SupervisedGunicorn> {
  const supervisord = which('supervisord');
  const supervisorctlBin = which('supervisorctl');
  const { dir, root, address, module } = options;
  const program = options.program ?? 'app';
  const port = options.port ?? (await freePort(address));
  await mkdir(dir, { recursive: true });
  const configPath = join(dir, 'supervisord.conf');
  const gunicornPidFile = join(dir, 'gunicorn.pid');
  const launcher = options.launcher === 'module' ? [join(root, 'current', 'bin', 'python'), '-m', 'gunicorn'] : [join(root, 'current', 'bin', 'gunicorn')];
  const gunicornArgv = [
    ...launcher,
    '--bind', `${address}:${port}`,
    '--workers', String(options.workers ?? 1),
    '--pid', gunicornPidFile,
    // gunicorn >= 24 opens a control socket at ~/.gunicorn/gunicorn.ctl by default: shared by every
    // gunicorn of this user, so two tests' gunicorns would take it from each other.
    '--no-control-socket',
    '--graceful-timeout', '5',
    module,
  ];
  await writeFile(configPath, supervisordConfig({ dir, program, gunicornArgv, env: options.env ?? {} }));

  const child = spawn(supervisord, ['--nodaemon', '--configuration', configPath], { stdio: 'ignore' });
  const supervisordPid = child.pid;
  if (supervisordPid === undefined) throw new Error(`could not start ${supervisord}`);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const ctlArgv = [supervisorctlBin, '--configuration', configPath];
  const url = `http://${address}:${port}`;
  const supervisorctl = (args: string[]) => run([...ctlArgv, ...args]);
  const masterPid = async () => Number((await supervisorctl(['pid', program])).stdout.trim()) || 0;
  const get = async (path = '/') => fetch(url + path, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text(), () => undefined);
  const waitForBody = async (body: string, timeoutMs = 60_000, path = '/') => {
    let last: string | undefined;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      last = await get(path);
      if (last === body) return;
      await sleep(100);
    }
    throw new Error(`${url}${path} did not answer ${JSON.stringify(body)} within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
  };

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Masters that may outlive supervisord: the one it tracks, and a USR2 child it never knew about.
    const masters = [gunicornPidFile, `${gunicornPidFile}.2`].map(readPid).filter((p) => p > 0);
    await terminate(child, exited);
    for (const pid of masters) if (isOurGunicorn(pid, `${address}:${port}`)) await killAndWait(pid);
  };

  try {
    await waitUntil(async () => (await supervisorctl(['status', program])).stdout.includes('RUNNING'), 'supervisord to report the program RUNNING', child);
    await waitUntil(async () => (await get()) !== undefined, `${url} to answer`, child);
  } catch (error) {
    await stop();
    const log = await readFile(join(dir, `${program}.log`), 'utf8').catch(() => '');
    throw new Error(`${(error as Error).message}\n--- ${program}.log ---\n${log.slice(-3000)}`);
  }
  return {
    url, address, port, program, configPath, supervisordPid, ctlArgv,
    reloadCommand: quoteCommand([...ctlArgv, 'restart', program]),
    hupCommand: quoteCommand([...ctlArgv, 'signal', 'HUP', program]),
    supervisorctl, masterPid, get, waitForBody, stop,
  };
}

export interface PrivateSupervisordOptions {
  /** Directory for supervisord.conf, its socket, pidfile and logs (created). */
  dir: string;
  /** Globs of program configs to include (`[include] files=`), e.g. `<root>/etc/supervisor/conf.d/*.conf`. */
  include: string[];
}

export interface PrivateSupervisord {
  configPath: string;
  pid: number;
  /** argv of supervisorctl for this supervisord. */
  ctlArgv: string[];
  supervisorctl(args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** PID of `program`'s process (0 when it is not running). */
  pidOf(program: string): Promise<number>;
  /** Stops supervisord (which stops its programs), then any of their processes still alive. */
  stop(): Promise<void>;
}

/**
 * A private supervisord with no program of its own: its programs come from the config files its
 * `[include]` globs find — the configs a deploy puts in a mock /etc (config files, issue 17), loaded
 * by that deploy's handlers (`supervisorctl reread`, `update`). Only this supervisord and the
 * programs it started (their PIDs asked from it, checked to be its children) are ever signalled.
 */
export async function startPrivateSupervisord(options: PrivateSupervisordOptions): Promise<PrivateSupervisord> {
  const supervisord = which('supervisord');
  const supervisorctlBin = which('supervisorctl');
  const { dir } = options;
  await mkdir(dir, { recursive: true });
  const configPath = join(dir, 'supervisord.conf');
  const esc = (s: string) => s.replace(/%/g, '%%');
  await writeFile(configPath, [...supervisordBase(dir), '[include]', `files = ${options.include.map(esc).join(' ')}`, ''].join('\n'));
  const child = spawn(supervisord, ['--nodaemon', '--configuration', configPath], { stdio: 'ignore' });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${supervisord}`);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ctlArgv = [supervisorctlBin, '--configuration', configPath];
  const supervisorctl = (args: string[]) => run([...ctlArgv, ...args]);
  const pidOf = async (program: string) => Number((await supervisorctl(['pid', program])).stdout.trim()) || 0;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // `pid all` prints one PID per program (0 when stopped): ask before supervisord goes.
    const out = (await supervisorctl(['pid', 'all']).catch(() => ({ stdout: '' }))).stdout;
    const programs = [...out.matchAll(/(\d+)\s*$/gm)].map((m) => Number(m[1])).filter((p) => p > 0 && parentOf(p) === pid);
    await terminate(child, exited);
    for (const p of programs) await killAndWait(p);
  };
  try {
    // supervisord answers once its socket is up; `pid` (of supervisord itself) needs nothing else.
    await waitUntil(async () => (await supervisorctl(['pid'])).stdout.trim() === String(pid), 'supervisord to answer', child);
  } catch (error) {
    await stop();
    const log = await readFile(join(dir, 'supervisord.log'), 'utf8').catch(() => '');
    throw new Error(`${(error as Error).message}\n--- supervisord.log ---\n${log.slice(-3000)}`);
  }
  return { configPath, pid, ctlArgv, supervisorctl, pidOf, stop };
}

/** The parent PID of `pid` (0 when gone), from /proc. */
function parentOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: parse after its last ')'.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

/** The sections every private supervisord has: its socket, logs and pidfile under `dir`. */
function supervisordBase(dir: string): string[] {
  const esc = (s: string) => s.replace(/%/g, '%%');
  return [
    '[unix_http_server]',
    `file=${esc(join(dir, 'supervisor.sock'))}`,
    '',
    '[supervisord]',
    `logfile=${esc(join(dir, 'supervisord.log'))}`,
    `pidfile=${esc(join(dir, 'supervisord.pid'))}`,
    `childlogdir=${esc(dir)}`,
    'nodaemon=true',
    '',
    '[rpcinterface:supervisor]',
    'supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface',
    '',
    '[supervisorctl]',
    `serverurl=unix://${esc(join(dir, 'supervisor.sock'))}`,
    '',
  ];
}

/** supervisord reads an INI file with %(name)s interpolation and shlex-splits `command`. */
function supervisordConfig(o: { dir: string; program: string; gunicornArgv: string[]; env: Record<string, string> }): string {
  const esc = (s: string) => s.replace(/%/g, '%%');
  const env = Object.entries(o.env).map(([k, v]) => `${k}="${esc(v.replace(/["\\]/g, '\\$&'))}"`).join(',');
  return [
    ...supervisordBase(o.dir),
    `[program:${o.program}]`,
    `command=${esc(quoteCommand(o.gunicornArgv))}`,
    // gunicorn puts its working directory on sys.path: keep it outside the releases.
    `directory=${esc(o.dir)}`,
    ...(env ? [`environment=${env}`] : []),
    'autostart=true',
    'autorestart=true',
    'startsecs=1',
    // gunicorn's TERM is a graceful stop (--graceful-timeout 5 above); give it time before SIGKILL.
    'stopwaitsecs=15',
    `stdout_logfile=${esc(join(o.dir, `${o.program}.log`))}`,
    'redirect_stderr=true',
    '',
  ].join('\n');
}

function which(command: string): string {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':').concat(['/usr/bin', '/usr/local/bin'])) {
    if (dir && existsSync(join(dir, command))) return join(dir, command);
  }
  throw new Error(`${command} not found: install Debian's supervisor package (apt-get install supervisor) to run this test`);
}

function run(argv: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ exitCode: code ?? 1, stdout, stderr }));
  });
}

async function waitUntil(check: () => Promise<boolean>, what: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`supervisord exited (${child.exitCode}) while waiting for ${what}`);
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out after ${START_TIMEOUT_MS} ms waiting for ${what}`);
}

/** SIGTERM makes supervisord stop its programs (TERM, then KILL after stopwaitsecs) and exit. */
async function terminate(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), STOP_TIMEOUT_MS).unref());
  if ((await Promise.race([exited, timer])) === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
}

function readPid(file: string): number {
  try {
    return Number(readFileSync(file, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

/** A pid file can be stale and the PID reused: signal only a gunicorn bound to our address. */
function isOurGunicorn(pid: number, bind: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return cmdline.some((a) => a.includes('gunicorn')) && cmdline.includes(bind);
  } catch {
    return false;
  }
}

async function killAndWait(pid: number): Promise<void> {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (alive() && Date.now() < deadline) await sleep(100);
  if (alive()) process.kill(pid, 'SIGKILL');
}

export async function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, address, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
