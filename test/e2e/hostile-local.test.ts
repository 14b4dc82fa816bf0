// Deployfiles that misbehave, through the built binary: one that calls process.exit (at once, or
// later from a timer, even in the middle of a deploy), one that loops forever (Ctrl-C, SIGTERM and
// the time limit must still end vdeploy, promptly and saying why), and one whose export is not data.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir, runVdeploy, startVdeploy } from '../helpers/cli.js';
import { makeDeployProject } from '../helpers/deploy-project.js';
import { startFleet, type Fleet } from '../helpers/fleet.js';

const CONFIG = `{ hosts: [{ name: 'web1' }], venvs: [{ host: 'web1', path: '/srv/app' }] }`;

async function projectWith(deployfile: string): Promise<string> {
  const dir = await makeTempDir();
  await writeFile(join(dir, 'deployfile.ts'), deployfile);
  return dir;
}

async function waitFor(what: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('vdeploy CLI: a deployfile that exits, loops or exports code', function () {
  this.timeout(120_000);

  it('process.exit(0) while loading is an error naming the deployfile and the line, not a silent exit 0', async () => {
    const dir = await projectWith(`const x = 1;\nif (x) process.exit(0);\nexport default ${CONFIG};\n`);
    const r = await runVdeploy(['venvs'], { cwd: dir });
    expect(r.exitCode).to.equal(2);
    expect(r.stderr).to.match(new RegExp(`error: ${join(dir, 'deployfile.ts')}: the deployfile called process\\.exit\\(0\\) at .*deployfile\\.ts:2:\\d+\\nhint: remove`));
    expect(r.stdout).to.equal('');
  });

  it('a function in the export is refused, naming its field path', async () => {
    const dir = await projectWith(`export default { hosts: [{ name: 'web1', port: () => 22 }] };\n`);
    const r = await runVdeploy(['venvs'], { cwd: dir });
    expect(r.exitCode).to.equal(2);
    expect(r.stderr).to.match(/deployfile\.ts: hosts\[0\]\.port is a function; the deployfile's default export must be plain data/);
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`a deployfile that loops forever: ${signal} ends vdeploy at once with exit 130, saying what it was doing`, async () => {
      const started = join(await makeTempDir(), 'looping');
      const dir = await projectWith(
        `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(started)}, '');\nwhile (true) {}\nexport default ${CONFIG};\n`,
      );
      const { child, done } = startVdeploy(['venvs'], dir);
      await waitFor(() => existsSync(started));
      const sentAt = Date.now();
      child.kill(signal);
      const r = await done;
      expect(r.exitCode, r.stderr).to.equal(130);
      // Prompt even on a loaded machine: the main thread is free; only the worker loops.
      expect(Date.now() - sentAt).to.be.below(5000);
      expect(r.stderr).to.include(`error: interrupted while loading the deployfile ${join(dir, 'deployfile.ts')}`);
    });
  }

  it('a deployfile that loops forever is stopped after 10 s with an error naming it (exit 2)', async () => {
    const dir = await projectWith(`while (true) {}\nexport default ${CONFIG};\n`);
    const startedAt = Date.now();
    const r = await runVdeploy(['venvs'], { cwd: dir });
    expect(r.exitCode).to.equal(2);
    expect(Date.now() - startedAt).to.be.at.least(10_000);
    expect(r.stderr).to.include(`error: ${join(dir, 'deployfile.ts')}: the deployfile did not finish loading within 10 s; vdeploy stopped it`);
  });
});

describe('vdeploy plan and deploy against a real sshd fleet: deferred exits, --hash pins', function () {
  this.timeout(300_000);
  let fleet: Fleet;
  before(async () => {
    fleet = await startFleet({ hosts: 1, venvsPerHost: 1 });
  });
  after(async () => fleet?.stop());

  it('a timer calling process.exit(0) mid-deploy does not cut the deploy short', async () => {
    const h1 = fleet.hosts[0]!;
    const venv = join(h1.root, 'srv', 'deferred-exit');
    const wheel = await buildWheel(await makeTempDir('vdeploy-deferred-wheels-'), { name: 'tinyapp', version: '1.0' });
    const project = await makeDeployProject(fleet, { venvs: [{ host: h1, path: venv }], requirements: 'tinyapp==1.0\n', wheels: [wheel] });
    const deployfile = join(project.dir, 'deployfile.ts');
    // Fires while the deploy is connecting, probing or installing (the deploy takes seconds).
    await writeFile(deployfile, `setTimeout(() => process.exit(0), 300);\n${await readFile(deployfile, 'utf8')}`);
    const r = await project.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    expect(r.stdout).to.match(/deployed/);
    expect(existsSync(join(venv, 'bin', 'python'))).to.equal(true);
    const history = (await readFile(join(venv, '.vdeploy', 'history.jsonl'), 'utf8')).trim().split('\n');
    expect(JSON.parse(history.at(-1)!)).to.include({ outcome: 'deployed' });
  });

  it('a --hash pin that no released wheel matches fails the plan naming the file and line; a matching one steers the choice', async () => {
    const h1 = fleet.hosts[0]!;
    const venv = join(h1.root, 'srv', 'hash-pinned');
    const wheelDir = await makeTempDir('vdeploy-hash-wheels-');
    const [old, newer] = [await buildWheel(wheelDir, { name: 'hashapp', version: '1.0' }), await buildWheel(wheelDir, { name: 'hashapp', version: '1.1' })];
    const sha256 = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');
    const wrong = 'ab'.repeat(32);
    const project = await makeDeployProject(fleet, {
      venvs: [{ host: h1, path: venv }],
      requirements: `# pinned\nhashapp==1.1 --hash=sha256:${wrong}\n`,
      wheels: [old, newer],
    });
    const requirements = join(project.dir, 'requirements.txt');
    const bad = await project.run(['plan']);
    expect(bad.exitCode, bad.stderr + bad.stdout).to.equal(1);
    expect(bad.stdout + bad.stderr).to.include(
      `${requirements}:2: the released wheel hashapp-1.1-py3-none-any.whl does not match the --hash pinned there (pinned sha256:abababababab…`,
    );
    expect(bad.stdout + bad.stderr).to.include(`--hash=sha256:${await sha256(newer)}`);
    const refused = await project.run(['deploy', '--yes']);
    expect(refused.exitCode).to.equal(1);
    expect(existsSync(venv)).to.equal(false);

    // Alternatives on one line, one of them 1.0's: 1.0 is chosen over the newer 1.1, and deployed.
    await project.setRequirements(`hashapp --hash=sha256:${wrong} --hash=sha256:${await sha256(old)}\n`);
    const steered = await project.run(['deploy', '--yes']);
    expect(steered.exitCode, steered.stderr + steered.stdout).to.equal(0);
    const history = (await readFile(join(venv, '.vdeploy', 'history.jsonl'), 'utf8')).trim().split('\n');
    expect(JSON.parse(history.at(-1)!).after).to.include({ hashapp: '1.0' });
  });
});
