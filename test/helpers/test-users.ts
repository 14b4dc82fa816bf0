/**
 * Two real users on this machine for the tests of venvs owned by another user than the login user:
 *
 * - DEPLOYER (`vdeploy-deployer`): the SSH login user, not root (root may sudo anything anyway);
 * - APP_USER (`vdeploy-app`): the venvs' owner; DEPLOYER may run anything as it with
 *   `sudo -n` (no password), by a rule in SUDOERS_FILE — and as nobody else.
 *
 * Created once when missing and then left in place (idempotent, like the packages the test command
 * installs); a user of the same name that this file did not create is never touched: the setup fails
 * instead. Needs root and `sudo` (scripts/ensure-test-deps.mjs installs it).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

export const DEPLOYER = 'vdeploy-deployer';
export const APP_USER = 'vdeploy-app';
export const SUDOERS_FILE = '/etc/sudoers.d/vdeploy-test';
/** The GECOS field that marks a user as ours. */
const COMMENT = 'vdeploy test user';

const SUDOERS = [
  '# vdeploy e2e tests (test/helpers/test-users.ts): the login test user may run anything as the app',
  '# test user, without a password. Remove with the two users (userdel -r) when no longer wanted.',
  `${DEPLOYER} ALL=(${APP_USER}) NOPASSWD: ALL`,
  '',
].join('\n');

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** Makes sure both users and the sudoers rule exist; returns the users. Throws (with why) when it cannot. */
export function ensureTestUsers(): { deployer: TestUser; app: TestUser } {
  if (process.getuid?.() !== 0) throw new Error('the sudo tests create two users and a sudoers rule: run them as root');
  if (!existsSync('/usr/bin/sudo') || !existsSync('/usr/sbin/visudo')) {
    throw new Error('sudo is not installed: run the test suite with the README\'s test command (npm test), which installs it');
  }
  const deployer = ensureUser(DEPLOYER);
  const app = ensureUser(APP_USER);
  ensureSudoers();
  return { deployer, app };
}

function lookup(name: string): TestUser & { comment: string } | undefined {
  try {
    const line = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).trim();
    const [, , uid, gid, comment, home] = line.split(':');
    return { name, uid: Number(uid), gid: Number(gid), comment: comment ?? '', home: home ?? '' };
  } catch {
    return undefined; // getent exits 2 for an unknown user
  }
}

function ensureUser(name: string): TestUser {
  let user = lookup(name);
  if (user && user.comment !== COMMENT) {
    throw new Error(`a user ${name} exists that the tests did not create (GECOS ${JSON.stringify(user.comment)}): not touching it`);
  }
  if (!user) {
    // Password '*': no password login, yet not "locked" ('!'), which sshd without PAM refuses even for keys.
    execFileSync('useradd', ['--create-home', '--shell', '/bin/sh', '--comment', COMMENT, '--password', '*', name], { stdio: 'pipe' });
    user = lookup(name);
    if (!user) throw new Error(`useradd ${name} succeeded but getent does not know ${name}`);
  }
  return { name: user.name, uid: user.uid, gid: user.gid, home: user.home };
}

function ensureSudoers(): void {
  if (existsSync(SUDOERS_FILE) && readFileSync(SUDOERS_FILE, 'utf8') === SUDOERS) return;
  // Checked before it goes live: a broken file in sudoers.d breaks every sudo on the machine.
  const tmp = `${SUDOERS_FILE}.tmp-${process.pid}`;
  writeFileSync(tmp, SUDOERS, { mode: 0o440 });
  try {
    execFileSync('visudo', ['-cqf', tmp], { stdio: 'pipe' });
    renameSync(tmp, SUDOERS_FILE);
  } catch (err) {
    execFileSync('rm', ['-f', '--', tmp]);
    throw err;
  }
}

