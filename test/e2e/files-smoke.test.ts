// Config files (issue 17) wired end to end through the built CLI, on one real sshd host: a deployfile
// of files only (no venvs) with a plain file (mode 0600) and a template whose handler touches a
// marker. plan shows the creates; deploy --yes writes them with their mode and runs the handler once;
// the next plan and deploy find nothing to do; status shows drift once the file is changed on the
// host. The thorough cases (supervisord, validate, pending handlers, sudo, Ctrl-C) are in files.test.ts.
import { expect } from 'chai';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { makeTempDir, runVdeploy, runVdeployInPty } from '../helpers/cli.js';
import { startFleet, type Fleet, type FleetHost } from '../helpers/fleet.js';

const PROMPT = '[y,n,a,q,d,?]? ';

describe('config files, wired end to end (smoke)', function () {
  this.timeout(300_000);
  let fleet: Fleet;
  let host: FleetHost;
  let dir: string;
  let etc: string;
  let marker: string;
  const run = (args: string[]) => runVdeploy(args, { cwd: dir, timeoutMs: 120_000, env: { SSH_AUTH_SOCK: undefined } });

  before(async () => {
    fleet = await startFleet({ hosts: 1 });
    host = fleet.hosts[0]!;
    dir = await makeTempDir('vdeploy-files-smoke-');
    // The fleet's hosts share this machine's disk: each writes under its own root.
    etc = join(host.root, 'etc', 'app');
    marker = join(host.root, 'handler-ran');
    await mkdir(join(dir, 'etc'), { recursive: true });
    await writeFile(join(dir, 'etc', 'secret.conf'), 'token = 42\n');
    await writeFile(join(dir, 'etc', 'workers.conf.j2'), 'host = {{ host.name }}\nworkers = {{ workers }}\n');
    const config = {
      wheels: './wheels',
      ssh: { knownHosts: fleet.knownHostsPath, identityFile: fleet.clientKeyPath, strictHostKeyChecking: 'yes' },
      hosts: [{ name: host.name, address: host.address, port: host.port, user: fleet.user, stateDir: join(host.root, 'state') }],
      vars: { workers: 3 },
      files: [
        { src: 'etc/secret.conf', dest: `${etc}/`, mode: '0600', owner: 'root', group: 'root' },
        { src: 'etc/workers.conf.j2', dest: `${etc}/`, onChange: [`touch ${marker}`] },
      ],
    };
    await mkdir(join(dir, 'wheels'));
    await writeFile(join(dir, 'wheels', 'release_log'), '');
    await writeFile(join(dir, 'deployfile.ts'), `export default ${JSON.stringify(config, null, 2)};\n`);
  });
  after(() => fleet?.stop());

  it('plan shows the files it would create and the handler, and changes nothing', async () => {
    const r = await run(['plan']);
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stdout).to.include(`files on ${host.name}:`);
    expect(r.stdout).to.match(new RegExp(`\\+ ${etc}/secret\\.conf \\(create, 0600 root:root\\)`));
    expect(r.stdout).to.match(new RegExp(`\\+ ${etc}/workers\\.conf \\(create`));
    expect(r.stdout).to.include(`handlers: touch ${marker}`);
    const json = JSON.parse((await run(['plan', '--json'])).stdout) as { plan: { hosts: Array<{ files: { files: Array<{ dest: string; action: string }> } }> } };
    expect(json.plan.hosts[0]!.files.files.map((f) => [f.dest, f.action])).to.deep.equal([
      [`${etc}/secret.conf`, 'create'],
      [`${etc}/workers.conf`, 'create'],
    ]);
    // Contents never go into the plan's JSON.
    expect(JSON.stringify(json)).not.to.include('token = 42');
    await stat(etc).then(
      () => expect.fail('plan wrote to the host'),
      () => undefined,
    );
  });

  it('deploy --yes writes them with their mode and runs the handler; a second deploy does nothing', async () => {
    const r = await run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    expect(await readFile(join(etc, 'secret.conf'), 'utf8')).to.equal('token = 42\n');
    expect((await stat(join(etc, 'secret.conf'))).mode & 0o7777).to.equal(0o600);
    expect(await readFile(join(etc, 'workers.conf'), 'utf8')).to.equal(`host = ${host.name}\nworkers = 3\n`);
    expect((await stat(join(etc, 'workers.conf'))).mode & 0o7777).to.equal(0o644);
    await stat(marker);
    expect(r.stdout).to.include(`${host.name}: files 2 written, 0 unchanged; handlers ran: touch ${marker}`);
    expect(r.stderr).to.match(new RegExp(`${host.name}: files ok, 2 written, 1 handler run`));

    await rm(marker);
    const again = await run(['plan']);
    expect(again.exitCode, again.stderr).to.equal(0);
    expect(again.stdout).to.include(`files on ${host.name}:\n  2 files unchanged\n`);
    const noop = await run(['deploy', '--yes']);
    expect(noop.exitCode, noop.stderr).to.equal(0);
    expect(noop.stdout).to.include('Nothing to deploy.');
    await stat(marker).then(
      () => expect.fail('the handler ran although nothing changed'),
      () => undefined,
    );
  });

  it('status shows a file changed on the host as drift', async () => {
    const inSync = await run(['status']);
    expect(inSync.exitCode, inSync.stderr).to.equal(0);
    expect(inSync.stdout).to.include(`files on ${host.name}: in sync`);
    await writeFile(join(etc, 'workers.conf'), 'workers = 1\n');
    const r = await run(['status', '--json']);
    expect(r.exitCode, r.stderr).to.equal(0);
    const status = JSON.parse(r.stdout) as { hosts: Array<{ host: string; files: { drift: Array<{ dest: string; what: string[] }> } }> };
    expect(status.hosts).to.deep.equal([{ host: host.name, files: { drift: [{ dest: `${etc}/workers.conf`, what: ['content'] }], pending: [], orphans: [] } }]);
  });

  it('a host selected only for its files that cannot be reached fails the plan (the other host still planned) and the deploy: exit 1', async () => {
    const config = JSON.parse((await readFile(join(dir, 'deployfile.ts'), 'utf8')).replace(/^export default /, '').replace(/;\n$/, '')) as { hosts: object[] };
    // 127.0.0.1:1: nothing listens there, the connection is refused at once.
    config.hosts.push({ name: 'gone', address: '127.0.0.1', port: 1, user: fleet.user });
    const other = await makeTempDir('vdeploy-files-smoke-gone-');
    await mkdir(join(other, 'wheels'));
    await writeFile(join(other, 'wheels', 'release_log'), '');
    await writeFile(join(other, 'deployfile.ts'), `export default ${JSON.stringify({ ...config, wheels: './wheels' }, null, 2)};\n`);
    await mkdir(join(other, 'etc'));
    await writeFile(join(other, 'etc', 'secret.conf'), 'token = 42\n');
    await writeFile(join(other, 'etc', 'workers.conf.j2'), 'host = {{ host.name }}\nworkers = {{ workers }}\n');
    const r = await runVdeploy(['plan', 'gone', host.name], { cwd: other, timeoutMs: 120_000, env: { SSH_AUTH_SOCK: undefined } });
    expect(r.exitCode, r.stderr).to.equal(1);
    expect(r.stdout).to.match(/files on gone: error: gone: connect failed: /);
    expect(r.stdout).to.include(`files on ${host.name}:`);
    const d = await runVdeploy(['deploy', '--yes', 'gone'], { cwd: other, timeoutMs: 120_000, env: { SSH_AUTH_SOCK: undefined } });
    expect(d.exitCode, d.stderr + d.stdout).to.equal(1);
    expect(d.stdout).to.match(/✗ gone: connect failed: /);
  });

  it('deploy asks about the files per host (d shows their plan); without a terminal and --yes it refuses', async () => {
    const refused = await run(['deploy']);
    expect(refused.exitCode).to.equal(2);
    expect(refused.stderr).to.include('deploy needs a confirmation and standard input is not a terminal; nothing was changed');
    expect(await readFile(join(etc, 'workers.conf'), 'utf8')).to.equal('workers = 1\n');

    const r = await runVdeployInPty(['deploy', '--deployfile', join(dir, 'deployfile.ts')], { prompt: PROMPT, answers: ['d', 'y'], env: { SSH_AUTH_SOCK: undefined } });
    const output = stripVTControlCharacters(r.output);
    expect(r.exitCode, output).to.equal(0);
    const lines = output.split(/\r?\n/);
    expect(lines).to.include.members([`(1/1) Apply files to ${host.name} ${PROMPT}d`, `(1/1) Apply files to ${host.name} ${PROMPT}y`]);
    // `d` shows the host's file plan: the diff against what the host has now.
    expect(lines).to.include.members(['    -workers = 1', '    +workers = 3']);
    expect(await readFile(join(etc, 'workers.conf'), 'utf8')).to.equal(`host = ${host.name}\nworkers = 3\n`);
    await stat(marker);
  });
});
