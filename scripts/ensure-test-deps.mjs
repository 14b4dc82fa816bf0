#!/usr/bin/env node
// Installs what the test suite needs from Debian's packages when it is missing, and does nothing
// (quickly) when it is all there, so `npm test` works on a fresh machine and stays fast after.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const checks = [
  { pkg: 'openssh-server', ok: () => existsSync('/usr/sbin/sshd') },
  { pkg: 'openssh-client', ok: () => existsSync('/usr/bin/ssh') && existsSync('/usr/bin/ssh-keygen') },
  // Debian splits venv/ensurepip out of python3; the test hosts' venvs use /usr/bin/python3.
  { pkg: 'python3-venv', ok: () => spawnSync('/usr/bin/python3', ['-c', 'import ensurepip, venv'], { stdio: 'ignore' }).status === 0 },
  // The linter scripts/test-python.mjs runs over the Python vdeploy ships and its tests.
  { pkg: 'pyflakes3', ok: () => existsSync('/usr/bin/pyflakes3') },
  // The e2e tests of venvs owned by another user log in as one test user and `sudo -n -u` another.
  { pkg: 'sudo', ok: () => existsSync('/usr/bin/sudo') && existsSync('/usr/sbin/visudo') },
  // The releases tests reload a real gunicorn under a private supervisord (test/helpers/supervised-gunicorn.ts).
  { pkg: 'supervisor', ok: () => existsSync('/usr/bin/supervisord') && existsSync('/usr/bin/supervisorctl') },
  // The OS-package tests (issue 19) check the .deb with Debian's linter and the .rpm with rpm's own reader.
  { pkg: 'lintian', ok: () => existsSync('/usr/bin/lintian') },
  { pkg: 'rpm', ok: () => existsSync('/usr/bin/rpm') },
];

const missing = checks.filter((c) => !c.ok()).map((c) => c.pkg);
if (missing.length === 0) process.exit(0);

const isRoot = process.getuid?.() === 0;
const sudo = isRoot ? [] : ['sudo', '-n'];
if (!isRoot && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status !== 0) {
  console.error(`error: the tests need ${missing.join(', ')} and this user can't install them`);
  console.error(`hint: run \`sudo apt-get update && sudo apt-get install -y ${missing.join(' ')}\` once, then \`npm test\` again`);
  process.exit(2);
}
console.error(`installing test prerequisites: ${missing.join(', ')}`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
const run = (args) => {
  const [cmd, ...rest] = [...sudo, ...args];
  execFileSync(cmd, rest, { stdio: ['ignore', 'inherit', 'inherit'], env });
};
run(['apt-get', 'update', '-qq']);
run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...missing]);
const still = checks.filter((c) => !c.ok()).map((c) => c.pkg);
if (still.length > 0) {
  console.error(`error: ${still.join(', ')} still missing after apt-get install`);
  process.exit(2);
}
