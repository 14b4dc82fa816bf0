// Which reload makes a real gunicorn, run under supervisord from <root>/current/bin/gunicorn, serve the
// release `current` was just switched to (issue 15)? Two releases built by hand (venv + pip, no
// vdeploy), `current` switched with `ln -s` + `mv -T` (rename(2)), as a deploy and a rollback do.
// The findings are documented in docs/deployfile.md ("Reloading gunicorn after a release switch").
// That the recommended reload (supervisorctl restart) serves each deploy and rollback made by vdeploy
// itself is releases-gunicorn.test.ts.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir } from '../helpers/cli.js';
import { SHARED_WHEELS } from '../helpers/paths.js';
import { startSupervisedGunicorn, type SupervisedGunicorn } from '../helpers/supervised-gunicorn.js';

const execFileAsync = promisify(execFile);
const ADDRESS = '127.0.0.9';

// `/` names the version; `/pid` the worker that answered (to see HUP replace it).
const appSource = (version: string) => `import os
VERSION = ${JSON.stringify(version)}
def application(environ, start_response):
    body = str(os.getpid()) if environ.get('PATH_INFO') == '/pid' else 'verapp ' + VERSION
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
`;

async function makeRelease(root: string, id: string, version: string, wheelDir: string): Promise<void> {
  const venv = join(root, 'releases', id);
  await buildWheel(wheelDir, { name: 'verapp', version, files: { 'verapp/__init__.py': appSource(version) } });
  await execFileAsync('/usr/bin/python3', ['-m', 'venv', venv]);
  const pip = [join(venv, 'bin', 'pip'), 'install', '--isolated', '--no-index', '--find-links', SHARED_WHEELS, '--find-links', wheelDir, 'gunicorn', `verapp==${version}`];
  await execFileAsync(pip[0]!, pip.slice(1), { env: { ...process.env, PIP_CONFIG_FILE: '/dev/null' } });
}

/** The atomic switch: a new symlink renamed over `current` (never `ln -sfn`, which unlinks first). */
async function switchTo(root: string, id: string): Promise<void> {
  await execFileAsync('sh', ['-c', 'ln -s "$1" "$2.tmp" && mv -T "$2.tmp" "$2"', 'sh', join(root, 'releases', id), join(root, 'current')]);
}

async function sh(command: string): Promise<void> {
  await execFileAsync('sh', ['-c', command]);
}

/** The first answer after the reload returned (a refused connection while gunicorn boots is no answer). */
async function firstAnswer(app: SupervisedGunicorn, path = '/'): Promise<string> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const body = await app.get(path);
    if (body !== undefined) return body;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${app.url}${path} did not answer within 60 s`);
}

/** argv[0] of the master: the interpreter the kernel took from the script's shebang. */
async function masterInterpreter(app: SupervisedGunicorn): Promise<string> {
  return (await readFile(`/proc/${await app.masterPid()}/cmdline`, 'utf8')).split('\0')[0]!;
}

describe('gunicorn under supervisord, run from <root>/current: the reload that follows a release switch', function () {
  this.timeout(300_000);
  let dir: string;
  let root: string;
  let app: SupervisedGunicorn | undefined;

  before(async () => {
    dir = await makeTempDir('vdeploy-gunicorn-');
    root = join(dir, 'srv', 'app');
    const wheelDir = join(dir, 'wheels');
    await makeRelease(root, 'r1', '1.0', wheelDir);
    await makeRelease(root, 'r2', '2.0', wheelDir);
    await switchTo(root, 'r1');
  });
  afterEach(async () => {
    await app?.stop();
    app = undefined;
  });

  it('kill -HUP alone keeps serving the OLD release: the master\'s interpreter is pinned by the shebang of current/bin/gunicorn', async () => {
    await switchTo(root, 'r1');
    app = await startSupervisedGunicorn({ dir: join(dir, 'sv-hup'), root, address: ADDRESS, module: 'verapp:application' });
    await app.waitForBody('verapp 1.0');
    expect(await masterInterpreter(app)).to.satisfy((p: string) => p.startsWith(`${root}/releases/r1/bin/python`));
    const master = await app.masterPid();
    const oldWorker = await firstAnswer(app, '/pid');

    await switchTo(root, 'r2');
    await sh(app.hupCommand);
    // HUP boots a new worker (forked from the same master) and stops the old one: wait for that.
    const deadline = Date.now() + 60_000;
    let worker = oldWorker;
    while (worker === oldWorker && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      worker = (await app.get('/pid')) ?? oldWorker;
    }
    expect(worker, 'HUP replaced the worker').to.not.equal(oldWorker);
    expect(await app.masterPid()).to.equal(master);
    expect(await firstAnswer(app), 'after HUP the new worker still imports release r1').to.equal('verapp 1.0');

    // The restart that follows does load r2.
    await sh(app.reloadCommand);
    expect(await firstAnswer(app)).to.equal('verapp 2.0');
  });

  it('started as current/bin/python -m gunicorn, HUP does load the switched-to release, with no failed request', async () => {
    await switchTo(root, 'r1');
    app = await startSupervisedGunicorn({ dir: join(dir, 'sv-module'), root, address: ADDRESS, module: 'verapp:application', launcher: 'module' });
    await app.waitForBody('verapp 1.0');
    // The interpreter path is not resolved: sys.prefix is <root>/current, so is sys.path.
    expect(await masterInterpreter(app)).to.equal(join(root, 'current', 'bin', 'python'));
    for (const [id, version] of [['r2', '2.0'], ['r1', '1.0']] as const) {
      await switchTo(root, id);
      let failed = 0;
      let seen = '';
      const poller = (async () => {
        const deadline = Date.now() + 60_000;
        while (seen !== `verapp ${version}` && Date.now() < deadline) {
          const body = await app!.get();
          if (body === undefined) failed++;
          else seen = body;
        }
      })();
      await sh(app.hupCommand);
      await poller;
      expect(seen, `after switching to ${id}`).to.equal(`verapp ${version}`);
      expect(failed, 'requests that failed during the reload').to.equal(0);
    }
  });
});
