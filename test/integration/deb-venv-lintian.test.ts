/**
 * lintian on a .deb holding a real venv (issue 19): a venv with real wheels (gunicorn, requests and
 * its pure and compiled dependencies) packed under /opt/NAME/venv, with a systemd unit, reports no lintian error or
 * warning beyond the tags docs/packages.md accepts for every package, venv packages and services. The venv
 * is moved by rewriting its staging path in every file, which is enough for lintian (the package
 * command's own tests prove the real relocation).
 */
import { execFile } from 'node:child_process';
import { lstat, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { debFileName, writeDeb } from '../../src/package/deb.js';
import type { TreeEntry } from '../../src/package/tree.js';
import { makeTempDir } from '../helpers/cli.js';
import { testMeta, TEST_EPOCH } from '../helpers/deb-tree.js';
import { ACCEPTED_LINTIAN_TAGS, lintian, SERVICE_LINTIAN_TAGS, VENV_LINTIAN_TAGS } from '../helpers/lintian.js';
import { SHARED_WHEELS } from '../helpers/paths.js';

const exec = promisify(execFile);
const PREFIX = '/opt/vdeploy-test-venv';

async function treeOf(dir: string, dest: string, staging: string, out: TreeEntry[]): Promise<void> {
  for (const name of (await readdir(dir)).sort()) {
    const path = join(dir, name);
    const target = `${dest}/${name}`;
    const st = await lstat(path);
    if (st.isSymbolicLink()) out.push({ kind: 'symlink', path: target, target: await readlink(path) });
    else if (st.isDirectory()) {
      out.push({ kind: 'dir', path: target, mode: st.mode & 0o7777 });
      await treeOf(path, target, staging, out);
    } else {
      const content = Buffer.from((await readFile(path)).toString('latin1').replaceAll(staging, `${PREFIX}/venv`), 'latin1');
      out.push({ kind: 'file', path: target, mode: st.mode & 0o7777, content });
    }
  }
}

describe('lintian on a .deb with a real venv', function () {
  this.timeout(300_000);

  it('reports nothing beyond the accepted tags', async () => {
    const dir = await makeTempDir('vdeploy-deb-venv-');
    const venv = join(dir, 'venv');
    await exec('/usr/bin/python3', ['-m', 'venv', venv]);
    await exec(join(venv, 'bin', 'pip'), ['install', '--isolated', '--no-index', '--find-links', SHARED_WHEELS, 'gunicorn', 'requests', 'markupsafe']);
    const version = (await exec('/usr/bin/python3', ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'])).stdout.trim();
    const entries: TreeEntry[] = [{ kind: 'dir', path: PREFIX, mode: 0o755 }, { kind: 'dir', path: `${PREFIX}/venv`, mode: 0o755 }];
    await treeOf(venv, `${PREFIX}/venv`, venv, entries);
    const unit = '[Unit]\nDescription=test app\n\n[Service]\nExecStart=/opt/vdeploy-test-venv/venv/bin/gunicorn app:app\n\n[Install]\nWantedBy=multi-user.target\n';
    entries.push({ kind: 'file', path: '/lib/systemd/system/vdeploy-test-venv.service', mode: 0o644, content: Buffer.from(unit) });
    entries.push({ kind: 'file', path: '/etc/vdeploy-test-venv/app.conf', mode: 0o644, content: Buffer.from('workers=2\n') });
    const meta = testMeta({
      name: 'vdeploy-test-venv',
      architecture: 'amd64',
      description: '',
      depends: [`python${version}`, `python3 (>= ${version})`, `python3 (<< 3.${Number(version.split('.')[1]) + 1})`],
    });
    const guard = (body: string) => `if [ -d /run/systemd/system ]; then\n${body}fi\n`;
    const deb = join(dir, debFileName(meta));
    await writeFile(deb, await writeDeb({
      meta,
      entries,
      conffiles: ['/etc/vdeploy-test-venv/app.conf'],
      scripts: {
        postinst: guard('  systemctl daemon-reload\n  systemctl enable vdeploy-test-venv.service\n  systemctl restart vdeploy-test-venv.service\n'),
        prerm: guard('  systemctl stop vdeploy-test-venv.service || true\n'),
      },
      mtime: TEST_EPOCH,
    }));
    const { tags, output } = await lintian(deb, [ACCEPTED_LINTIAN_TAGS, VENV_LINTIAN_TAGS, SERVICE_LINTIAN_TAGS].flatMap((t) => Object.keys(t)));
    expect(tags.filter((t) => t.severity === 'E' || t.severity === 'W'), output).to.deep.equal([]);
  });
});
