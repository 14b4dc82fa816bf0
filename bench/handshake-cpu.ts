/**
 * What one SSH connection costs in CPU, on each side, for docs/scaling.md's cost model:
 *
 *   npx tsx bench/handshake-cpu.ts [connections, default 40]
 *
 * Opens that many connections one after another to a test fleet host with ssh2 (the library vdeploy
 * connects with: curve25519 key exchange, ed25519 host key and user key), each until authenticated
 * and one `true` command has run, then closed. Controller: this process's CPU time (user + system)
 * per connection. Target: the CPU time of the sshd's children (each connection's forked, re-executed
 * sshd and its session), read from the sshd's cutime + cstime in /proc, per connection.
 */
import { readFileSync } from 'node:fs';
import { Client } from 'ssh2';
import { startFleet, type FleetHost } from '../test/helpers/fleet.js';

const CLOCK_TICKS = 100; // USER_HZ on Linux

function childrenCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command: state(0) ppid … utime(11) stime(12) cutime(13) cstime(14).
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / CLOCK_TICKS;
}

function connectOnce(host: FleetHost, user: string, privateKey: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    c.on('ready', () => {
      c.exec('true', (err, stream) => {
        if (err) return reject(err);
        stream.on('close', () => {
          c.end();
          resolve();
        });
        stream.resume();
      });
    });
    c.on('error', reject);
    c.connect({ host: host.address, port: host.port, username: user, privateKey, hostVerifier: () => true });
  });
}

const n = Number(process.argv[2] ?? 40);
const fleet = await startFleet({ hosts: 1, lightShell: true });
try {
  const host = fleet.hosts[0]!;
  const key = readFileSync(fleet.clientKeyPath);
  await connectOnce(host, fleet.user, key); // warm: module loading, JIT
  const sshdBefore = childrenCpuMs(host.pid);
  const before = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < n; i++) await connectOnce(host, fleet.user, key);
  const wall = performance.now() - started;
  const used = process.cpuUsage(before);
  // The last children are reaped (and counted in cutime) shortly after they exit: wait for them.
  await new Promise((r) => setTimeout(r, 500));
  const sshd = childrenCpuMs(host.pid) - sshdBefore;
  const per = (ms: number) => `${(ms / n).toFixed(1)} ms`;
  process.stdout.write(
    `${n} connections (connect, authenticate, run \`true\`, close), one after another:\n` +
      `  controller (ssh2 in Node) CPU per connection: ${per((used.user + used.system) / 1000)}\n` +
      `  target (sshd, its session and shell) CPU per connection: ${per(sshd)}\n` +
      `  wall time per connection: ${per(wall)}\n`,
  );
} finally {
  await fleet.stop();
}
