/**
 * A .deb from writeDeb installed for real with dpkg (issue 19): files, modes and the symlink land under
 * the prefix; the maintainer scripts run with the arguments dpkg gives them; a conffile the user edited
 * is kept on upgrade (silently when the package's version is unchanged, as .dpkg-dist beside it with
 * --force-confold when it changed); `dpkg -r` leaves the conffile, `dpkg --purge` removes everything.
 * The package name and prefix are this test's own (vdeploy-test-deb-PID under /opt); after() purges them.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { debFileName, writeDeb } from '../../src/package/deb.js';
import { makeTempDir } from '../helpers/cli.js';
import { LONG_DIR, syntheticTree } from '../helpers/deb-tree.js';

const exec = promisify(execFile);
const NAME = `vdeploy-test-deb-${process.pid}`;
const PREFIX = `/opt/${NAME}`;
const ETC = `/etc/${NAME}`;
const CONF = `${ETC}/app.conf`;

/** dpkg, retried while another process (another test, apt) holds dpkg's lock: polls, up to 5 minutes. */
async function dpkg(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      return await exec('dpkg', args, { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    } catch (err) {
      const stderr = String((err as { stderr?: string }).stderr ?? '');
      if (!/lock/i.test(stderr) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

const installed = async () => (await exec('dpkg-query', ['-W', '-f', '${Status}', NAME]).catch(() => ({ stdout: '' }))).stdout;

describe('a .deb installed with dpkg -i, upgraded and purged (real dpkg, root)', function () {
  this.timeout(600_000);
  let dir: string;
  let log: string;

  const build = async (version: string, hello: string, confText: string) => {
    const scripts = Object.fromEntries(
      ['postinst', 'prerm', 'postrm'].map((s) => [s, `echo "${s} $*" >> ${log}\n${s === 'postinst' ? `test -f ${CONF}\n${PREFIX}/bin/hello >> ${log}\n` : ''}`]),
    );
    const tree = syntheticTree({ name: NAME, version, prefix: PREFIX, conffile: CONF, confText, hello, scripts });
    const path = join(dir, debFileName(tree.meta));
    await writeFile(path, await writeDeb(tree));
    return { tree, path };
  };
  const logLines = async () => (await readFile(log, 'utf8')).trim().split('\n');

  before(async function () {
    if (process.getuid?.() !== 0) this.skip();
    dir = await makeTempDir('vdeploy-deb-install-');
    log = join(dir, 'scripts.log');
    expect(await installed(), `${NAME} is installed before the test`).to.equal('');
    expect(existsSync(PREFIX) || existsSync(ETC), `${PREFIX} or ${ETC} exists before the test`).to.equal(false);
  });

  after(async () => {
    if (process.getuid?.() !== 0) return;
    if ((await installed()) !== '') await dpkg(['--purge', NAME]);
    await rm(PREFIX, { recursive: true, force: true });
    await rm(ETC, { recursive: true, force: true });
  });

  it('installs the tree, runs postinst configure with the conffile in place, and records the conffile', async () => {
    const { tree, path } = await build('1.0', 'hello v1', 'greeting=hello\n');
    await dpkg(['-i', path]);
    expect(await installed()).to.equal('install ok installed');
    for (const e of tree.entries) {
      const st = await lstat(e.path);
      if (e.kind === 'file') expect([(await readFile(e.path)).equals(e.content), st.mode & 0o7777, st.uid], e.path).to.deep.equal([true, e.mode, 0]);
      else if (e.kind === 'symlink') expect(await readlink(e.path)).to.equal(e.target);
      else expect(st.isDirectory(), e.path).to.equal(true);
    }
    expect(existsSync(`${PREFIX}/${LONG_DIR}/long-file-name.txt`)).to.equal(true);
    expect((await exec(`${PREFIX}/current`)).stdout).to.equal('hello v1\n');
    // A first install: dpkg passes `configure` and an empty most-recently-configured version.
    expect(await logLines()).to.deep.equal(['postinst configure ', 'hello v1']);
    const conffiles = (await exec('dpkg-query', ['-W', '-f', '${Conffiles}', NAME])).stdout.trim();
    expect(conffiles).to.match(new RegExp(`^${CONF} [0-9a-f]{32}$`));
    // md5sums are right: dpkg --verify reports nothing for an untouched install.
    expect((await exec('dpkg', ['--verify', NAME])).stdout).to.equal('');
  });

  it('upgrades, keeping the conffile the user edited when the package did not change it', async () => {
    await writeFile(CONF, 'greeting=edited by the admin\n');
    const verify = await exec('dpkg', ['--verify', NAME]).catch((e: { stdout: string }) => e);
    expect(verify.stdout).to.match(new RegExp(`^\\?\\?5\\?\\?\\?\\?\\?\\? c ${CONF}$`, 'm'));
    await writeFile(log, '');
    const { path } = await build('1.1', 'hello v2', 'greeting=hello\n');
    await dpkg(['-i', path]);
    expect(await readFile(CONF, 'utf8')).to.equal('greeting=edited by the admin\n');
    expect((await exec(`${PREFIX}/bin/hello`)).stdout).to.equal('hello v2\n');
    expect(await logLines()).to.deep.equal(['prerm upgrade 1.1-1', 'postrm upgrade 1.1-1', 'postinst configure 1.0-1', 'hello v2']);
  });

  it('with a changed default and --force-confold, keeps the edit and puts the new default beside it', async () => {
    const { path } = await build('1.2', 'hello v3', 'greeting=hello\ncolour=blue\n');
    await dpkg(['--force-confdef', '--force-confold', '-i', path]);
    expect(await readFile(CONF, 'utf8')).to.equal('greeting=edited by the admin\n');
    expect(await readFile(`${CONF}.dpkg-dist`, 'utf8')).to.equal('greeting=hello\ncolour=blue\n');
    expect((await exec('dpkg-query', ['-W', '-f', '${Version}', NAME])).stdout).to.equal('1.2-1');
  });

  it('dpkg -r removes the files but keeps the conffile; --purge removes it and runs postrm purge', async () => {
    await writeFile(log, '');
    await dpkg(['-r', NAME]);
    expect(existsSync(`${PREFIX}/bin/hello`)).to.equal(false);
    expect(existsSync(CONF)).to.equal(true);
    expect(await logLines()).to.deep.equal(['prerm remove', 'postrm remove']);
    await dpkg(['--purge', NAME]);
    expect(await installed()).to.equal('');
    expect([existsSync(PREFIX), existsSync(ETC)]).to.deep.equal([false, false]);
    expect(await logLines()).to.deep.equal(['prerm remove', 'postrm remove', 'postrm purge']);
  });
});
