/**
 * ssh_config reading (src/remote/ssh-config.ts), checked against `ssh -G` (OpenSSH's own evaluation of
 * a config) as the oracle, and the precedence rules that merge it with the deployfile and the command
 * line (src/remote/ssh-target.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { expect } from 'chai';
import { parseConfig } from '../../src/config/load-deployfile.js';
import type { ResolvedHost } from '../../src/config/resolve-config.js';
import { ConfigError } from '../../src/errors.js';
import {
  expandTokens,
  parseProxyJump,
  parseSshConfig,
  readSshConfig,
  resolveSshHost,
  type SshConfig,
  type SshHostOverrides,
  type SshHostSettings,
} from '../../src/remote/ssh-config.js';
import { DEFAULT_IDENTITY_FILES } from '../../src/remote/ssh-auth.js';
import { resolveSshTarget } from '../../src/remote/ssh-target.js';
import { hostConnectorOptions } from '../../src/cli/ssh-options.js';
import type { Output } from '../../src/cli/output.js';
import { makeTempDir } from '../helpers/cli.js';

// ssh -G uses the passwd entry's home and name, not $HOME: resolve with the same facts.
const me = userInfo();
const facts = { localUser: me.username, home: me.homedir };

/** `ssh -G` for a host: keyword -> values (identityfile repeats). */
function sshG(file: string, host: string, o: SshHostOverrides = {}): Map<string, string[]> {
  const args = ['-G', '-F', file];
  if (o.user !== undefined) args.push('-l', o.user);
  if (o.port !== undefined) args.push('-p', String(o.port));
  if (o.hostName !== undefined) args.push('-o', `HostName=${o.hostName}`);
  const run = spawnSync('ssh', [...args, host], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`ssh -G failed: ${run.stderr}`);
  const out = new Map<string, string[]>();
  for (const line of run.stdout.split('\n')) {
    const [key, ...rest] = line.split(' ');
    if (key) out.set(key, [...(out.get(key) ?? []), rest.join(' ')]);
  }
  return out;
}

/** Our settings in `ssh -G`'s vocabulary (defaults where we say "not set"). */
function asSshG(s: SshHostSettings): Record<string, string> {
  return {
    hostname: s.hostName,
    user: s.user,
    port: String(s.port),
    connecttimeout: s.connectTimeout === undefined ? 'none' : String(s.connectTimeout),
    serveraliveinterval: String(s.serverAliveInterval ?? 0),
    serveralivecountmax: String(s.serverAliveCountMax ?? 3),
    identitiesonly: s.identitiesOnly ? 'yes' : 'no',
    stricthostkeychecking: s.strictHostKeyChecking ?? 'ask',
    userknownhostsfile: (s.userKnownHostsFiles ?? [`${facts.home}/.ssh/known_hosts`, `${facts.home}/.ssh/known_hosts2`]).join(' '),
    proxyjump: s.proxyJump.map((j) => `${j.user ? `${j.user}@` : ''}${j.host}${j.port ? `:${j.port}` : ''}`).join(',') || '(none)',
  };
}

function theirs(g: Map<string, string[]>): Record<string, string> {
  const one = (k: string) => g.get(k)?.[0] ?? '(none)';
  const strict = one('stricthostkeychecking');
  return {
    hostname: one('hostname'),
    user: one('user'),
    port: one('port'),
    connecttimeout: one('connecttimeout'),
    serveraliveinterval: one('serveraliveinterval'),
    serveralivecountmax: one('serveralivecountmax'),
    identitiesonly: one('identitiesonly'),
    // vdeploy reads `ask` as yes only when asked to decide; the config value itself is compared here.
    stricthostkeychecking: strict === 'true' ? 'yes' : strict === 'false' ? 'no' : strict,
    userknownhostsfile: one('userknownhostsfile'),
    proxyjump: one('proxyjump'),
  };
}

describe('ssh_config', () => {
  let dir: string;
  let file: string;
  let config: SshConfig;

  before(async () => {
    dir = await makeTempDir();
    writeFileSync(join(dir, 'extra.conf'), ['Host db*', '  User fromInclude', '  Port 2300', ''].join('\n'));
    file = join(dir, 'config');
    writeFileSync(
      file,
      [
        '# options before any Host apply to every host',
        'ServerAliveCountMax 5',
        '',
        'Host web* !web3',
        '  HostName %h.example.com',
        '  User deploy',
        '  IdentityFile ~/.ssh/%r@%h-%p',
        '  IdentityFile /keys/%u-%n',
        '',
        'Host Web1 db?',
        '  port 2222',
        '  CONNECTTIMEOUT 7',
        '',
        'Host db1',
        '  HostName DB1.internal',
        '  User dbadmin',
        '  StrictHostKeyChecking accept-new',
        '',
        'Host bastion*',
        '  User=jump',
        '  IdentitiesOnly yes',
        '  UserKnownHostsFile ~/.ssh/known_hosts.jump /etc/kh/%h-%p',
        '  ProxyJump none',
        '',
        // OpenSSH evaluates this and finds no match (exec false); vdeploy never evaluates Match at all.
        'Match host *.example.com exec "false"',
        '  User matched',
        '',
        `Include ${join(dir, 'extra.conf')}`,
        '',
        'Host *',
        '  Port 2200',
        '  User other',
        '  ConnectTimeout 1m30s',
        '  ServerAliveInterval 30',
        '  ProxyJump jumper@bastion1:2022,bastion2',
        '  StrictHostKeyChecking no',
        '',
      ].join('\n'),
    );
    config = readSshConfig(file, facts.home);
  });

  describe('resolveSshHost agrees with `ssh -G`', () => {
    const queries: Array<[string, SshHostOverrides]> = [
      ['web1', {}],
      ['web2', {}],
      ['web3', {}], // negated: falls through to Host *
      ['Web1', {}], // Host patterns are case-sensitive: only `Host Web1` matches
      ['WEB1', {}],
      ['db1', {}],
      ['db2', {}], // first value wins: port 2222 from `Host Web1 db?`, user from the Include
      ['bastion1', {}],
      ['elsewhere', {}],
      ['web1', { user: 'bob', port: 99 }],
      ['db1', { hostName: '10.0.0.9' }],
      ['web2', { user: 'carol', hostName: '10.0.0.7', port: 2201 }],
    ];
    for (const [host, overrides] of queries) {
      it(`${host} ${JSON.stringify(overrides)}`, () => {
        const ours = resolveSshHost(config, host, { ...overrides, ...facts });
        expect(asSshG(ours)).to.deep.equal(theirs(sshG(file, host, overrides)));
      });
    }

    it('accumulates IdentityFile in order, with tokens and ~ expanded (%r is the final user)', () => {
      const s = resolveSshHost(config, 'web1', { user: 'bob', port: 99, ...facts });
      expect(s.identityFiles).to.deep.equal([`${facts.home}/.ssh/bob@web1.example.com-99`, `/keys/${facts.localUser}-web1`]);
      // Same count and order as OpenSSH (which prints them unexpanded).
      const raw = sshG(file, 'web1', { user: 'bob', port: 99 }).get('identityfile')!;
      expect(raw).to.deep.equal(['~/.ssh/%r@%h-%p', '/keys/%u-%n']);
      expect(resolveSshHost(config, 'elsewhere', facts).identityFiles).to.equal(undefined);
    });
  });

  describe('precedence: given values (the deployfile) > ssh_config > defaults', () => {
    const cases: Array<[string, string, SshHostOverrides, Partial<SshHostSettings>]> = [
      ['config fills everything', 'db1', {}, { hostName: 'db1.internal', user: 'dbadmin', port: 2222 }],
      ['given address wins over HostName', 'db1', { hostName: '10.1.1.1' }, { hostName: '10.1.1.1', user: 'dbadmin', port: 2222 }],
      ['given user and port win', 'db1', { user: 'app', port: 22 }, { hostName: 'db1.internal', user: 'app', port: 22 }],
      ['defaults when nothing matches', 'x', {}, { hostName: 'x', user: 'me', port: 22 }],
    ];
    const plain = parseSshConfig('Host db1\n  HostName db1.internal\n  User dbadmin\n  Port 2222\n');
    for (const [what, host, overrides, expected] of cases) {
      it(what, () => {
        expect(resolveSshHost(plain, host, { localUser: 'me', home: '/home/me', ...overrides })).to.include(expected);
      });
    }
  });

  describe('tokens', () => {
    const tokens = { h: 'web1.example.com', n: 'web1', p: '2201', r: 'deploy', u: 'me', d: '/home/me' };
    const cases: Array<[string, string]> = [
      ['~/.ssh/id_%h', '~/.ssh/id_web1.example.com'],
      ['%d/.ssh/%r@%n:%p', '/home/me/.ssh/deploy@web1:2201'],
      ['/keys/%u/100%%', '/keys/me/100%'],
      ['plain', 'plain'],
    ];
    for (const [input, expected] of cases) {
      it(`${input} -> ${expected}`, () => expect(expandTokens(input, tokens, 'test')).to.equal(expected));
    }
    it('refuses an unknown token, as ssh does', () => {
      expect(() => expandTokens('/k/%Z', tokens, 'IdentityFile in x')).to.throw(ConfigError, /IdentityFile in x: unknown or unsupported token %Z/);
    });
    it('expands ~ and the tokens in IdentityFile and UserKnownHostsFile', () => {
      const c = parseSshConfig('Host a\n  IdentityFile ~/k/%r-%h\n  UserKnownHostsFile ~/kh/%n %d/kh2\n');
      const s = resolveSshHost(c, 'a', { user: 'u', hostName: '10.0.0.1', localUser: 'me', home: '/home/me' });
      expect(s.identityFiles).to.deep.equal(['/home/me/k/u-10.0.0.1']);
      expect(s.userKnownHostsFiles).to.deep.equal(['/home/me/kh/a', '/home/me/kh2']);
    });
  });

  describe('Include and Match', () => {
    it('reads relative Includes under ~/.ssh, expands globs in order, and only inside a matching Host', async () => {
      const home = await makeTempDir();
      mkdirSync(join(home, '.ssh', 'conf.d'), { recursive: true });
      writeFileSync(join(home, '.ssh', 'conf.d', '10-a.conf'), 'Host a\n  User fromA\n');
      writeFileSync(join(home, '.ssh', 'conf.d', '20-b.conf'), 'Host a b\n  User fromB\n  Port 2000\n');
      writeFileSync(join(home, '.ssh', 'only-c.conf'), 'User fromC\n');
      writeFileSync(join(home, '.ssh', 'config'), 'Include conf.d/*.conf\nHost c\n  Include only-c.conf\nHost *\n  User last\n');
      const c = readSshConfig(undefined, home);
      expect(c.file).to.equal(join(home, '.ssh', 'config'));
      expect(resolveSshHost(c, 'a', { home })).to.include({ user: 'fromA', port: 2000 });
      expect(resolveSshHost(c, 'b', { home })).to.include({ user: 'fromB' });
      expect(resolveSshHost(c, 'c', { home })).to.include({ user: 'fromC' });
      expect(resolveSshHost(c, 'd', { home })).to.include({ user: 'last' });
    });

    it('never runs Match exec, and ignores what Match blocks set', async () => {
      const marker = join(await makeTempDir(), 'ran');
      const c = parseSshConfig(`Match exec "touch ${marker}"\n  User matched\nMatch all\n  Port 2022\nHost *\n  User plain\n`);
      expect(resolveSshHost(c, 'x', { localUser: 'me' })).to.include({ user: 'plain', port: 22 });
      expect(existsSync(marker)).to.equal(false);
    });

    it('an absent ~/.ssh/config is an empty config; an absent --ssh-config file is an error', async () => {
      const home = await makeTempDir();
      expect(readSshConfig(undefined, home)).to.deep.equal({ file: undefined, items: [] });
      expect(() => readSshConfig(join(home, 'nope'), home)).to.throw(ConfigError, /cannot read ssh config .*nope/);
    });
  });

  describe('values', () => {
    const jumps: Array<[string, ReturnType<typeof parseProxyJump>]> = [
      ['bastion', [{ host: 'bastion' }]],
      ['u@b:2222', [{ host: 'b', user: 'u', port: 2222 }]],
      ['a,u@b:2', [{ host: 'a' }, { host: 'b', user: 'u', port: 2 }]],
      ['ssh://u@h:22', [{ host: 'h', user: 'u', port: 22 }]],
      ['u@[::1]:22', [{ host: '::1', user: 'u', port: 22 }]],
      ['none', []],
    ];
    for (const [value, expected] of jumps) {
      it(`ProxyJump ${value}`, () => expect(parseProxyJump(value)).to.deep.equal(expected));
    }

    const bad: Array<[string, string, RegExp]> = [
      ['a port that is not a number', 'Host *\n  Port ssh\n', /Port "ssh" in .* is not a port number/],
      ['a bad StrictHostKeyChecking', 'Host *\n  StrictHostKeyChecking maybe\n', /StrictHostKeyChecking "maybe" .* is not a mode/],
      ['a bad ConnectTimeout', 'Host *\n  ConnectTimeout soon\n', /ConnectTimeout "soon" .* is not a time/],
      ['a bad ProxyJump hop', 'Host *\n  ProxyJump a,,b\n', /ProxyJump hop "" .* is not \[user@\]host\[:port\]/],
      ['a ProxyCommand (vdeploy does not run commands from ssh_config)', 'Host *\n  ProxyCommand nc %h %p\n', /sets ProxyCommand, which vdeploy does not run/],
    ];
    for (const [what, text, pattern] of bad) {
      it(`refuses ${what} with a ConfigError naming the file and host`, () => {
        expect(() => resolveSshHost(parseSshConfig(text, '/x/config'), 'h', { localUser: 'me' })).to.throw(ConfigError, pattern);
      });
    }

    it('reads the first of ProxyJump and ProxyCommand, as ssh does', () => {
      const c = parseSshConfig('Host a\n  ProxyCommand none\nHost *\n  ProxyJump b\n');
      expect(resolveSshHost(c, 'a', { localUser: 'me' }).proxyJump).to.deep.equal([]);
      expect(resolveSshHost(c, 'z', { localUser: 'me' }).proxyJump).to.deep.equal([{ host: 'b' }]);
    });

    it('maps StrictHostKeyChecking like ssh: ask/true = yes, off/false = no', () => {
      for (const [value, mode] of [['ask', 'yes'], ['true', 'yes'], ['off', 'no'], ['false', 'no'], ['accept-new', 'accept-new']]) {
        expect(resolveSshHost(parseSshConfig(`StrictHostKeyChecking ${value}\n`), 'h', { localUser: 'me' }).strictHostKeyChecking).to.equal(mode);
      }
    });
  });
});

describe('resolveSshTarget: deployfile, ssh_config and the command line together', () => {
  const sshConfig = parseSshConfig(
    [
      'Host web1',
      '  HostName 10.0.0.5',
      '  User deploy',
      '  Port 2201',
      '  IdentityFile /keys/web',
      '  ConnectTimeout 5',
      '  ServerAliveInterval 0',
      '  StrictHostKeyChecking accept-new',
      '  UserKnownHostsFile /kh/web',
      '  ProxyJump gw,inner',
      'Host gw',
      '  HostName 192.0.2.1',
      '  User jump',
      '  ProxyJump outer:2022',
      'Host inner',
      '  ProxyJump should-be-ignored',
      'Host loop1',
      '  ProxyJump loop2',
      'Host loop2',
      '  ProxyJump loop1',
      '',
    ].join('\n'),
    '/x/config',
  );
  const options = { sshConfig, localUser: 'me', home: '/home/me' };
  const hostOf = (deployfile: Record<string, unknown>, name = 'web1'): [ReturnType<typeof parseConfig>, ResolvedHost] => {
    const config = parseConfig({ hosts: [{ name, ...deployfile }] }, undefined, '/p');
    return [config, config.hosts[0]!];
  };
  const withSsh = (ssh: Record<string, unknown>, host: Record<string, unknown> = {}, name = 'web1') => {
    const config = parseConfig({ ssh, hosts: [{ name, ...host }] }, undefined, '/p');
    return resolveSshTarget(config, config.hosts[0]!, options);
  };

  it('fills address, user, port, key, timeouts and known_hosts from ssh_config when the deployfile is silent', () => {
    const [config, host] = hostOf({});
    const t = resolveSshTarget(config, host, options);
    expect(t).to.include({ name: 'web1', address: '10.0.0.5', user: 'deploy', port: 2201, connectTimeoutMs: 5000, keepaliveIntervalMs: 0 });
    expect(t.identityFiles).to.deep.equal(['/keys/web']);
    expect(t.strictHostKeyChecking).to.equal('accept-new');
    expect(t.knownHostsFiles).to.deep.equal(['/kh/web']);
  });

  it('lets the deployfile win: address, port, user, identityFile, strictHostKeyChecking, connectTimeout', () => {
    const t = withSsh(
      { identityFile: 'keys/deploy', strictHostKeyChecking: 'yes', connectTimeout: 20, knownHosts: 'kh' },
      { address: '10.9.9.9', port: 22, user: 'app' },
    );
    expect(t).to.include({ address: '10.9.9.9', port: 22, user: 'app', strictHostKeyChecking: 'yes', connectTimeoutMs: 20000 });
    expect(t.identityFiles).to.deep.equal(['/p/keys/deploy']);
    // known_hosts add up: the deployfile's first, then the host's UserKnownHostsFile.
    expect(t.knownHostsFiles).to.deep.equal(['/p/kh', '/kh/web']);
  });

  it('uses the defaults when neither says anything', () => {
    const t = withSsh({}, {}, 'plain');
    expect(t).to.include({ address: 'plain', user: 'me', port: 22, strictHostKeyChecking: 'yes', connectTimeoutMs: 15000, keepaliveIntervalMs: 15000, keepaliveCountMax: 3 });
    expect(t.identityFiles).to.equal(undefined);
    expect(t.knownHostsFiles).to.deep.equal(['/home/me/.ssh/known_hosts']);
    expect(t.jumps).to.deep.equal([]);
  });

  it('puts --known-hosts first and lets --strict-host-key-checking win over everything', () => {
    const config = parseConfig({ ssh: { strictHostKeyChecking: 'yes' }, hosts: [{ name: 'web1' }] }, undefined, '/p');
    const t = resolveSshTarget(config, config.hosts[0]!, { ...options, extraKnownHosts: ['/cli/kh'], strictHostKeyChecking: 'no' });
    expect(t.strictHostKeyChecking).to.equal('no');
    expect(t.knownHostsFiles).to.deep.equal(['/cli/kh', '/kh/web']);
  });

  it('chains ProxyJump hops as `ssh -J gw,inner`: the first hop by its own ProxyJump, later hops not', () => {
    const [config, host] = hostOf({});
    const t = resolveSshTarget(config, host, options);
    expect(t.jumps.map((j) => `${j.name}=${j.user}@${j.address}:${j.port}`)).to.deep.equal([
      'outer=me@outer:2022',
      'gw=jump@192.0.2.1:22',
      'inner=me@inner:22',
    ]);
    // Each hop keeps its own known_hosts and host key checking (default here).
    expect(t.jumps[1]).to.include({ strictHostKeyChecking: 'yes', connectTimeoutMs: 15000 });
    expect(t.jumps[1]!.knownHostsFiles).to.deep.equal(['/home/me/.ssh/known_hosts']);
  });

  it("offers a hop its own keys (or ssh's defaults) and then the deployfile's key", () => {
    const t = withSsh({ identityFile: '/keys/deploy' });
    expect(t.jumps[1]!.identityFiles).to.deep.equal([...DEFAULT_IDENTITY_FILES, '/keys/deploy']);
    expect(t.identityFiles).to.deep.equal(['/keys/deploy']);
  });

  it('refuses a ProxyJump loop with a ConfigError', () => {
    expect(() => withSsh({}, {}, 'loop1')).to.throw(ConfigError, /ProxyJump for loop1 goes through more than 8 hops/);
  });

  it('treats a host built in code (no `explicit`) as written in full', () => {
    const [config] = hostOf({});
    const host: ResolvedHost = { name: 'web1', address: '127.0.0.9', port: 2222, user: 'root', roles: [], files: [], sudo: false };
    expect(resolveSshTarget(config, host, options)).to.include({ address: '127.0.0.9', port: 2222, user: 'root' });
  });
});

describe('hostConnectorOptions (the CLI glue)', () => {
  const output = (lines: string[]): Output => ({
    out: (l = '') => lines.push(`out ${l}`),
    err: (l = '') => lines.push(`err ${l}`),
    json: () => {},
    isTTY: false,
  });

  it('resolves --known-hosts and --ssh-config paths and passes --strict-host-key-checking', () => {
    const o = hostConnectorOptions({ knownHosts: ['kh', '/abs/kh'], sshConfig: 'cfg', strictHostKeyChecking: 'accept-new' }, output([]), { interactive: false });
    expect(o.extraKnownHosts).to.deep.equal([resolve('kh'), '/abs/kh']);
    expect(o.sshConfigFile).to.equal(resolve('cfg'));
    expect(o.strictHostKeyChecking).to.equal('accept-new');
    expect(o.passphrase).to.equal(undefined);
  });

  it('prints warnings on stderr', () => {
    const lines: string[] = [];
    hostConnectorOptions({}, output(lines), { interactive: false }).onWarning!('careful');
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^err .*warning:.* careful$/);
  });

  it('asks for a passphrase on a terminal, saying when the last one was wrong; Enter alone skips the key', async () => {
    const asked: string[] = [];
    const answers = ['s3cret', ''];
    const o = hostConnectorOptions({}, output([]), { interactive: true, ask: async (m) => (asked.push(m), answers.shift()!) });
    expect(await o.passphrase!('/k/id', 1)).to.equal('s3cret');
    expect(await o.passphrase!('/k/id', 2)).to.equal(undefined);
    expect(asked).to.deep.equal(['Passphrase for /k/id (Enter to skip):', 'Wrong passphrase. Passphrase for /k/id (Enter to skip):']);
  });
});
