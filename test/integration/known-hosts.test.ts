import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ConfigError, ConnectError } from '../../src/errors.js';
import { describeKeyType, hostKeyError, judgeHostKey, orderHostKeyAlgorithms, type HostKeyContext } from '../../src/remote/host-key-check.js';
import {
  fingerprintSha256,
  hostPortName,
  keyTypeOf,
  loadKnownHosts,
  matchPatternList,
  parseKnownHosts,
  type HostKeyVerdict,
} from '../../src/remote/known-hosts.js';

interface TestKey {
  /** "type base64", as in known_hosts */
  line: string;
  type: string;
  blob: Buffer;
  pubFile: string;
}

let dir: string;
const keys: Record<'ed1' | 'ed2' | 'ecdsa' | 'rsa', TestKey> = {} as never;

function makeKey(name: string, args: string[]): TestKey {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-N', '', '-C', name, '-f', file, ...args]);
  const [type, base64] = readFileSync(`${file}.pub`, 'utf8').trim().split(' ') as [string, string];
  return { line: `${type} ${base64}`, type, blob: Buffer.from(base64, 'base64'), pubFile: `${file}.pub` };
}

/** Line numbers `ssh-keygen -F name -f file` reports: the oracle for lookups. */
function oracleLines(file: string, host: string, port: number): number[] {
  const out = spawnSync('ssh-keygen', ['-F', hostPortName(host, port), '-f', file], { encoding: 'utf8' }).stdout;
  return [...out.matchAll(/found: line (\d+)/g)].map((m) => Number(m[1]));
}

function ourLines(file: string, host: string, port: number): number[] {
  return loadKnownHosts([file]).lookup([host], port).map((e) => e.line);
}

const QUERIES: Array<[string, number]> = [
  ['127.0.0.2', 22],
  ['127.0.0.2', 2222],
  ['127.0.0.2', 2201],
  ['127.0.0.3', 22],
  ['127.0.0.3', 2201],
  ['127.0.0.10', 22],
  ['host1', 22],
  ['HOST1', 22],
  ['host1', 2201],
  ['host2', 2202],
  ['host2', 2201],
  ['a.example.com', 22],
  ['bad.example.com', 22],
  ['example.com', 22],
  ['indented.example.org', 22],
  ['bighost.example.com', 22],
  ['x.example.net', 22],
  ['x.internal.example.net', 22],
  ['revoked.example.net', 22],
  ['nothing.test', 22],
];

describe('known-hosts', () => {
  before(function () {
    this.timeout(30_000);
    dir = mkdtempSync(path.join(os.tmpdir(), 'vdeploy-kh-'));
    keys.ed1 = makeKey('ed1', ['-t', 'ed25519']);
    keys.ed2 = makeKey('ed2', ['-t', 'ed25519']);
    keys.ecdsa = makeKey('ecdsa', ['-t', 'ecdsa']);
    keys.rsa = makeKey('rsa', ['-t', 'rsa', '-b', '2048']);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('fingerprintSha256 and keyTypeOf', () => {
    for (const name of ['ed1', 'ecdsa', 'rsa'] as const) {
      it(`prints the ${name} fingerprint exactly as ssh-keygen -lf does`, () => {
        const key = keys[name];
        const printed = execFileSync('ssh-keygen', ['-lf', key.pubFile], { encoding: 'utf8' }).split(' ')[1];
        expect(fingerprintSha256(key.blob)).to.equal(printed);
        expect(keyTypeOf(key.blob)).to.equal(key.type);
      });
    }

    it('returns null for a malformed blob', () => {
      expect(keyTypeOf(Buffer.from([0, 0]))).to.equal(null);
      expect(keyTypeOf(Buffer.from([0, 0, 0, 9, 0x61]))).to.equal(null);
    });
  });

  describe('lookups agree with ssh-keygen -F', () => {
    it('for plain names, [host]:port, comma lists, wildcards, negation and markers', () => {
      const file = path.join(dir, 'plain');
      writeFileSync(
        file,
        [
          '# a comment',
          '',
          `127.0.0.2 ${keys.ed1.line}`,
          `[127.0.0.2]:2222 ${keys.ed2.line}`,
          `host1,127.0.0.3 ${keys.ecdsa.line}`,
          `*.example.com,!bad.example.com ${keys.rsa.line}`,
          `[127.0.0.*]:2201 ${keys.ed1.line}`,
          `127.0.0.? ${keys.ed2.line}`,
          `@revoked revoked.example.net ${keys.ecdsa.line}`,
          `@cert-authority *.example.com ${keys.ed1.line}`,
          `   indented.example.org ${keys.ed1.line} a trailing comment`,
          `[127.0.0.2]:22 ${keys.ed1.line}`,
          `BigHost.Example.COM ${keys.ed2.line}`,
          `@bogus host1 ${keys.ed1.line}`,
          `*.Example.NET,!*.internal.example.net ${keys.ed1.line}`,
          `[host1]:2201,[host2]:2202 ${keys.ed2.line}\r`,
          '',
        ].join('\n'),
      );
      for (const [host, port] of QUERIES) {
        expect(ourLines(file, host, port), `${host} port ${port}`).to.deep.equal(oracleLines(file, host, port));
      }
      // Spot-check that the oracle really exercised the interesting cases.
      expect(ourLines(file, 'a.example.com', 22)).to.deep.equal([6, 10]);
      expect(ourLines(file, 'bad.example.com', 22)).to.deep.equal([10]);
      expect(ourLines(file, '127.0.0.2', 2201)).to.deep.equal([7]);
      expect(ourLines(file, 'host2', 2202)).to.deep.equal([16]);
    });

    it('for hashed entries written by ssh-keygen -H', () => {
      const file = path.join(dir, 'hashed');
      writeFileSync(
        file,
        [
          `127.0.0.2 ${keys.ed1.line}`,
          `[127.0.0.2]:2222 ${keys.ed2.line}`,
          `host1,127.0.0.3 ${keys.ecdsa.line}`,
          '# comment',
          `[host1]:2201 ${keys.ed2.line}`,
          '',
        ].join('\n'),
      );
      execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
      const entries = loadKnownHosts([file]).entries;
      expect(entries).to.have.length(5); // the comma list became two hashed lines
      expect(entries.every((e) => /^\|1\|[^|]+\|[^|]+$/.test(e.hosts))).to.equal(true);
      // ssh lowercases the host before hashing it; `ssh-keygen -F` hashes the name as typed, so
      // upper-case queries only agree with ssh itself, not with this oracle.
      for (const [host, port] of QUERIES.filter(([h]) => h === h.toLowerCase())) {
        expect(ourLines(file, host, port), `${host} port ${port}`).to.deep.equal(oracleLines(file, host, port));
      }
      expect(ourLines(file, 'host1', 22)).to.have.length(1);
      expect(ourLines(file, 'HOST1', 22)).to.have.length(1);
    });
  });

  describe('matchPatternList', () => {
    const cases: Array<[string, string, 1 | 0 | -1]> = [
      ['a.example.com', '*.example.com', 1],
      ['example.com', '*.example.com', 0],
      ['bad.example.com', '*.example.com,!bad.example.com', -1],
      ['bad.example.com', '!bad.example.com', -1],
      ['other', '!bad.example.com', 0],
      ['127.0.0.2', '127.0.0.?', 1],
      ['127.0.0.22', '127.0.0.?', 0],
      ['[127.0.0.2]:2201', '[127.0.0.*]:2201', 1],
      ['host1', 'HOST1', 1],
      ['a.b', 'a?b', 1],
      ['a+b', 'a+b', 1],
    ];
    for (const [name, list, expected] of cases) {
      it(`${name} vs ${list} → ${expected}`, () => expect(matchPatternList(name, list)).to.equal(expected));
    }
  });

  describe('parsing', () => {
    it('skips malformed lines the way ssh does', () => {
      const text = [
        `good ${keys.ed1.line}`,
        `mismatch ssh-rsa ${keys.ed1.line.split(' ')[1]}`,
        'badb64 ssh-ed25519 not*base64',
        'ssh1 2048 65537 12345678901234567890',
        'truncated',
        `truncated2 ssh-ed25519`,
        `@revoked`,
      ].join('\n');
      const entries = parseKnownHosts(text, 'f');
      expect(entries.map((e) => [e.hosts, e.line])).to.deep.equal([['good', 1]]);
    });

    it('keeps file and line for each entry across several files; missing files are empty', () => {
      const a = path.join(dir, 'a');
      const b = path.join(dir, 'b');
      writeFileSync(a, `x ${keys.ed1.line}\n`);
      writeFileSync(b, `# c\ny ${keys.ed2.line}\n`);
      const kh = loadKnownHosts([path.join(dir, 'missing'), a, b, path.join(dir, 'a', 'not-a-dir')]);
      expect(kh.entries.map((e) => [e.file, e.line, e.hosts])).to.deep.equal([
        [a, 1, 'x'],
        [b, 2, 'y'],
      ]);
      expect(kh.paths).to.have.length(4);
    });

    it('refuses an unreadable known_hosts (a directory) with a ConfigError naming it', () => {
      const sub = path.join(dir, 'is-a-dir');
      mkdirSync(sub, { recursive: true });
      expect(() => loadKnownHosts([sub])).to.throw(ConfigError, sub);
    });
  });

  describe('check', () => {
    let file: string;
    before(() => {
      file = path.join(dir, 'check');
      writeFileSync(
        file,
        [
          `127.0.0.2 ${keys.ed1.line}`,
          `[127.0.0.2]:2201 ${keys.ecdsa.line}`,
          `host1 ${keys.ed1.line}`,
          `@revoked * ${keys.rsa.line}`,
          `@cert-authority * ${keys.ed2.line}`,
          `[127.0.0.5]:2201 ${keys.ed2.line}`,
          `[host7]:2201 ${keys.ed1.line}`,
          '',
        ].join('\n'),
      );
    });

    const cases: Array<[string, string[], number, keyof typeof keys, (v: HostKeyVerdict) => void]> = [
      ['the known key matches', ['127.0.0.2'], 22, 'ed1', (v) => expect(v).to.deep.equal({ status: 'match' })],
      ['a key on a non-22 port matches under [addr]:port', ['127.0.0.2'], 2201, 'ecdsa', (v) => expect(v.status).to.equal('match')],
      ['another key of the same type is changed', ['127.0.0.2'], 22, 'ed2', (v) => {
        expect(v.status).to.equal('changed');
        if (v.status === 'changed') expect(v.known).to.include({ line: 1, keyType: 'ssh-ed25519', fingerprint: fingerprintSha256(keys.ed1.blob) });
      }],
      ['a key of a different type is changed', ['127.0.0.2'], 2201, 'ed1', (v) => {
        expect(v.status).to.equal('changed');
        if (v.status === 'changed') expect(v.known).to.include({ line: 2, keyType: 'ecdsa-sha2-nistp256' });
      }],
      ['an unlisted host is unknown (cert-authority lines do not count)', ['127.0.0.9'], 22, 'ed2', (v) => expect(v).to.deep.equal({ status: 'unknown' })],
      ['a revoked key is refused even where it is otherwise unknown', ['127.0.0.9'], 22, 'rsa', (v) => expect(v).to.include({ status: 'revoked', line: 4 })],
      ['a revoked key is refused for a known host', ['127.0.0.2'], 22, 'rsa', (v) => expect(v.status).to.equal('revoked')],
      ['the host name is consulted as well as the address', ['127.0.0.9', 'host1'], 22, 'ed1', (v) => expect(v.status).to.equal('match')],
      ['a match under either name wins over a different key under the other', ['127.0.0.5', 'host7'], 2201, 'ed1', (v) => expect(v.status).to.equal('match')],
      ['without that name the other key means changed', ['127.0.0.5'], 2201, 'ed1', (v) => expect(v.status).to.equal('changed')],
    ];
    for (const [title, names, port, key, verify] of cases) {
      it(title, () => verify(loadKnownHosts([file]).check(names, port, keys[key].type, keys[key].blob)));
    }
  });

  describe('host key verdict → error', () => {
    const ctx: HostKeyContext = { host: 'web1', address: '127.0.0.2', port: 2201, strictHostKeyChecking: 'yes' };
    const paths = ['/home/me/.ssh/known_hosts'];

    it('accepts a match', () => {
      expect(hostKeyError({ status: 'match' }, ctx, keys.ed1.blob, paths)).to.equal(null);
    });

    it('refuses an unknown key with the fingerprint, the keyscan command and the host-side check', () => {
      const err = hostKeyError({ status: 'unknown' }, ctx, keys.ed1.blob, paths)!;
      expect(err).to.be.instanceOf(ConnectError);
      expect(err.host).to.equal('web1');
      expect(err.message).to.include('web1 (127.0.0.2:2201)').and.include(fingerprintSha256(keys.ed1.blob)).and.include('ED25519');
      expect(err.message).to.not.include('\n');
      expect(err.hint).to.include('ssh-keyscan -p 2201 127.0.0.2 >> /home/me/.ssh/known_hosts');
      expect(err.hint).to.include('ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub');
    });

    it('names the ecdsa host key file for an ecdsa key', () => {
      const err = hostKeyError({ status: 'unknown' }, ctx, keys.ecdsa.blob, paths)!;
      expect(err.hint).to.include('/etc/ssh/ssh_host_ecdsa_key.pub');
    });

    it("lets an unknown key through with 'no' (to warn about) and 'accept-new' (to record)", () => {
      expect(hostKeyError({ status: 'unknown' }, { ...ctx, strictHostKeyChecking: 'no' }, keys.ed1.blob, paths)).to.equal(null);
      expect(hostKeyError({ status: 'unknown' }, { ...ctx, strictHostKeyChecking: 'accept-new' }, keys.ed1.blob, paths)).to.equal(null);
    });

    it('gives a host behind a jump host the exact known_hosts line to add (keyscan cannot reach it)', () => {
      const err = hostKeyError({ status: 'unknown' }, { ...ctx, port: 22, via: 'bastion' }, keys.ed1.blob, paths)!;
      expect(err.message).to.include('web1 (127.0.0.2:22 via bastion)');
      expect(err.hint).to.include(`\`echo '127.0.0.2 ${keys.ed1.line}' >> /home/me/.ssh/known_hosts\``);
      expect(err.hint).to.not.include('ssh-keyscan');
    });

    it('refuses a changed key showing both fingerprints and the file:line, even when not strict', () => {
      const verdict: HostKeyVerdict = {
        status: 'changed',
        known: { file: '/kh', line: 7, keyType: 'ssh-ed25519', fingerprint: fingerprintSha256(keys.ed1.blob) },
      };
      for (const strict of ['yes', 'accept-new', 'no'] as const) {
        const err = hostKeyError(verdict, { ...ctx, strictHostKeyChecking: strict }, keys.ed2.blob, paths)!;
        expect(err).to.be.instanceOf(ConnectError);
        expect(err.message).to.include('CHANGED').and.include('/kh:7');
        expect(err.message).to.include(fingerprintSha256(keys.ed1.blob)).and.include(fingerprintSha256(keys.ed2.blob));
        expect(err.hint).to.include('delete line 7 of /kh');
      }
    });

    it('refuses a revoked key, even when not strict', () => {
      const err = hostKeyError({ status: 'revoked', file: '/kh', line: 3 }, { ...ctx, strictHostKeyChecking: 'no' }, keys.rsa.blob, paths)!;
      expect(err.message).to.include('revoked').and.include('/kh:3').and.include('RSA');
    });

    it('judgeHostKey looks up the address and the host name at the port', () => {
      const file = path.join(dir, 'judge');
      writeFileSync(file, `[web1]:2201 ${keys.ed1.line}\n`);
      expect(judgeHostKey(loadKnownHosts([file]), ctx, keys.ed1.blob).status).to.equal('match');
      expect(judgeHostKey(loadKnownHosts([file]), { ...ctx, port: 22 }, keys.ed1.blob).status).to.equal('unknown');
    });

    it('describes key types as OpenSSH does', () => {
      expect([keys.ed1, keys.ecdsa, keys.rsa].map((k) => describeKeyType(k.type))).to.deep.equal(['ED25519', 'ECDSA', 'RSA']);
    });
  });

  describe('orderHostKeyAlgorithms', () => {
    it('keeps the default order when nothing is known', () => {
      expect(orderHostKeyAlgorithms([])[0]).to.equal('ssh-ed25519');
    });
    it('asks first for the types known_hosts has (rsa covers the rsa-sha2 signatures)', () => {
      const order = orderHostKeyAlgorithms(['ssh-rsa']);
      expect(order.slice(0, 3)).to.deep.equal(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
      expect(order).to.have.length(7);
      expect(orderHostKeyAlgorithms(['ecdsa-sha2-nistp256'])[0]).to.equal('ecdsa-sha2-nistp256');
    });
  });
});
