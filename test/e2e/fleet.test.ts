/**
 * The SSH Connection against REAL OpenSSH sshd processes (test/helpers/fleet.ts): strict host key
 * checking, exec semantics, stdin/env, SFTP uploads, the session limit, timeouts, and connect failures.
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ConfigError, ConnectError, InterruptedError, RemoteCommandError, VdeployError } from '../../src/errors.js';
import type { Connection } from '../../src/remote/connection.js';
import { loadKnownHosts } from '../../src/remote/known-hosts.js';
import { connectSsh, type SshConnectOptions } from '../../src/remote/ssh-connection.js';
import { describeConnectFailure } from '../../src/remote/ssh-connect-errors.js';
import { runChannel, wrapKillable } from '../../src/remote/ssh-exec.js';
import { EventEmitter } from 'node:events';
import type { ClientChannel } from 'ssh2';
import { startFleet, type Fleet, type FleetHost } from '../helpers/fleet.js';
import { rejection } from '../helpers/rejection.js';

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

describe('SSH connections to a real sshd fleet', function () {
  this.timeout(120_000);
  let fleet: Fleet | undefined;
  let scratch: string;
  const open: Connection[] = [];

  const hostAt = (i: number): FleetHost => fleet!.hosts[i]!;
  const connect = async (host: FleetHost, overrides: Partial<SshConnectOptions> = {}): Promise<Connection> => {
    const conn = await connectSsh({
      host: host.name,
      address: host.address,
      port: host.port,
      username: fleet!.user,
      identityFiles: [fleet!.clientKeyPath],
      knownHosts: loadKnownHosts([fleet!.knownHostsPath]),
      strictHostKeyChecking: 'yes',
      ...overrides,
    });
    open.push(conn);
    return conn;
  };

  before(async () => {
    fleet = await startFleet({ hosts: 3, venvsPerHost: 1 });
    scratch = mkdtempSync(path.join(os.tmpdir(), 'vdeploy-e2e-ssh-'));
  });
  after(async () => {
    await Promise.all(open.map((c) => c.close()));
    await fleet?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  describe('the fleet helper', () => {
    it('runs one sshd per host on 127.0.0.2, .3, .4 with a venv each', async () => {
      expect(fleet!.hosts.map((h) => h.address)).to.deep.equal(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
      for (const host of fleet!.hosts) {
        expect(pidAlive(host.pid), host.name).to.equal(true);
        expect(host.venvs).to.deep.equal([path.join(host.root, 'srv', 'venv1')]);
        expect(host.hostKeyPub).to.match(/^ssh-ed25519 /);
      }
    });

    it('answers the real ssh client (fleet.exec / sshArgs) with strict host key checking', async () => {
      const host = hostAt(1);
      const result = await fleet!.exec(host, ['sh', '-c', 'echo "$0"; test -x "$1/bin/python" && echo venv-ok', 'a b', host.venvs[0]!]);
      expect(result.stdout).to.equal('a b\nvenv-ok\n');
      const args = fleet!.sshArgs(host);
      expect(args.at(-1)).to.equal(`${fleet!.user}@${host.address}`);
      expect(args).to.include('StrictHostKeyChecking=yes');
    });
  });

  describe('exec', () => {
    it('runs argv on every host with strict host key checking', async () => {
      for (const host of fleet!.hosts) {
        const conn = await connect(host);
        expect(conn.target).to.equal(`${fleet!.user}@${host.address}:${host.port}`);
        const result = await conn.exec(['sh', '-c', 'echo $0; id -un', 'hello world']);
        expect(result).to.include({ exitCode: 0, signal: null, stdout: `hello world\n${fleet!.user}\n`, stderr: '' });
        expect(result.ms).to.be.a('number');
      }
    });

    it('rejects a non-zero exit with RemoteCommandError carrying the result; nothrow resolves', async () => {
      const conn = await connect(hostAt(0));
      const err = (await rejection(conn.exec(['sh', '-c', 'echo out; echo boom >&2; exit 3']))) as RemoteCommandError;
      expect(err).to.be.instanceOf(RemoteCommandError);
      expect(err.result).to.include({ exitCode: 3, signal: null, stdout: 'out\n', stderr: 'boom\n' });
      expect(err.message).to.equal("`sh -c 'echo out; echo boom >&2; exit 3'` exited with 3: boom");
      expect((await conn.exec(['sh', '-c', 'exit 5'], { nothrow: true })).exitCode).to.equal(5);
      expect((await conn.exec(['/nonexistent/program'], { nothrow: true })).exitCode).to.equal(127);
    });

    it('reports a remote death by signal', async () => {
      const conn = await connect(hostAt(0));
      const err = (await rejection(conn.exec(['sh', '-c', 'kill -KILL $$']))) as RemoteCommandError;
      expect(err.result).to.include({ exitCode: null, signal: 'SIGKILL' });
    });

    it('passes stdin (string, Buffer, 2 MiB) and closes it', async () => {
      const conn = await connect(hostAt(1));
      expect((await conn.exec(['cat'], { stdin: 'line 1\nline 2\n' })).stdout).to.equal('line 1\nline 2\n');
      expect((await conn.exec(['cat'], { stdin: Buffer.from('ünï ✓') })).stdout).to.equal('ünï ✓');
      expect((await conn.exec(['cat'])).stdout).to.equal('');
      const big = randomBytes(2 << 20);
      const result = await conn.exec(['sha256sum'], { stdin: big });
      expect(result.stdout.split(' ')[0]).to.equal(sha256(big));
    });

    it('passes env as quoted env NAME=value, arguments verbatim', async () => {
      const conn = await connect(hostAt(1));
      const value = `it's "quoted" $(not run) \`nor this\`\nsecond line`;
      const result = await conn.exec(['sh', '-c', 'printf "%s|%s" "$VDEPLOY_X" "$1"', 'sh', '$HOME;*'], { env: { VDEPLOY_X: value } });
      expect(result.stdout).to.equal(`${value}|$HOME;*`);
    });

    /**
     * Shell text for the commands below: wait (5 s at most) until a second command has started. A login
     * shell costs ~150 ms here (root's .bashrc runs pyenv init); on a loaded machine the first command
     * could otherwise be done before the second one's shell is up, and the peak would read 1 although
     * two sessions were open at once. Running one at a time still shows: the wait runs out, peak 1.
     */
    const AWAIT_SECOND = 'i=0; while [ "$(grep -c + "$1")" -lt 2 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done';

    it('queues 20 parallel execs on one connection under maxSessions, and all succeed', async () => {
      const conn = await connect(hostAt(2));
      const log = path.join(hostAt(2).root, 'concurrency.log');
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          conn.exec(['sh', '-c', `echo + >> "$1"; ${AWAIT_SECOND}; sleep 0.3; echo - >> "$1"; echo "$0"`, String(i), log]),
        ),
      );
      expect(results.map((r) => r.stdout)).to.deep.equal(Array.from({ length: 20 }, (_, i) => `${i}\n`));
      // The log's +/- lines give how many commands ran at once on the host.
      let running = 0;
      let peak = 0;
      for (const mark of readFileSync(log, 'utf8').trim().split('\n')) {
        running += mark === '+' ? 1 : -1;
        peak = Math.max(peak, running);
      }
      expect(peak).to.be.at.most(8).and.at.least(2);
    });

    it('honours a smaller maxSessions', async () => {
      const conn = await connect(hostAt(2), { maxSessions: 2 });
      const log = path.join(hostAt(2).root, 'concurrency2.log');
      await Promise.all(
        Array.from({ length: 6 }, () => conn.exec(['sh', '-c', `echo + >> "$1"; ${AWAIT_SECOND}; sleep 0.2; echo - >> "$1"`, 'sh', log])),
      );
      let running = 0;
      let peak = 0;
      for (const mark of readFileSync(log, 'utf8').trim().split('\n')) {
        running += mark === '+' ? 1 : -1;
        peak = Math.max(peak, running);
      }
      expect(peak).to.equal(2);
    });

    it('refuses a maxSessions below 2 (SFTP keeps one slot) with a ConfigError', async () => {
      const err = await rejection(connect(hostAt(2), { maxSessions: 1 }));
      expect(err).to.be.instanceOf(ConfigError);
      expect(err.message).to.include('maxSessions');
    });

    it('kills a command that times out (really, on the host) and rejects even with nothrow', async () => {
      const conn = await connect(hostAt(0));
      const started = Date.now();
      const err = (await rejection(
        conn.exec(['sh', '-c', 'echo $$; exec sleep 60'], { timeoutMs: 5000, nothrow: true }),
      )) as RemoteCommandError;
      // 5 s, not less: the command must have printed its PID before the timeout, and each session's
      // login shell (root's .bashrc here runs `pyenv init`) takes seconds on a loaded machine; the
      // kill runs in a second such session. Far below the command's 60 s all the same.
      expect(Date.now() - started).to.be.below(30_000);
      expect(err).to.be.instanceOf(RemoteCommandError);
      expect(err.message).to.equal("`sh -c 'echo $$; exec sleep 60'` timed out after 5s");
      expect(err.result.stderr).to.equal(''); // the PID announcement is not the command's output
      const pid = Number(err.result.stdout.trim());
      expect(pid).to.be.above(1);
      const alive = await fleet!.exec(hostAt(0), ['kill', '-0', String(pid)], { nothrow: true });
      expect(alive.exitCode, 'the timed-out process is gone').to.not.equal(0);
      // The connection is still fine afterwards.
      expect((await conn.exec(['echo', 'still here'])).stdout).to.equal('still here\n');
    });

    it('kills a command on abort, rejecting with InterruptedError', async () => {
      const conn = await connect(hostAt(0));
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 300);
      const started = Date.now();
      const err = await rejection(conn.exec(['sleep', '60'], { signal: controller.signal }));
      expect(err).to.be.instanceOf(InterruptedError);
      expect(Date.now() - started).to.be.below(20_000); // the command sleeps 60 s; see the timeout case
    });

    it('a command with a timeout that finishes in time is unaffected by the wrapper', async () => {
      const conn = await connect(hostAt(0));
      const result = await conn.exec(['sh', '-c', 'echo out; echo err >&2'], { timeoutMs: 10_000 });
      expect(result).to.include({ exitCode: 0, stdout: 'out\n', stderr: 'err\n' });
    });
  });

  describe('put', () => {
    it('uploads over SFTP with the given mode; sha256sum on the host matches', async () => {
      const host = hostAt(1);
      const conn = await connect(host);
      const local = path.join(scratch, 'payload.bin');
      const data = randomBytes(3 * 1024 * 1024 + 17);
      writeFileSync(local, data);
      const remote = path.join(host.root, 'payload.bin');
      await conn.put(local, remote, { mode: 0o640 });
      const sum = await fleet!.exec(host, ['sha256sum', remote]);
      expect(sum.stdout.split(' ')[0]).to.equal(sha256(data));
      expect((await conn.exec(['stat', '-c', '%a', remote])).stdout).to.equal('640\n');

      // Uploading again replaces (truncates) the file, reusing the SFTP session, in parallel.
      const small = path.join(scratch, 'small.txt');
      writeFileSync(small, 'small\n');
      await Promise.all([conn.put(small, remote, { mode: 0o755 }), conn.put(small, `${remote}.2`)]);
      expect((await conn.exec(['cat', remote])).stdout).to.equal('small\n');
      expect((await conn.exec(['stat', '-c', '%a', remote])).stdout).to.equal('755\n');
    });

    it('fails with a VdeployError naming the target when the remote directory is missing', async () => {
      const host = hostAt(1);
      const conn = await connect(host);
      const local = path.join(scratch, 'small2.txt');
      writeFileSync(local, 'x');
      const err = await rejection(conn.put(local, path.join(host.root, 'no', 'such', 'file')));
      expect(err).to.be.instanceOf(VdeployError);
      expect(err.message).to.include(`${conn.target}:${path.join(host.root, 'no', 'such', 'file')}`);
    });
  });

  describe('refusing hosts', () => {
    const acceptedLogins = (host: FleetHost) =>
      (readFileSync(path.join(host.root, 'sshd', 'sshd.log'), 'utf8').match(/Accepted publickey/g) ?? []).length;

    it("refuses a host whose key differs from known_hosts ('changed'), before authenticating", async () => {
      const [h1, h2] = [hostAt(0), hostAt(1)];
      const kh = path.join(scratch, 'known_hosts_changed');
      writeFileSync(kh, `# another host's key under this host's name\n[${h1.address}]:${h1.port} ${h2.hostKeyPub}\n`);
      const before = acceptedLogins(h1);
      const err = (await rejection(connect(h1, { knownHosts: loadKnownHosts([kh]) }))) as ConnectError;
      expect(err).to.be.instanceOf(ConnectError);
      expect(err.host).to.equal(h1.name);
      expect(err.message).to.include('CHANGED').and.include(`${kh}:2`);
      const h1Fingerprint = execFileSync('ssh-keygen', ['-lf', '-'], { input: h1.hostKeyPub, encoding: 'utf8' }).split(' ')[1]!;
      const h2Fingerprint = execFileSync('ssh-keygen', ['-lf', '-'], { input: h2.hostKeyPub, encoding: 'utf8' }).split(' ')[1]!;
      expect(err.message).to.include(h1Fingerprint).and.include(h2Fingerprint);
      expect(acceptedLogins(h1)).to.equal(before);
    });

    it("refuses a host missing from known_hosts ('unknown') with the fingerprint and the keyscan command", async () => {
      const h1 = hostAt(0);
      const kh = path.join(scratch, 'known_hosts_empty');
      writeFileSync(kh, '');
      const before = acceptedLogins(h1);
      const err = (await rejection(connect(h1, { knownHosts: loadKnownHosts([kh]) }))) as ConnectError;
      expect(err).to.be.instanceOf(ConnectError);
      expect(err.message).to.include('not in known_hosts');
      const fingerprint = execFileSync('ssh-keygen', ['-lf', '-'], { input: h1.hostKeyPub, encoding: 'utf8' }).split(' ')[1]!;
      expect(err.message).to.include(fingerprint);
      expect(err.hint).to.include(`ssh-keyscan -p ${h1.port} ${h1.address} >> ${kh}`);
      expect(acceptedLogins(h1)).to.equal(before);
    });

    it("connects to an unknown host with strictHostKeyChecking 'no'", async () => {
      const conn = await connect(hostAt(0), { knownHosts: loadKnownHosts([]), strictHostKeyChecking: 'no' });
      expect((await conn.exec(['true'])).exitCode).to.equal(0);
    });

    it('accepts a key listed under the host name instead of the address', async () => {
      const host = hostAt(2);
      const kh = path.join(scratch, 'known_hosts_by_name');
      writeFileSync(kh, `[${host.name}]:${host.port} ${host.hostKeyPub}\n`);
      const conn = await connect(host, { knownHosts: loadKnownHosts([kh]) });
      expect((await conn.exec(['true'])).exitCode).to.equal(0);
    });

    it('fails fast with a ConnectError when nothing listens on the port', async () => {
      const host = hostAt(0);
      const port = await new Promise<number>((resolve) => {
        const server = net.createServer().listen(0, host.address, () => {
          const { port: p } = server.address() as net.AddressInfo;
          server.close(() => resolve(p));
        });
      });
      const started = Date.now();
      const err = (await rejection(connect({ ...host, port }))) as ConnectError;
      expect(Date.now() - started).to.be.below(2000);
      expect(err).to.be.instanceOf(ConnectError);
      expect(err.message).to.include('connection refused').and.include(`${host.address}:${port}`);
      expect(err.hint).to.be.a('string');
    });

    it('gives up on a port that accepts but never speaks SSH after readyTimeoutMs', async () => {
      const host = hostAt(0);
      const sockets: net.Socket[] = [];
      const silent = net.createServer((socket) => sockets.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, host.address, resolve));
      try {
        const { port } = silent.address() as net.AddressInfo;
        const started = Date.now();
        const err = (await rejection(connect({ ...host, port }, { readyTimeoutMs: 700 }))) as ConnectError;
        expect(Date.now() - started).to.be.within(600, 3000);
        expect(err).to.be.instanceOf(ConnectError);
        expect(err.message).to.include('no SSH handshake within 0.7s');
      } finally {
        sockets.forEach((s) => s.destroy());
        await new Promise((resolve) => silent.close(resolve));
      }
    });

    it('reports a key the host does not accept as an authentication refusal', async () => {
      const stranger = path.join(scratch, 'stranger_ed25519');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
      const err = (await rejection(connect(hostAt(0), { identityFiles: [stranger] }))) as ConnectError;
      expect(err).to.be.instanceOf(ConnectError);
      expect(err.message).to.include('refused with every key offered').and.include(stranger);
      expect(err.hint).to.include('authorized_keys');
    });

    it('refuses an encrypted key without a passphrase and a missing key with clear ConnectErrors, before connecting', async () => {
      const locked = path.join(scratch, 'locked_ed25519');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret', '-f', locked]);
      const encrypted = (await rejection(connect(hostAt(0), { identityFiles: [locked] }))) as ConnectError;
      expect(encrypted).to.be.instanceOf(ConnectError);
      expect(encrypted.message).to.equal(`encrypted key ${locked} needs a passphrase and none was given`);
      expect(encrypted.hint).to.include('VDEPLOY_SSH_PASSPHRASE').and.include(`ssh-add ${locked}`);
      const missing = path.join(scratch, 'no_such_key');
      const none = (await rejection(connect(hostAt(0), { identityFiles: [missing] }))) as ConnectError;
      expect(none.message).to.include('no usable SSH key').and.include(missing);
    });
  });

  describe('close', () => {
    it('is idempotent, and the connection refuses work afterwards', async () => {
      const conn = await connect(hostAt(2));
      await conn.close();
      await conn.close();
      expect(await rejection(conn.exec(['true']))).to.be.instanceOf(VdeployError);
    });
  });

  describe('stop', () => {
    it('kills exactly the sshds it started and removes its directory; twice is fine', async () => {
      await Promise.all(open.splice(0).map((c) => c.close()));
      const pids = fleet!.hosts.map((h) => h.pid);
      const dir = fleet!.dir;
      await fleet!.stop();
      expect(pids.filter(pidAlive)).to.deep.equal([]);
      expect(existsSync(dir)).to.equal(false);
      await fleet!.stop();
    });
  });
});

describe('describeConnectFailure', () => {
  const ctx = { host: 'web1', address: '10.0.0.5', port: 2222, username: 'deploy', readyTimeoutMs: 15000, offered: ['/k/id'] };
  const cases: Array<[string, Error & { code?: string; level?: string }, RegExp]> = [
    ['refused', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), /connection refused/],
    ['TCP timeout', Object.assign(new Error('x'), { code: 'ETIMEDOUT' }), /connection timed out/],
    ['unreachable', Object.assign(new Error('x'), { code: 'EHOSTUNREACH' }), /host unreachable/],
    ['unresolvable', Object.assign(new Error('x'), { code: 'ENOTFOUND' }), /cannot resolve 10\.0\.0\.5/],
    ['handshake timeout', Object.assign(new Error('Timed out while waiting for handshake'), { level: 'client-timeout' }), /no SSH handshake within 15s/],
    ['auth', Object.assign(new Error('All configured authentication methods failed'), { level: 'client-authentication' }), /deploy was refused with every key offered \(\/k\/id\)/],
    ['handshake', Object.assign(new Error('no matching host key format'), { level: 'handshake' }), /SSH handshake failed: no matching host key format/],
    ['other', new Error('something odd'), /something odd/],
  ];
  for (const [what, err, pattern] of cases) {
    it(`${what}: one line naming the host, with a hint`, () => {
      const result = describeConnectFailure(err, ctx);
      expect(result).to.be.instanceOf(ConnectError);
      expect(result.host).to.equal('web1');
      expect(result.message).to.match(/^cannot connect to web1 \(deploy@10\.0\.0\.5:2222\): /);
      expect(result.message).to.match(pattern);
      expect(result.message).to.not.include('\n');
      expect(result.hint).to.be.a('string').and.not.equal('');
    });
  }
});

describe('runChannel (with a fake channel)', () => {
  function fakeChannel() {
    const channel = Object.assign(new EventEmitter(), {
      stderr: new EventEmitter(),
      stdin: undefined as string | Buffer | undefined,
      end(data: string | Buffer) {
        channel.stdin = data;
      },
      close() {
        setImmediate(() => channel.emit('close'));
      },
    });
    return channel;
  }
  const base = { killable: true, kill: () => {}, lostError: () => undefined };

  it('strips the PID line even after rc-file noise and across chunk boundaries', async () => {
    const channel = fakeChannel();
    const done = runChannel(channel as unknown as ClientChannel, 'cmd', { ...base, stdin: 'in' });
    channel.stderr.emit('data', Buffer.from('warning from .bashrc\nvdeploy-p'));
    channel.stderr.emit('data', Buffer.from('id 4242\nreal stderr\n'));
    channel.emit('data', Buffer.from('out'));
    channel.emit('exit', 0);
    channel.emit('close');
    const result = await done;
    expect(result).to.include({ exitCode: 0, stdout: 'out', stderr: 'warning from .bashrc\nreal stderr\n' });
    expect(channel.stdin).to.equal('in');
  });

  it('kills by PID on timeout, even when the PID arrives after the deadline', async () => {
    const channel = fakeChannel();
    const killed: number[] = [];
    const done = runChannel(channel as unknown as ClientChannel, 'cmd', { ...base, timeoutMs: 20, kill: (pid) => killed.push(pid) });
    await new Promise((r) => setTimeout(r, 40));
    expect(killed).to.deep.equal([]);
    channel.stderr.emit('data', Buffer.from('vdeploy-pid 77\n'));
    expect(killed).to.deep.equal([77]);
    channel.emit('exit', null, 'SIGKILL');
    channel.emit('close');
    const err = (await rejection(done)) as RemoteCommandError;
    expect(err.message).to.equal('`cmd` timed out after 20ms');
    expect(err.result.signal).to.equal('SIGKILL');
  });

  it('rejects with the lost-connection error when the channel closes without an exit status', async () => {
    const channel = fakeChannel();
    const lost = new ConnectError('web1', 'lost it');
    const done = runChannel(channel as unknown as ClientChannel, 'cmd', { ...base, killable: false, lostError: () => lost });
    channel.emit('close');
    expect(await rejection(done)).to.equal(lost);
  });

  it('wrapKillable keeps argv intact behind sh -c', () => {
    const argv = wrapKillable(['printf', '%s|', 'a b', "it's"]);
    const out = execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).to.equal("a b|it's|");
  });
});
