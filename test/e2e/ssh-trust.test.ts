/**
 * Trust, end to end: createHostConnector (the only way commands connect) against REAL sshds
 * (test/helpers/fleet.ts), with configs built by parseConfig from deployfile values and real ssh_config
 * files. Host keys (unknown, accept-new, changed, revoked, hashed and `[host]:port` entries, with
 * `ssh-keygen -F` as the oracle), ProxyJump through a bastion to hosts on a private network, ssh_config
 * aliases, ssh-agent, encrypted keys, and hosts that are down or hang. docs/trust.md has the table.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, readlinkSync, writeFileSync, appendFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { expect } from 'chai';
import { parseConfig } from '../../src/config/load-deployfile.js';
import type { ResolvedConfig } from '../../src/config/resolve-config.js';
import { ConnectError } from '../../src/errors.js';
import { createHostConnector, type HostConnector, type HostConnectorOptions } from '../../src/remote/connect-host.js';
import { makeTempDir } from '../helpers/cli.js';
import { startFleet, type Fleet, type FleetHost } from '../helpers/fleet.js';
import { rejection } from '../helpers/rejection.js';

/** The SHA256 fingerprint OpenSSH prints for a public key line (the oracle for messages). */
const fingerprint = (pubLine: string) => execFileSync('ssh-keygen', ['-lf', '-'], { input: pubLine, encoding: 'utf8' }).split(' ')[1]!;
/** Line numbers `ssh-keygen -F name -f file` finds: what OpenSSH itself would match. */
const keygenFind = (file: string, name: string) =>
  [...execFileSync('ssh-keygen', ['-F', name, '-f', file], { encoding: 'utf8' }).matchAll(/found: line (\d+)/g)].map((m) => Number(m[1]));
const keygenFindOrNone = (file: string, name: string) => {
  try {
    return keygenFind(file, name);
  } catch {
    return []; // exit 1: not found
  }
};
const bracketed = (h: FleetHost) => (h.port === 22 ? h.address : `[${h.address}]:${h.port}`);
const acceptedLogins = (h: FleetHost) => (readFileSync(join(h.root, 'sshd', 'sshd.log'), 'utf8').match(/Accepted publickey/g) ?? []).length;
const keyOnly = (pubLine: string) => pubLine.split(' ').slice(0, 2).join(' ');

/** The command in a hint's last `backquotes`. */
const hintCommand = (hint: string | undefined) => [...(hint ?? '').matchAll(/`([^`]+)`/g)].at(-1)![1]!;

describe('trust: host keys, ssh_config, ProxyJump, agent, encrypted keys, timeouts (real sshd)', function () {
  this.timeout(120_000);
  let fleet: Fleet;
  // ProxyJump needs a network namespace for the private hosts: root (unshare/nsenter).
  const canNamespace = process.getuid?.() === 0;
  const connectors: HostConnector[] = [];

  before(async () => {
    fleet = await startFleet({ hosts: 3, privateHosts: canNamespace ? 2 : 0 });
  });
  afterEach(async () => {
    await Promise.all(connectors.splice(0).map((c) => c.closeAll()));
  });
  after(async () => {
    await fleet?.stop();
  });

  const h = (i: number) => fleet.hosts[i]!;
  const asDeployfileHost = (host: FleetHost, name = host.name) => ({ name, address: host.address, port: host.port, user: fleet.user });

  interface Setup {
    dir: string;
    config: ResolvedConfig;
    connector: HostConnector;
    warnings: string[];
    connect(name: string): ReturnType<HostConnector['connect']>;
  }
  /**
   * A deployfile (parseConfig) and an ssh_config file in a fresh directory, and a connector that
   * ignores the environment (no SSH_AUTH_SOCK, no VDEPLOY_SSH_PASSPHRASE, no ~/.ssh/known_hosts:
   * every ssh_config here ends with `UserKnownHostsFile none`) unless the test says otherwise.
   */
  async function setup(deployfile: Record<string, unknown>, sshConfig = '', options: HostConnectorOptions = {}): Promise<Setup> {
    const dir = await makeTempDir('vdeploy-trust-');
    writeFileSync(join(dir, 'ssh_config'), `${sshConfig}\nHost *\n  UserKnownHostsFile none\n`);
    const config = parseConfig(deployfile, undefined, dir);
    const warnings: string[] = [];
    const connector = createHostConnector(config, {
      sshConfigFile: join(dir, 'ssh_config'),
      agent: '',
      env: {},
      onWarning: (m) => warnings.push(m),
      ...options,
    });
    connectors.push(connector);
    return { dir, config, connector, warnings, connect: (name) => connector.connect(config.hosts.find((x) => x.name === name)!) };
  }

  describe('host keys', () => {
    it('refuses an unknown host with its fingerprint and the exact command to add it; that command works', async () => {
      const kh = join(await makeTempDir(), 'known_hosts');
      writeFileSync(kh, '');
      const s = await setup({ ssh: { knownHosts: kh, identityFile: fleet.clientKeyPath }, hosts: [asDeployfileHost(h(0))] });
      const before = acceptedLogins(h(0));
      const err = (await rejection(s.connect('host1'))) as ConnectError;
      expect(err).to.be.instanceOf(ConnectError);
      expect(err.host).to.equal('host1');
      expect(err.message).to.equal(`host key of host1 (${h(0).address}:${h(0).port}) is not in known_hosts: ED25519 ${fingerprint(h(0).hostKeyPub)}`);
      expect(err.hint).to.include(`\`ssh-keyscan -p ${h(0).port} ${h(0).address} >> ${kh}\``);
      expect(acceptedLogins(h(0)), 'refused before authenticating').to.equal(before);
      expect(readFileSync(kh, 'utf8')).to.equal('');

      // The hint's command, run as given, makes the next run connect.
      execFileSync('sh', ['-c', hintCommand(err.hint)], { stdio: 'ignore' });
      const again = await setup({ ssh: { knownHosts: kh, identityFile: fleet.clientKeyPath }, hosts: [asDeployfileHost(h(0))] });
      expect((await (await again.connect('host1')).exec(['echo', 'ok'])).stdout).to.equal('ok\n');
    });

    it('accept-new records the key as `[address]:port` (found by ssh-keygen -F and used by ssh); a second run passes with yes', async () => {
      const kh = join(await makeTempDir(), 'known_hosts');
      writeFileSync(kh, `# mine\n[${h(1).address}]:${h(1).port} ${keyOnly(h(1).hostKeyPub)}\n`);
      const deployfile = {
        ssh: { knownHosts: kh, identityFile: fleet.clientKeyPath, strictHostKeyChecking: 'accept-new' },
        hosts: [asDeployfileHost(h(0)), asDeployfileHost(h(1))],
      };
      // Two connectors (as two vdeploy runs would) race to record host1's key; host2's is known already.
      const [s, rival] = [await setup(deployfile), await setup(deployfile)];
      const conns = await Promise.all([s.connect('host1'), rival.connect('host1'), s.connect('host2')]);
      for (const c of conns) expect((await c.exec(['true'])).exitCode).to.equal(0);

      const lines = readFileSync(kh, 'utf8').split('\n');
      expect(lines.filter((l) => l.startsWith(`[${h(0).address}]:${h(0).port} `)), 'recorded once').to.deep.equal([
        `[${h(0).address}]:${h(0).port} ${keyOnly(h(0).hostKeyPub)}`,
      ]);
      expect(keygenFind(kh, `[${h(0).address}]:${h(0).port}`)).to.deep.equal([3]);
      expect([...s.warnings, ...rival.warnings]).to.deep.equal([
        `Permanently added [${h(0).address}]:${h(0).port} (ED25519 key ${fingerprint(h(0).hostKeyPub)}) to ${kh} for host1`,
      ]);
      expect(existsSync(`${kh}.lock`), 'lock released').to.equal(false);

      // The real ssh client trusts the file as written, strictly.
      const ssh = execFileSync('ssh', [...fleet.sshArgs(h(0)).map((a) => (a === `UserKnownHostsFile=${fleet.knownHostsPath}` ? `UserKnownHostsFile=${kh}` : a)), 'echo', 'via-ssh'], { encoding: 'utf8' });
      expect(ssh).to.equal('via-ssh\n');
      // And so does vdeploy, in mode yes.
      const strict = await setup({ ...deployfile, ssh: { ...deployfile.ssh, strictHostKeyChecking: 'yes' } });
      expect((await (await strict.connect('host1')).exec(['true'])).exitCode).to.equal(0);
      expect(strict.warnings).to.deep.equal([]);
    });

    it('refuses a changed key in every mode, with both fingerprints and the file and line to fix', async () => {
      const kh = join(await makeTempDir(), 'known_hosts');
      const content = `# a key that is not host1's\n\n[${h(0).address}]:${h(0).port} ${keyOnly(h(1).hostKeyPub)}\n`;
      writeFileSync(kh, content);
      for (const mode of ['yes', 'accept-new', 'no'] as const) {
        const s = await setup({
          ssh: { knownHosts: kh, identityFile: fleet.clientKeyPath, strictHostKeyChecking: mode },
          hosts: [asDeployfileHost(h(0))],
        });
        const before = acceptedLogins(h(0));
        const err = (await rejection(s.connect('host1'))) as ConnectError;
        expect(err, mode).to.be.instanceOf(ConnectError);
        expect(err.message).to.equal(
          `host key of host1 (${h(0).address}:${h(0).port}) has CHANGED: it presented ED25519 ${fingerprint(h(0).hostKeyPub)} but ${kh}:3 has ED25519 ${fingerprint(h(1).hostKeyPub)}`,
        );
        expect(err.hint).to.include(`delete line 3 of ${kh}`);
        expect(acceptedLogins(h(0)), 'never authenticated').to.equal(before);
        expect(readFileSync(kh, 'utf8'), 'nothing recorded').to.equal(content);
        expect(s.warnings).to.deep.equal([]);
      }
    });

    it('refuses a revoked key even when a plain entry trusts it', async () => {
      const kh = join(await makeTempDir(), 'known_hosts');
      writeFileSync(kh, `[${h(2).address}]:${h(2).port} ${keyOnly(h(2).hostKeyPub)}\n@revoked * ${keyOnly(h(2).hostKeyPub)}\n`);
      const s = await setup({ ssh: { knownHosts: kh, identityFile: fleet.clientKeyPath, strictHostKeyChecking: 'no' }, hosts: [asDeployfileHost(h(2))] });
      const err = (await rejection(s.connect('host3'))) as ConnectError;
      expect(err).to.be.instanceOf(ConnectError);
      expect(err.message).to.equal(`host key of host3 (${h(2).address}:${h(2).port}) is revoked: ED25519 ${fingerprint(h(2).hostKeyPub)} is marked @revoked at ${kh}:2`);
    });

    it('matches hashed entries, `[host]:port` names and pattern lists exactly where ssh-keygen -F does', async () => {
      const dir = await makeTempDir();
      const hashed = join(dir, 'hashed');
      writeFileSync(hashed, `[${h(0).address}]:${h(0).port} ${keyOnly(h(0).hostKeyPub)}\n[${h(1).address}]:${h(1).port} ${keyOnly(h(1).hostKeyPub)}\n`);
      execFileSync('ssh-keygen', ['-H', '-f', hashed], { stdio: 'ignore' });
      expect(readFileSync(hashed, 'utf8')).to.match(/^\|1\|/).and.not.include(h(0).address);
      const patterns = join(dir, 'patterns');
      writeFileSync(
        patterns,
        [
          `${h(2).address} ${keyOnly(h(0).hostKeyPub)}`, // port 22 only: must not match host3's port
          `[${h(2).address}]:1 ${keyOnly(h(0).hostKeyPub)}`, // another port
          `otherhost,[127.0.0.?]:${h(2).port},!nothing ${keyOnly(h(2).hostKeyPub)}`,
          '',
        ].join('\n'),
      );
      // The oracle: what OpenSSH itself finds for each name.
      expect(keygenFind(hashed, `[${h(0).address}]:${h(0).port}`)).to.deep.equal([1]);
      expect(keygenFindOrNone(hashed, h(0).address)).to.deep.equal([]);
      expect(keygenFind(patterns, `[${h(2).address}]:${h(2).port}`)).to.deep.equal([3]);

      const s = await setup({
        ssh: { knownHosts: [hashed, patterns], identityFile: fleet.clientKeyPath },
        hosts: [asDeployfileHost(h(0)), asDeployfileHost(h(1)), asDeployfileHost(h(2))],
      });
      for (const name of ['host1', 'host2', 'host3']) expect((await (await s.connect(name)).exec(['true'])).exitCode, name).to.equal(0);
    });

    it("connects to an unknown host with 'no', warning through onWarning (nothing printed, nothing recorded)", async () => {
      const kh = join(await makeTempDir(), 'known_hosts');
      writeFileSync(kh, '');
      const s = await setup({ ssh: { knownHosts: kh, identityFile: fleet.clientKeyPath }, hosts: [asDeployfileHost(h(1))] }, '', {
        strictHostKeyChecking: 'no', // --strict-host-key-checking wins over the deployfile's default
      });
      expect((await (await s.connect('host2')).exec(['true'])).exitCode).to.equal(0);
      expect(s.warnings).to.have.length(1);
      expect(s.warnings[0]).to.include('WITHOUT verifying').and.include(fingerprint(h(1).hostKeyPub)).and.include('host2');
      expect(readFileSync(kh, 'utf8')).to.equal('');
    });
  });

  describe('ssh_config', () => {
    it('connects through an alias: HostName, User, Port and IdentityFile (with %h) from ssh_config', async () => {
      const keys = await makeTempDir();
      copyFileSync(fleet.clientKeyPath, join(keys, `id_${h(2).address}`));
      const s = await setup(
        { ssh: { knownHosts: fleet.knownHostsPath }, hosts: [{ name: 'app' }] },
        `Host app\n  HostName ${h(2).address}\n  User ${fleet.user}\n  Port ${h(2).port}\n  IdentityFile ${keys}/id_%h\n  IdentitiesOnly yes\n`,
      );
      const conn = await s.connect('app');
      expect(conn.target).to.equal(`${fleet.user}@${h(2).address}:${h(2).port}`);
      expect((await conn.exec(['id', '-un'])).stdout).to.equal(`${fleet.user}\n`);
      const log = readFileSync(join(h(2).root, 'sshd', 'sshd.log'), 'utf8');
      expect(log).to.include(`Accepted publickey for ${fleet.user}`).and.include(fingerprint(readFileSync(`${fleet.clientKeyPath}.pub`, 'utf8')));
    });

    it("lets the deployfile's address and port win over ssh_config's HostName and Port", async () => {
      const s = await setup(
        { ssh: { knownHosts: fleet.knownHostsPath, identityFile: fleet.clientKeyPath }, hosts: [{ name: 'app', address: h(0).address, port: h(0).port }] },
        `Host app\n  HostName 127.0.0.250\n  Port 1\n  User ${fleet.user}\n`,
      );
      expect((await s.connect('app')).target).to.equal(`${fleet.user}@${h(0).address}:${h(0).port}`);
    });
  });

  describe('ProxyJump', () => {
    before(function () {
      if (!canNamespace) this.skip(); // the private network needs root; see startPrivateNetwork in fleet.ts
    });
    const jumpConfig = () =>
      [
        'Host bastion',
        `  HostName ${fleet.bastion!.address}`,
        `  Port ${fleet.bastion!.port}`,
        'Host private1',
        `  HostName ${fleet.privateHosts[0]!.address}`,
        '  ProxyJump bastion',
        'Host private2',
        `  HostName ${fleet.privateHosts[1]!.address}`,
        '  ProxyJump bastion,private1',
        'Host nowhere',
        '  HostName 127.0.100.99',
        '  ProxyJump bastion',
        'Host *',
        `  User ${fleet.user}`,
        `  IdentityFile ${fleet.clientKeyPath}`,
        '',
      ].join('\n');
    const jumpDeployfile = (knownHosts: string, ssh: Record<string, unknown> = {}) => ({
      ssh: { knownHosts, ...ssh },
      hosts: [{ name: 'private1' }, { name: 'private2' }, { name: 'nowhere', port: 22 }],
    });

    it('reaches a host on the private network only through the bastion, one hop or two', async () => {
      const target = fleet.privateHosts[0]!;
      // Directly, nothing answers: the private hosts live in another network namespace.
      const direct = await setup({ ssh: { knownHosts: fleet.knownHostsPath, identityFile: fleet.clientKeyPath }, hosts: [{ name: 'p', address: target.address, port: 22, user: fleet.user }] });
      const refused = (await rejection(direct.connect('p'))) as ConnectError;
      expect(refused.message).to.include('connection refused');

      const s = await setup(jumpDeployfile(fleet.knownHostsPath), jumpConfig());
      const ownNetns = readlinkSync('/proc/self/ns/net');
      for (const name of ['private1', 'private2']) {
        const conn = await s.connect(name);
        expect(conn.target).to.match(new RegExp(` via ${name === 'private1' ? 'bastion' : 'private1'}$`));
        // The command really ran on the other side of the bastion: in the private network namespace.
        const netns = (await conn.exec(['readlink', '/proc/self/ns/net'])).stdout.trim();
        expect(netns, name).to.match(/^net:\[\d+\]$/).and.not.equal(ownNetns);
      }
      // The real ssh agrees it is the same host (its own known_hosts, through the bastion).
      expect((await fleet.exec(target, ['readlink', '/proc/self/ns/net'])).stdout.trim()).to.not.equal(ownNetns);
    });

    it('checks each hop under its own name: an unknown bastion is refused as the bastion, a changed target as the target', async () => {
      const dir = await makeTempDir();
      const noBastion = join(dir, 'no-bastion');
      writeFileSync(noBastion, fleet.privateHosts.map((p) => `${p.address} ${keyOnly(p.hostKeyPub)}\n`).join(''));
      const s1 = await setup(jumpDeployfile(noBastion), jumpConfig());
      const e1 = (await rejection(s1.connect('private1'))) as ConnectError;
      expect(e1.host).to.equal('private1');
      expect(e1.message).to.equal(
        `cannot reach private1 through bastion: host key of bastion (${fleet.bastion!.address}:${fleet.bastion!.port}) is not in known_hosts: ED25519 ${fingerprint(fleet.bastion!.hostKeyPub)}`,
      );

      const wrongTarget = join(dir, 'wrong-target');
      writeFileSync(wrongTarget, `${bracketed(fleet.bastion!)} ${keyOnly(fleet.bastion!.hostKeyPub)}\n${fleet.privateHosts[0]!.address} ${keyOnly(fleet.privateHosts[1]!.hostKeyPub)}\n`);
      const s2 = await setup(jumpDeployfile(wrongTarget), jumpConfig());
      const e2 = (await rejection(s2.connect('private1'))) as ConnectError;
      expect(e2.host).to.equal('private1');
      expect(e2.message).to.include(`host key of private1 (${fleet.privateHosts[0]!.address}:22 via bastion) has CHANGED`).and.include(`${wrongTarget}:2`);
    });

    it('accept-new records the bastion as `[address]:port` and the target as `address` (port 22), as ssh-keygen -F finds them', async () => {
      const kh = join(await makeTempDir(), 'known_hosts');
      writeFileSync(kh, '');
      const s = await setup(jumpDeployfile(kh, { strictHostKeyChecking: 'accept-new' }), jumpConfig());
      expect((await (await s.connect('private1')).exec(['true'])).exitCode).to.equal(0);
      expect(keygenFind(kh, bracketed(fleet.bastion!))).to.deep.equal([1]);
      expect(keygenFind(kh, fleet.privateHosts[0]!.address)).to.deep.equal([2]);
      expect(readFileSync(kh, 'utf8')).to.equal(`${bracketed(fleet.bastion!)} ${keyOnly(fleet.bastion!.hostKeyPub)}\n${fleet.privateHosts[0]!.address} ${keyOnly(fleet.privateHosts[0]!.hostKeyPub)}\n`);
    });

    it('an unknown jumped host gets a command that adds exactly its key (keyscan cannot reach it)', async () => {
      const kh = join(await makeTempDir(), 'known_hosts');
      writeFileSync(kh, `${bracketed(fleet.bastion!)} ${keyOnly(fleet.bastion!.hostKeyPub)}\n`);
      const s = await setup(jumpDeployfile(kh), jumpConfig());
      const err = (await rejection(s.connect('private1'))) as ConnectError;
      expect(err.message).to.include('via bastion) is not in known_hosts');
      execFileSync('sh', ['-c', hintCommand(err.hint)]);
      const again = await setup(jumpDeployfile(kh), jumpConfig());
      expect((await (await again.connect('private1')).exec(['true'])).exitCode).to.equal(0);
    });

    it('fails fast, naming the target and the bastion, when the bastion cannot reach the target', async () => {
      const s = await setup(jumpDeployfile(fleet.knownHostsPath), jumpConfig());
      const started = Date.now();
      const err = (await rejection(s.connect('nowhere'))) as ConnectError;
      expect(Date.now() - started).to.be.below(3000);
      expect(err.host).to.equal('nowhere');
      expect(err.message).to.match(/^cannot connect to nowhere \(127\.0\.100\.99:22\) via bastion: bastion could not open a connection to it/);
    });
  });

  describe('authentication', () => {
    let keys: string;
    let locked: string;
    before(async () => {
      keys = await makeTempDir();
      locked = join(keys, 'locked_ed25519');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'sesame', '-C', 'locked', '-f', locked]);
      appendFileSync(fleet.authorizedKeysPath, readFileSync(`${locked}.pub`));
    });
    const twoHosts = (identityFile: string) => ({
      ssh: { knownHosts: fleet.knownHostsPath, identityFile },
      hosts: [asDeployfileHost(h(0)), asDeployfileHost(h(1))],
    });
    /** Logins the host's sshd accepted with the encrypted key. */
    const lockedLogins = (host: FleetHost) => {
      const fp = fingerprint(readFileSync(`${locked}.pub`, 'utf8'));
      return readFileSync(join(host.root, 'sshd', 'sshd.log'), 'utf8')
        .split('\n')
        .filter((line) => line.includes('Accepted publickey') && line.includes(fp)).length;
    };

    it('unlocks an encrypted key with VDEPLOY_SSH_PASSPHRASE', async () => {
      const before = lockedLogins(h(0));
      const s = await setup(twoHosts(locked), '', { env: { VDEPLOY_SSH_PASSPHRASE: 'sesame' } });
      for (const name of ['host1', 'host2']) expect((await (await s.connect(name)).exec(['true'])).exitCode).to.equal(0);
      expect(lockedLogins(h(0))).to.equal(before + 1);
    });

    it('asks the passphrase callback once per key for the whole run, again after a wrong answer', async () => {
      const asked: Array<[string, number]> = [];
      const answers = ['wrong', 'sesame'];
      const s = await setup(twoHosts(locked), '', {
        passphrase: async (file, attempt) => {
          asked.push([file, attempt]);
          return answers.shift();
        },
      });
      await Promise.all(['host1', 'host2'].map(async (n) => expect((await (await s.connect(n)).exec(['true'])).exitCode).to.equal(0)));
      expect(asked).to.deep.equal([
        [locked, 1],
        [locked, 2],
      ]);
    });

    it('says which: wrong passphrase, encrypted key without passphrase, key rejected, no usable key', async () => {
      const wrong = (await rejection((await setup(twoHosts(locked), '', { env: { VDEPLOY_SSH_PASSPHRASE: 'nope' } })).connect('host1'))) as ConnectError;
      expect(wrong.message).to.equal(`wrong passphrase for encrypted key ${locked} (from VDEPLOY_SSH_PASSPHRASE)`);

      const thrice = (await rejection((await setup(twoHosts(locked), '', { passphrase: async () => 'nope' })).connect('host2'))) as ConnectError;
      expect(thrice.message).to.equal(`wrong passphrase for encrypted key ${locked} (3 attempts)`);
      expect(thrice.host).to.equal('host2');

      const none = (await rejection((await setup(twoHosts(locked))).connect('host1'))) as ConnectError;
      expect(none.message).to.equal(`encrypted key ${locked} needs a passphrase and none was given`);
      expect(none.hint).to.include('VDEPLOY_SSH_PASSPHRASE').and.include(`ssh-add ${locked}`);

      const stranger = join(keys, 'stranger');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
      const rejected = (await rejection((await setup(twoHosts(stranger))).connect('host1'))) as ConnectError;
      expect(rejected.message).to.equal(
        `cannot connect to host1 (${fleet.user}@${h(0).address}:${h(0).port}): ${fleet.user} was refused with every key offered (${stranger})`,
      );
      expect(rejected.hint).to.include('authorized_keys');

      const missing = (await rejection((await setup(twoHosts(join(keys, 'no_such_key')))).connect('host1'))) as ConnectError;
      expect(missing.message).to.equal(`no usable SSH key for host1: ${join(keys, 'no_such_key')}: not found`);
    });

    describe('with a real ssh-agent', () => {
      let agent: ChildProcess | undefined;
      let socket: string;
      let agentKey: string;
      before(async () => {
        const dir = await makeTempDir();
        socket = join(dir, 'agent.sock');
        // -D: foreground, so the PID spawned is the agent's own, and it is the one we kill.
        agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
        for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 20));
        const env = { ...process.env, SSH_AUTH_SOCK: socket };
        // A key only the agent has (its file is not configured anywhere), authorized on the hosts.
        agentKey = join(dir, 'agent_only');
        execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'agent-only', '-f', agentKey]);
        appendFileSync(fleet.authorizedKeysPath, readFileSync(`${agentKey}.pub`));
        execFileSync('ssh-add', [agentKey], { env, stdio: 'ignore' });
        // The encrypted key, unlocked into the agent (from a decrypted copy: same key).
        const copy = join(dir, 'locked_copy');
        copyFileSync(locked, copy);
        execFileSync('ssh-keygen', ['-q', '-p', '-P', 'sesame', '-N', '', '-f', copy]);
        execFileSync('ssh-add', [copy], { env, stdio: 'ignore' });
      });
      after(() => {
        if (agent?.pid && agent.exitCode === null) process.kill(agent.pid, 'SIGTERM');
      });

      it('authenticates with the agent when the configured key is not accepted', async () => {
        const stranger = join(keys, 'stranger2');
        execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
        const s = await setup(twoHosts(stranger), '', { agent: socket });
        expect((await (await s.connect('host1')).exec(['true'])).exitCode).to.equal(0);
        const log = readFileSync(join(h(0).root, 'sshd', 'sshd.log'), 'utf8');
        expect(log).to.include(fingerprint(readFileSync(`${agentKey}.pub`, 'utf8')));
        // Without the agent the same setup is refused: it really was the agent.
        const without = await setup(twoHosts(stranger));
        expect((await rejection(without.connect('host1'))).message).to.include('refused with every key offered');
      });

      it('uses an encrypted key the agent holds without asking for its passphrase (IdentitiesOnly: only that agent key)', async () => {
        let asked = 0;
        const s = await setup(
          { ssh: { knownHosts: fleet.knownHostsPath }, hosts: [asDeployfileHost(h(2))] },
          `Host host3\n  IdentityFile ${locked}\n  IdentitiesOnly yes\n`,
          { agent: socket, passphrase: async () => (asked++, undefined) },
        );
        const before = lockedLogins(h(2));
        expect((await (await s.connect('host3')).exec(['true'])).exitCode).to.equal(0);
        expect(asked).to.equal(0);
        expect(lockedLogins(h(2))).to.equal(before + 1);
      });
    });
  });

  describe('timeouts and failures', () => {
    it('an unreachable host (nothing listening) and a hanging one fail within the connect timeout; the others connect', async () => {
      const closedPort = await new Promise<number>((resolve) => {
        const server = net.createServer().listen(0, h(0).address, () => {
          const { port } = server.address() as net.AddressInfo;
          server.close(() => resolve(port));
        });
      });
      const sockets: net.Socket[] = [];
      const silent = net.createServer((socket) => sockets.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, h(1).address, resolve));
      try {
        const s = await setup({
          ssh: { knownHosts: fleet.knownHostsPath, identityFile: fleet.clientKeyPath, connectTimeout: 1 },
          hosts: [
            asDeployfileHost(h(0)),
            { ...asDeployfileHost(h(0), 'down'), port: closedPort },
            { ...asDeployfileHost(h(1), 'hangs'), port: (silent.address() as net.AddressInfo).port },
            asDeployfileHost(h(2)),
          ],
        });
        const started = Date.now();
        const results = await Promise.all(
          ['host1', 'down', 'hangs', 'host3'].map(async (name) => {
            try {
              await (await s.connect(name)).exec(['true']);
              return { name, ok: true, ms: Date.now() - started, message: '' };
            } catch (err) {
              return { name, ok: false, ms: Date.now() - started, message: (err as Error).message };
            }
          }),
        );
        const by = Object.fromEntries(results.map((r) => [r.name, r]));
        expect(by.host1!.ok && by.host3!.ok).to.equal(true);
        expect(by.down).to.include({ ok: false });
        expect(by.down!.message).to.include('connection refused');
        expect(by.down!.ms).to.be.below(1000);
        expect(by.hangs).to.include({ ok: false });
        expect(by.hangs!.message).to.include('no SSH handshake within 1s');
        expect(by.hangs!.ms).to.be.within(900, 3000);
      } finally {
        sockets.forEach((x) => x.destroy());
        await new Promise((resolve) => silent.close(resolve));
      }
    });

    it('queues more parallel commands than MaxSessions on one connection instead of failing', async () => {
      const s = await setup({ ssh: { knownHosts: fleet.knownHostsPath, identityFile: fleet.clientKeyPath }, hosts: [asDeployfileHost(h(1))] });
      const conn = await s.connect('host2');
      const results = await Promise.all(Array.from({ length: 25 }, (_, i) => conn.exec(['sh', '-c', 'sleep 0.1; echo $0', String(i)])));
      expect(results.map((r) => r.stdout)).to.deep.equal(Array.from({ length: 25 }, (_, i) => `${i}\n`));
    });
  });
});
