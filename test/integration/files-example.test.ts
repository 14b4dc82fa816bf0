// deployfile.example.ts's config files (issue 17, docs/files.md) render as the example says: a copy of the
// example with vdeploy's examples/etc/ beside it as etc/ (what the README's tour does), loaded as the CLI
// loads a deployfile, rendered for each host by the same code a plan runs before it connects.
import { expect } from 'chai';
import { cp, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadDeployfile } from '../../src/config/load-deployfile.js';
import { desiredFilesForHosts } from '../../src/files/desired-files.js';
import { makeTempDir } from '../helpers/cli.js';
import { REPO_ROOT } from '../helpers/paths.js';

describe('deployfile.example.ts: its etc/ example renders', () => {
  it('web1 gets the supervisord program for gunicorn from the app root\'s current release; worker1 the systemd unit', async () => {
    const dir = await makeTempDir('vdeploy-files-example-');
    await copyFile(join(REPO_ROOT, 'deployfile.example.ts'), join(dir, 'deployfile.ts'));
    await cp(join(REPO_ROOT, 'examples', 'etc'), join(dir, 'etc'), { recursive: true });
    const config = await loadDeployfile({ cwd: dir });
    const files = await desiredFilesForHosts(config, config.hosts);

    const web = files.get('web1')!;
    expect(web.sudo, 'login user deploy, sudo: true').to.equal(true);
    expect(web.files.map((f) => [f.dest, f.mode.toString(8), f.owner, f.group])).to.deep.equal([['/etc/supervisor/conf.d/mysite.conf', '644', 'root', 'root']]);
    const program = web.files[0]!.content.toString('utf8');
    expect(program).to.include('command=/srv/app/current/bin/gunicorn --bind 127.0.0.1:8000 --workers 4 ');
    expect(program).to.include('user=app\n').and.include('environment=DJANGO_SETTINGS_MODULE="mysite.settings"\n');
    expect(web.files[0]!.onChange).to.deep.equal(['supervisorctl reread', 'supervisorctl update']);

    const worker = files.get('worker1')!;
    expect(worker.files.map((f) => f.dest)).to.deep.equal(['/etc/systemd/system/mysite-worker.service']);
    const unit = worker.files[0]!.content.toString('utf8');
    expect(unit).to.include('ExecStart=/srv/worker/current/bin/python -m mysite.worker --concurrency 2\n');
    expect(unit).to.include('User=deploy\n');
  });
});
