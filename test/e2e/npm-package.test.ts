// The published package, as a user gets it: `npm pack`, `npm install -g` of the tarball into a clean
// prefix, then the installed `vdeploy` (its own shebang, its own node_modules) run from a directory
// outside the repository: --version, init, add-wheel and a deploy to a real sshd host. Nothing here
// resolves from the repository's node_modules or dist/.
//
// `node` is whatever runs this test (its directory comes first on PATH), so under scripts/test.mjs's
// node22/node24 tiers this is the deploy smoke on those Node versions. npm install fetches the
// dependencies from the registry (--prefer-offline: from npm's cache when it has them). Without a
// network it fails under CI=true, and is skipped with the reason otherwise.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, realpath, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir, type CliResult } from '../helpers/cli.js';
import { startFleet, type Fleet } from '../helpers/fleet.js';
import { REPO_ROOT, SHARED_WHEELS } from '../helpers/paths.js';

/** npm's words for "the registry could not be reached". */
const OFFLINE = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network/i;

// Not a top-level await: a test module with one gets its own copy of test/support/hooks.ts, whose
// afterAll then never removes the temporary directories made through it.
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** Runs argv with this Node first on PATH and no NODE_PATH, as a user's shell would. */
function run(argv: string[], cwd: string, timeoutMs = 300_000): Promise<CliResult> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    NODE_PATH: undefined,
    NO_COLOR: '1',
    SSH_AUTH_SOCK: undefined,
  };
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve({ exitCode, stdout, stderr });
    });
  });
}

describe(`the npm package, installed with npm install -g, on Node ${process.versions.node}`, function () {
  this.timeout(600_000);
  let fleet: Fleet | undefined;
  let tmp: string;
  let vdeploy: string;

  before(async function () {
    tmp = await makeTempDir('vdeploy-npm-package-');
    // --ignore-scripts: dist/ is already built (npm test builds first); prepack would rebuild it.
    const pack = await run(['npm', 'pack', '--ignore-scripts', '--json', '--pack-destination', tmp], REPO_ROOT, 60_000);
    expect(pack.exitCode, pack.stderr).to.equal(0);
    const tarball = join(tmp, (JSON.parse(pack.stdout) as Array<{ filename: string }>)[0]!.filename);
    const started = Date.now();
    const install = await run(['npm', 'install', '--global', '--prefix', join(tmp, 'prefix'), '--prefer-offline', '--no-audit', '--no-fund', tarball], tmp);
    if (install.exitCode !== 0 && OFFLINE.test(install.stderr) && process.env.CI !== 'true') {
      const why = install.stderr.split('\n').filter((l) => /^npm error (code |\w*Error: )/.test(l));
      console.log(`    skipped: npm install -g could not reach the registry (under CI=true this fails):\n    ${why.join('\n    ')}`);
      this.skip();
    }
    expect(install.exitCode, `npm install -g failed:\n${install.stderr}`).to.equal(0);
    console.log(`    (npm install -g of the tarball: ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    vdeploy = join(tmp, 'prefix', 'bin', 'vdeploy');
    fleet = await startFleet({ hosts: 1, venvsPerHost: 1 });
  });
  after(async () => fleet?.stop());

  it('is the installed copy, not the repository, and prints its version', async () => {
    expect(await realpath(vdeploy)).to.equal(join(await realpath(tmp), 'prefix', 'lib', 'node_modules', 'vdeploy', 'dist', 'cli', 'main.js'));
    const node = await run(['node', '-p', 'process.version'], tmp);
    expect(node.stdout.trim(), 'the `node` the installed bin runs with').to.equal(process.version);
    const r = await run([vdeploy, '--version'], tmp);
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal(VERSION);
  });

  it('init, add-wheel and deploy from a directory outside the repository; a second deploy is a no-op', async () => {
    const f = fleet!;
    const host = f.hosts[0]!;
    const venv = host.venvs[0]!;
    const project = join(tmp, 'project');
    await mkdir(project);

    const init = await run([vdeploy, 'init'], project);
    expect(init.exitCode, init.stderr).to.equal(0);
    expect((await readdir(project)).sort()).to.deep.equal(['deployfile.ts', 'requirements.txt', 'wheels']);
    // What a user does next: point the deployfile at their hosts (it keeps init's `import ... from 'vdeploy'`).
    const starter = await readFile(join(project, 'deployfile.ts'), 'utf8');
    expect(starter).to.match(/^import \{ defineConfig \} from 'vdeploy';/);
    const config = {
      wheels: './wheels',
      requirements: './requirements.txt',
      ssh: { knownHosts: f.knownHostsPath, identityFile: f.clientKeyPath, strictHostKeyChecking: 'yes' },
      hosts: [{ name: host.name, address: host.address, port: host.port, user: f.user, wheelCache: join(host.root, 'wheel-cache') }],
      venvs: [{ host: host.name, path: venv, python: '/usr/bin/python3' }],
    };
    await writeFile(join(project, 'deployfile.ts'), `import { defineConfig } from 'vdeploy';\n\nexport default defineConfig(${JSON.stringify(config, null, 2)});\n`);
    await writeFile(join(project, 'requirements.txt'), 'smokeapp\n');

    const sqlparse = (await readdir(SHARED_WHEELS)).find((n) => n.startsWith('sqlparse-'))!;
    const app = await buildWheel(join(tmp, 'dist'), { name: 'smokeapp', version: '1.0', requiresDist: ['sqlparse'] });
    const add = await run([vdeploy, 'add-wheel', app, join(SHARED_WHEELS, sqlparse)], project);
    expect(add.exitCode, add.stderr).to.equal(0);

    const deploy = await run([vdeploy, 'deploy', '--yes'], project);
    expect(deploy.exitCode, `${deploy.stdout}\n${deploy.stderr}`).to.equal(0);
    const check = await f.exec(host, [join(venv, 'bin', 'python'), '-c', 'import smokeapp, sqlparse; print(smokeapp.__version__, sqlparse.__version__)']);
    expect(check.stdout.trim()).to.equal(`1.0 ${sqlparse.split('-')[1]}`);

    const again = await run([vdeploy, 'deploy', '--yes'], project);
    expect(again.exitCode, again.stderr).to.equal(0);
    expect(again.stdout).to.include('Nothing to deploy.');
  });
});
