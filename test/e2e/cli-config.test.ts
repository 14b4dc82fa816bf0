// The CLI binary against deployfiles and selectors: no SSH needed.
import { expect } from 'chai';
import { copyFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, runVdeploy } from '../helpers/cli.js';
import { REPO_ROOT } from '../helpers/paths.js';

async function exampleProject(): Promise<string> {
  const dir = await makeTempDir();
  await copyFile(join(REPO_ROOT, 'deployfile.example.ts'), join(dir, 'deployfile.ts'));
  return dir;
}

describe('vdeploy CLI: commands, deployfile, selectors', () => {
  it('--help lists the commands and exits 0', async () => {
    const r = await runVdeploy(['--help']);
    expect(r.exitCode).to.equal(0);
    for (const cmd of ['init', 'add-wheel', 'wheels', 'venvs']) expect(r.stdout).to.include(`vdeploy ${cmd}`);
  });

  it('an unknown command or flag is a usage error (exit 2)', async () => {
    const r = await runVdeploy(['frobnicate']);
    expect(r.exitCode).to.equal(2);
    expect(r.stderr).to.match(/^error: unknown command "frobnicate"\nhint: commands: init, /);
    const flag = await runVdeploy(['wheels', '--colour']);
    expect(flag.exitCode).to.equal(2);
    expect(flag.stderr).to.match(/^error: unknown option --colour for vdeploy wheels\nhint: did you mean --color\? /);
  });

  it('init writes the starter files, and refuses to overwrite them', async () => {
    const dir = await makeTempDir();
    const r = await runVdeploy(['init'], { cwd: dir });
    expect(r.exitCode, r.stderr).to.equal(0);
    expect((await readdir(dir)).sort()).to.deep.equal(['deployfile.ts', 'requirements.txt', 'wheels']);
    expect(await readFile(join(dir, 'wheels', 'release_log'), 'utf8')).to.equal('');
    const venvs = await runVdeploy(['venvs'], { cwd: dir });
    expect(venvs.exitCode, venvs.stderr).to.equal(0);
    expect(venvs.stdout).to.include('deploy@web1:/srv/app');

    await writeFile(join(dir, 'requirements.txt'), 'django\n');
    const again = await runVdeploy(['init'], { cwd: dir });
    expect(again.exitCode).to.equal(2);
    expect(again.stderr).to.match(/deployfile\.ts, requirements\.txt, wheels\/release_log already exist/);
    expect(await readFile(join(dir, 'requirements.txt'), 'utf8')).to.equal('django\n');
  });

  it('venvs lists the example deployfile, filtered by selectors and --role', async () => {
    const dir = await exampleProject();
    const all = await runVdeploy(['venvs', '--json'], { cwd: dir });
    expect(all.exitCode, all.stderr).to.equal(0);
    const ids = (JSON.parse(all.stdout) as Array<{ id: string }>).map((v) => v.id);
    expect(ids).to.deep.equal(['app@web1:/srv/app', 'deploy@web1:/srv/tools/venv', 'deploy@worker1:/srv/worker']);

    const cases: Array<[string[], string[]]> = [
      [['web1'], ['app@web1:/srv/app', 'deploy@web1:/srv/tools/venv']],
      [['app@web1'], ['app@web1:/srv/app']],
      [['app@web1:/srv/app'], ['app@web1:/srv/app']],
      [['web1:/srv/tools/venv'], ['deploy@web1:/srv/tools/venv']],
      [[':/srv/worker'], ['deploy@worker1:/srv/worker']],
      [['deploy@'], ['deploy@web1:/srv/tools/venv', 'deploy@worker1:/srv/worker']],
      [['10.0.0.12'], ['deploy@worker1:/srv/worker']],
      [['--role', 'worker'], ['deploy@worker1:/srv/worker']],
      [['app@', 'worker1', 'app@web1'], ['app@web1:/srv/app', 'deploy@worker1:/srv/worker']],
    ];
    for (const [args, expected] of cases) {
      const r = await runVdeploy(['venvs', '--json', ...args], { cwd: dir });
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).to.equal(0);
      expect((JSON.parse(r.stdout) as Array<{ id: string }>).map((v) => v.id), args.join(' ')).to.deep.equal(expected);
    }
    const table = await runVdeploy(['venvs'], { cwd: dir });
    expect(table.stdout).to.match(/app@web1:\/srv\/app\s+deploy@web1\.example\.com:22/);
  });

  const badSelectors: Array<[string, RegExp]> = [
    ['web9', /error: selector "web9" matches no venv\nhint: did you mean "web1"\? \(`vdeploy venvs` lists every venv\)\n$/],
    ['nobody@', /error: selector "nobody@" matches no venv\nhint: hosts: web1, worker1; `vdeploy venvs` lists all 3 venvs\n$/],
    ['@web1', /error: bad selector "@web1": the user before "@" is empty\nhint: selectors look like/],
    ['web1:srv', /error: bad selector "web1:srv": the path "srv" is not absolute/],
    ['a@b@c', /more than one "@"/],
  ];
  for (const [selector, pattern] of badSelectors) {
    it(`refuses selector ${selector} with exit 2`, async () => {
      const dir = await exampleProject();
      const r = await runVdeploy(['venvs', selector], { cwd: dir });
      expect(r.exitCode).to.equal(2);
      expect(r.stderr).to.match(pattern);
      expect(r.stdout).to.equal('');
    });
  }

  it('refuses an unknown --role', async () => {
    const r = await runVdeploy(['venvs', '--role', 'cache'], { cwd: await exampleProject() });
    expect(r.exitCode).to.equal(2);
    expect(r.stderr).to.match(/role "cache" matches no host\nhint: roles in the deployfile: web, worker/);
  });

  it('a deployfile with a syntax error names file:line:col (exit 2)', async () => {
    const dir = await makeTempDir();
    await writeFile(join(dir, 'deployfile.ts'), `import { defineConfig } from 'vdeploy';\nexport default defineConfig({\n  hosts: [{ name: 'a' }],,\n});\n`);
    const r = await runVdeploy(['venvs'], { cwd: dir });
    expect(r.exitCode).to.equal(2);
    expect(r.stderr).to.match(new RegExp(`error: .*deployfile\\.ts: could not load the deployfile: syntax error.* at .*deployfile\\.ts:3:\\d+`));
    expect(r.stderr).not.to.match(/\n\s+at /); // no stack without --debug
  });

  it('a deployfile that throws names the line of the throw', async () => {
    const dir = await makeTempDir();
    await writeFile(join(dir, 'deployfile.ts'), `const hosts = undefined as any;\nexport default { hosts: hosts.map((h: string) => h) };\n`);
    const r = await runVdeploy(['venvs'], { cwd: dir });
    expect(r.exitCode).to.equal(2);
    expect(r.stderr).to.match(/could not load the deployfile: Cannot read properties of undefined.* at .*deployfile\.ts:2:\d+/);
  });

  it('an invalid deployfile names the field path (exit 2)', async () => {
    const dir = await makeTempDir();
    await writeFile(
      join(dir, 'deployfile.ts'),
      `import { defineConfig } from 'vdeploy';\nexport default defineConfig({ hosts: [{ name: 'a' }], venvs: [{ host: 'a', path: '/v' }, { host: 'a', path: '/v' }, { host: 'b', path: 'rel' }] });\n`,
    );
    const r = await runVdeploy(['venvs'], { cwd: dir });
    expect(r.exitCode).to.equal(2);
    expect(r.stderr).to.include('venvs[2].path: must be an absolute path');
    expect(r.stderr).to.include('venvs[1]: duplicate venv a:/v (also venvs[0])');
    expect(r.stderr).to.include('venvs[2].host: unknown host "b" (hosts are: a)');
  });

  it('a deployfile without a default export is refused', async () => {
    const dir = await makeTempDir();
    await writeFile(join(dir, 'deployfile.mjs'), `export const config = {};\n`);
    const r = await runVdeploy(['venvs'], { cwd: dir });
    expect(r.exitCode).to.equal(2);
    expect(r.stderr).to.match(/has no default export|hosts: is required/);
  });

  it('no deployfile: exit 2 with a hint to run init; --deployfile to a missing file names it', async () => {
    const dir = await makeTempDir();
    const r = await runVdeploy(['venvs'], { cwd: dir });
    expect(r.exitCode).to.equal(2);
    expect(r.stderr).to.match(/error: no deployfile .* in .* or any parent directory\nhint: run `vdeploy init`/);
    const missing = await runVdeploy(['venvs', '--deployfile', 'nope.ts'], { cwd: dir });
    expect(missing.exitCode).to.equal(2);
    expect(missing.stderr).to.match(/deployfile .*nope\.ts does not exist/);
  });
});
