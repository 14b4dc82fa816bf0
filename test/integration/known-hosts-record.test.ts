/**
 * Recording new host keys (accept-new) under a lock, checked with `ssh-keygen -F` as the oracle; and
 * reading the public half of encrypted keys (so an ssh-added key never prompts for its passphrase).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { recordHostKey } from '../../src/remote/known-hosts-record.js';
import { openSshPublicBlob } from '../../src/remote/ssh-auth.js';
import { makeTempDir } from '../helpers/cli.js';

function makeKey(dir: string, name: string, args: string[]): { blob: Buffer; line: string; file: string } {
  const file = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-C', name, '-f', file, ...args]);
  const [type, base64] = readFileSync(`${file}.pub`, 'utf8').trim().split(' ') as [string, string];
  return { blob: Buffer.from(base64, 'base64'), line: `${type} ${base64}`, file };
}

const found = (file: string, name: string) =>
  [...spawnSync('ssh-keygen', ['-F', name, '-f', file], { encoding: 'utf8' }).stdout.matchAll(/found: line (\d+)/g)].map((m) => Number(m[1]));

describe('recordHostKey (accept-new)', function () {
  this.timeout(30_000);
  let dir: string;
  let a: ReturnType<typeof makeKey>;
  let b: ReturnType<typeof makeKey>;
  before(async () => {
    dir = await makeTempDir();
    a = makeKey(dir, 'a', ['-t', 'ed25519', '-N', '']);
    b = makeKey(dir, 'b', ['-t', 'ed25519', '-N', '']);
  });

  it('appends `[address]:port` off port 22 and a bare address on 22, creating the directory and file', async () => {
    const file = join(dir, 'new', '.ssh', 'known_hosts');
    const first = await recordHostKey('web1', file, ['10.0.0.5', 'web1'], '10.0.0.5', 2201, a.blob);
    const second = await recordHostKey('db1', file, ['10.0.0.6', 'db1'], '10.0.0.6', 22, b.blob);
    expect(first).to.deep.equal({ file, line: 1, name: '[10.0.0.5]:2201', added: true });
    expect(second).to.deep.equal({ file, line: 2, name: '10.0.0.6', added: true });
    expect(readFileSync(file, 'utf8')).to.equal(`[10.0.0.5]:2201 ${a.line}\n10.0.0.6 ${b.line}\n`);
    expect(found(file, '[10.0.0.5]:2201')).to.deep.equal([1]);
    expect(found(file, '10.0.0.6')).to.deep.equal([2]);
    expect(found(file, '10.0.0.5')).to.deep.equal([]);
    expect(existsSync(`${file}.lock`)).to.equal(false);
  });

  it('adds a newline to a file that lacks one, and counts lines right', async () => {
    const file = join(dir, 'no-newline');
    writeFileSync(file, '# comment\nother.example ' + b.line);
    expect(await recordHostKey('h', file, ['h'], 'h', 22, a.blob)).to.include({ line: 3, added: true });
    expect(readFileSync(file, 'utf8')).to.equal(`# comment\nother.example ${b.line}\nh ${a.line}\n`);
    expect(found(file, 'h')).to.deep.equal([3]);
  });

  it('does not add a key that is already there (another run was first), and reports a different one as changed', async () => {
    const file = join(dir, 'present');
    writeFileSync(file, `[h]:2222 ${a.line}\n`);
    expect(await recordHostKey('h', file, ['h'], 'h', 2222, a.blob)).to.deep.equal({ file, line: 1, name: '[h]:2222', added: false });
    const changed = await recordHostKey('h', file, ['h'], 'h', 2222, b.blob);
    expect(changed).to.include({ status: 'changed' });
    expect(readFileSync(file, 'utf8')).to.equal(`[h]:2222 ${a.line}\n`);
  });

  it('records a key once when many connections race for it', async () => {
    const file = join(dir, 'race');
    const results = await Promise.all(Array.from({ length: 12 }, () => recordHostKey('h', file, ['10.1.1.1'], '10.1.1.1', 2200, a.blob)));
    expect(results.filter((r) => 'added' in r && r.added)).to.have.length(1);
    expect(readFileSync(file, 'utf8')).to.equal(`[10.1.1.1]:2200 ${a.line}\n`);
  });
});

describe('openSshPublicBlob', function () {
  this.timeout(30_000);
  it('reads the public key of encrypted (and plain) OpenSSH-format keys without the passphrase', async () => {
    const dir = await makeTempDir();
    for (const args of [['-t', 'ed25519'], ['-t', 'ecdsa'], ['-t', 'rsa', '-b', '2048']]) {
      const encrypted = makeKey(dir, `enc-${args[1]}`, [...args, '-N', 'secret']);
      expect(openSshPublicBlob(readFileSync(encrypted.file)), args[1]).to.deep.equal(encrypted.blob);
      const plain = makeKey(dir, `plain-${args[1]}`, [...args, '-N', '']);
      expect(openSshPublicBlob(readFileSync(plain.file)), args[1]).to.deep.equal(plain.blob);
    }
    // PEM keys carry no public half: undefined (the .pub file is used instead).
    const pem = makeKey(dir, 'pem', ['-t', 'rsa', '-b', '2048', '-m', 'PEM', '-N', 'secret']);
    expect(openSshPublicBlob(readFileSync(pem.file))).to.equal(undefined);
  });
});
