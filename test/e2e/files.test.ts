// Config files, a "mock /etc" in the repository (issue 17, docs/files.md), through the built CLI on a real
// sshd fleet. The fleet's hosts share this machine's filesystem, so every destination is under the host's
// own root (`<root>/etc/...`, never the machine's /etc) and every host (and every case) keeps its record
// of managed files and pending handlers in a stateDir of its own.
//
// host1 runs the real thing: a private supervisord (Debian's supervisor) whose config includes
// `<root>/etc/supervisor/conf.d/*.conf`, a program config for gunicorn rendered from a template in the
// project's `etc/`, and a real gunicorn serving the test Django app from the venv vdeploy deploys.
// host2 has the other cases, each a files-only project of its own.
import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { makeTempDir, runVdeployInPty } from '../helpers/cli.js';
import { makeDeployProject, type DeployProject, type ProjectVenv } from '../helpers/deploy-project.js';
import { buildDjangoAppWheel, SHOPAPP_SETTINGS } from '../helpers/django-app.js';
import { descendantsOf, startFleet, type Fleet, type FleetHost } from '../helpers/fleet.js';
import { waitFor } from '../helpers/pause-pip.js';
import { freePort, startPrivateSupervisord, type PrivateSupervisord } from '../helpers/supervised-gunicorn.js';
import type { TestUser } from '../helpers/test-users.js';
import { sharedWheels } from '../helpers/venv-inspect.js';
import { quoteCommand } from '../../src/remote/shell-quote.js';

/** A colour (SGR) escape. */
const SGR = /\x1b\[[0-9;]*m/;

interface FileChangeJson {
  dest: string;
  action: string;
  diff?: string;
  noDiff?: string;
  meta?: Record<string, [string, string]>;
}
interface FilesPlanJson {
  files: FileChangeJson[];
  orphans: string[];
  pending: string[];
  handlers: string[];
  daemonReload: boolean;
  error?: { message: string };
}
interface PlanJson {
  plan: { hosts: Array<{ name: string; files?: FilesPlanJson }> };
}
interface StatusJson {
  hosts?: Array<{ host: string; files: { drift: Array<{ dest: string; what: string[]; meta?: Record<string, [string, string]> }>; pending: string[]; orphans: string[] } }>;
}

/** One case's project: its deployfile's files on one host, under `<root>/etc/<name>`, its own stateDir. */
interface FilesCase {
  project: DeployProject;
  host: FleetHost;
  /** Where this case's files land on the host. */
  etc: string;
  state: string;
  /** A log the case's handlers append to (on the host). */
  log: string;
  /** Write (or overwrite) source files in the project, paths relative to the deployfile's directory. */
  write(files: Record<string, string>): Promise<void>;
  run: DeployProject['run'];
}

/** The deployfile's JSON (makeDeployProject writes `export default {…};`), changed by `edit`. */
async function editDeployfile(project: DeployProject, edit: (config: Record<string, any>) => void): Promise<void> {
  const file = join(project.dir, 'deployfile.ts');
  const config = JSON.parse((await readFile(file, 'utf8')).replace(/^export default /, '').replace(/;\s*$/, '')) as Record<string, any>;
  edit(config);
  await writeFile(file, `export default ${JSON.stringify(config, null, 2)};\n`);
}

async function writeTree(dir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, rel)), { recursive: true });
    await writeFile(join(dir, rel), text);
  }
}

const lines = async (file: string) => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');

/** inode, mtime and ctime: any write (a rename over it, an edit, a chmod) changes one of them. */
async function identity(file: string): Promise<string> {
  const s = await stat(file);
  return `${s.ino} ${s.mtimeMs} ${s.ctimeMs}`;
}

/** The `-`/`+` lines of the unified diffs in a plan's text (not the ---/+++ headers), indentation dropped. */
function diffLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^[-+]/.test(l) && !/^(---|\+\+\+) /.test(l) && !/^- \//.test(l));
}

/** Successful SSH logins an sshd logged (LogLevel VERBOSE): to see that a command connected nowhere. */
async function logins(host: FleetHost): Promise<number> {
  return ((await readFile(join(host.root, 'sshd', 'sshd.log'), 'utf8').catch(() => '')).match(/Accepted publickey/g) ?? []).length;
}

/** The host's apply script (host_apply) whose files child runs the handler whose command line has `marker`. */
function applyScriptRunning(host: FleetHost, marker: string): number {
  const handler = descendantsOf(host.pid).find((pid) => {
    try {
      // The handler's own `sh -c`, not a short-lived child of it (its `touch`).
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return argv[0] === 'sh' && argv[1] === '-c' && argv[2]!.includes(marker);
    } catch {
      return false;
    }
  });
  if (handler === undefined) throw new Error(`no process on ${host.name} runs the handler with ${marker}`);
  return parentOf(parentOf(handler));
}

function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

function threadCount(pid: number): number {
  return readdirSync(`/proc/${pid}/task`).length;
}

function hostFiles(plan: PlanJson, host: FleetHost): FilesPlanJson {
  const files = plan.plan.hosts.find((h) => h.name === host.name)?.files;
  if (!files) throw new Error(`no files plan for ${host.name} in ${JSON.stringify(plan.plan.hosts)}`);
  return files;
}

describe('config files: a mock /etc deployed with a diff and handlers (real sshd fleet, real supervisord and gunicorn)', function () {
  this.timeout(600_000);
  let fleet: Fleet;
  let host1: FleetHost;
  let host2: FleetHost;
  let app: TestUser;
  let deployer: TestUser;
  let supervisord: PrivateSupervisord | undefined;

  before(async () => {
    fleet = await startFleet({ hosts: 2, sudoUsers: true, lightShell: true });
    [host1, host2] = fleet.hosts as [FleetHost, FleetHost];
    ({ app, deployer } = fleet.sudoUsers!);
    for (const h of fleet.hosts) await mkdir(join(h.root, 'logs'), { recursive: true });
  });
  after(async () => {
    await supervisord?.stop();
    await fleet?.stop();
  });

  /** A files-only project (no venvs) whose `entries` are host2's `files`, with `etc` = `<root>/etc/<name>`. */
  async function filesCase(
    name: string,
    entries: (c: { etc: string; log: string }) => Array<Record<string, unknown>>,
    sources: Record<string, string>,
    options: { loginUser?: string; hostExtra?: Record<string, unknown>; host?: FleetHost } = {},
  ): Promise<FilesCase> {
    const host = options.host ?? host2;
    const etc = join(host.root, 'etc', name);
    const state = join(host.root, 'state', name);
    const log = join(host.root, 'logs', `${name}.log`);
    const project = await makeDeployProject(fleet, {
      venvs: [],
      requirements: '',
      wheels: [],
      ...(options.loginUser ? { loginUser: options.loginUser } : {}),
      hostFields: (h) => (h === host ? { stateDir: state, files: entries({ etc, log }), ...options.hostExtra } : {}),
    });
    const write = (files: Record<string, string>) => writeTree(project.dir, files);
    await write(sources);
    return { project, host, etc, state, log, write, run: project.run };
  }

  describe('a supervisord program for gunicorn, from etc/ (host1)', () => {
    let project: DeployProject;
    let conf: string;
    let log: string;
    let port: number;
    const program = 'shop';

    /** gunicorn's master (supervisord's program) and how many workers it has forked. */
    async function workers(): Promise<{ master: number; workers: number }> {
      const master = await supervisord!.pidOf(program);
      return { master, workers: master > 0 ? descendantsOf(master).length : 0 };
    }
    async function health(): Promise<string | undefined> {
      return fetch(`http://${host1.address}:${port}/health/`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text(), () => undefined);
    }
    /** Polls until gunicorn serves the app with `n` workers (a restart by `supervisorctl update` takes a while under load). */
    async function waitForWorkers(n: number): Promise<number> {
      let last = { master: 0, workers: 0 };
      await waitFor(async () => {
        last = await workers();
        return last.workers === n && (await health()) === 'shopapp 1.0';
      }).catch(async () => {
        const out = await readFile(join(host1.root, 'run', 'shop.log'), 'utf8').catch(() => '(no log)');
        throw new Error(`gunicorn did not come up with ${n} workers (last: ${JSON.stringify(last)}); its log:\n${out.slice(-3000)}`);
      });
      return last.master;
    }

    before(async () => {
      const wheelDir = await makeTempDir('vdeploy-files-wheels-');
      const venv = join(host1.root, 'srv', 'shop');
      const db = join(host1.root, 'srv', 'shop.sqlite3');
      const run = join(host1.root, 'run');
      await mkdir(run, { recursive: true });
      conf = join(host1.root, 'etc', 'supervisor', 'conf.d', 'shop.conf');
      log = join(host1.root, 'logs', 'supervisor-handlers.log');
      port = await freePort(host1.address);
      supervisord = await startPrivateSupervisord({ dir: join(host1.root, 'supervisor'), include: [join(host1.root, 'etc', 'supervisor', 'conf.d', '*.conf')] });
      const ctl = quoteCommand(supervisord.ctlArgv);
      // The venv's own reload restarts the program whose config arrives in the same deploy, and its health
      // check asks gunicorn: on this new host both work only because they wait for the files (docs/files.md).
      const check = `import sys, urllib.request; sys.exit(urllib.request.urlopen('http://${host1.address}:${port}/health/', timeout=5).read() != b'shopapp 1.0')`;
      const venvs: ProjectVenv[] = [
        {
          host: host1,
          path: venv,
          django: { settings: SHOPAPP_SETTINGS, env: { SHOPAPP_DB: db } },
          reload: `${ctl} restart ${program} && echo venv-reload >> ${log}`,
          healthcheck: { command: `${quoteCommand(['python3', '-c', check])} && echo healthcheck >> ${log}`, retries: 100, interval: 1, timeout: 10 },
        },
      ];
      project = await makeDeployProject(fleet, {
        venvs,
        requirements: 'shopapp\n',
        wheels: [...(await sharedWheels(['django-', 'asgiref-', 'sqlparse-', 'gunicorn-', 'packaging-'])), await buildDjangoAppWheel(wheelDir, { version: '1.0' })],
        // The host's reload, logged: it must come after the files' handlers.
        hostReload: { [host1.name]: `echo reload >> ${log}` },
        extra: { vars: { port, run, db } },
        hostFields: (h) =>
          h === host1
            ? {
                stateDir: join(h.root, 'state', 'supervisor'),
                files: [
                  {
                    src: './etc/',
                    dest: `${join(h.root, 'etc')}/`,
                    vars: { workers: 2 },
                    // `reread` is logged only once the venv is installed and migrated (its gunicorn and its database are there).
                    onChange: [`${ctl} reread && test -x ${venv}/bin/gunicorn && test -s ${db} && echo reread >> ${log}`, `${ctl} update && echo update >> ${log}`],
                  },
                ],
              }
            : {},
      });
      await writeTree(project.dir, {
        'etc/supervisor/conf.d/shop.conf.j2': [
          '; {{ host.name }} ({{ host.address }}): gunicorn serving shopapp from its venv. Deployed by vdeploy.',
          `[program:${program}]`,
          'command={{ venvs[0].path }}/bin/gunicorn --bind {{ host.address }}:{{ port }} --workers {{ workers }} --pid {{ run }}/shop.pid --no-control-socket --graceful-timeout 5 shopapp.wsgi:application',
          'directory={{ run }}',
          'environment=SHOPAPP_DB="{{ db }}"',
          'autostart=true',
          'autorestart=true',
          'startsecs=1',
          'stopwaitsecs=15',
          'stdout_logfile={{ run }}/shop.log',
          'redirect_stderr=true',
          '',
        ].join('\n'),
      });
    });

    it('the first deploy (a new host) installs and migrates the venv, writes the program config, runs the handlers once, then the venv\'s reload (supervisorctl restart of that program) and health check, then the host reload; gunicorn serves with 2 workers', async () => {
      const plan = await project.run(['plan']);
      expect(plan.exitCode, plan.stderr + plan.stdout).to.equal(0);
      expect(plan.stdout).to.include(`files on ${host1.name}:`);
      expect(plan.stdout).to.match(new RegExp(`\\+ ${conf} \\(create, 0644`));
      expect(plan.stdout).to.include('handlers: ');
      expect(existsSync(conf), 'plan changes nothing').to.equal(false);

      const r = await project.run(['deploy', '--yes']);
      expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
      // The template saw the venv's path, the host and both scopes of vars; .j2 was dropped from the name.
      const text = await readFile(conf, 'utf8');
      expect(text).to.include(`command=${join(host1.root, 'srv', 'shop')}/bin/gunicorn --bind ${host1.address}:${port} --workers 2 `);
      expect(text).to.match(new RegExp(`^; ${host1.name} \\(${host1.address.replace(/\./g, '\\.')}\\)`));
      expect(((await stat(conf)).mode & 0o7777).toString(8)).to.equal('644');
      // Files after the venv's install and migrate (supervisord could start gunicorn on the new code), handlers in
      // order, once; then the venv's reload and health check, which needed the program's config; then the host's reload.
      expect(await lines(log)).to.deep.equal(['reread', 'update', 'venv-reload', 'healthcheck', 'reload']);
      expect(r.stdout + r.stderr).not.to.match(/no such process/i);
      await waitForWorkers(2);
    });

    it('workers 2 -> 3: the plan shows a one-line diff; the deploy runs each handler once and gunicorn runs 3 workers; again: nothing written, no handler', async () => {
      const before = await workers();
      await editDeployfile(project, (c) => {
        c.hosts.find((h: { name: string }) => h.name === host1.name).files[0].vars.workers = 3;
      });
      const plan = await project.run(['plan']);
      expect(plan.exitCode, plan.stderr + plan.stdout).to.equal(0);
      expect(plan.stdout).to.match(new RegExp(`~ ${conf}`));
      expect(plan.stdout).to.include(`--- ${conf} (host)`).and.include(`+++ ${conf} (repository)`);
      expect(diffLines(plan.stdout), plan.stdout).to.deep.equal([
        `-command=${join(host1.root, 'srv', 'shop')}/bin/gunicorn --bind ${host1.address}:${port} --workers 2 --pid ${join(host1.root, 'run')}/shop.pid --no-control-socket --graceful-timeout 5 shopapp.wsgi:application`,
        `+command=${join(host1.root, 'srv', 'shop')}/bin/gunicorn --bind ${host1.address}:${port} --workers 3 --pid ${join(host1.root, 'run')}/shop.pid --no-control-socket --graceful-timeout 5 shopapp.wsgi:application`,
      ]);
      expect(plan.stdout).to.match(/handlers: .*reread.*update/);
      const json = await project.run(['plan', '--json']);
      expect(json.exitCode, json.stderr).to.equal(0);
      const files = hostFiles(JSON.parse(json.stdout) as PlanJson, host1);
      expect(files.files.map((f) => [f.dest, f.action])).to.deep.equal([[conf, 'update']]);
      expect(files.files[0]!.diff).to.include('--workers 3');
      expect(files.handlers).to.have.length(2);

      const logBefore = await lines(log);
      const r = await project.run(['deploy', '--yes']);
      expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
      // Each handler once; no venv changed, so the host's reload did not run.
      expect((await lines(log)).slice(logBefore.length)).to.deep.equal(['reread', 'update']);
      expect(await readFile(conf, 'utf8')).to.include('--workers 3 ');
      const master = await waitForWorkers(3);
      expect(master, 'supervisorctl update restarted gunicorn with the new config').to.not.equal(before.master);

      const id = await identity(conf);
      const again = await project.run(['deploy', '--yes']);
      expect(again.exitCode, again.stderr + again.stdout).to.equal(0);
      expect(await identity(conf), 'not written again').to.equal(id);
      expect((await lines(log)).slice(logBefore.length), 'no handler ran').to.deep.equal(['reread', 'update']);
      expect(again.stdout + again.stderr).not.to.match(/handlers ran/);
      expect(await waitForWorkers(3), 'gunicorn was not restarted').to.equal(master);
      const plain = await project.run(['plan']);
      expect(plain.stdout).not.to.match(new RegExp(`[~+] ${conf}`));
    });
  });

  it('a failing validate (python3 -m json.tool): exit 1 with the validator\'s output, the old file untouched, no temp file left, no handler', async () => {
    const c = await filesCase(
      'validate',
      ({ etc, log }) => [{ src: './etc/settings.json', dest: join(etc, 'shop', 'settings.json'), validate: 'python3 -m json.tool {path}', onChange: [`echo handler >> ${log}`] }],
      { 'etc/settings.json': '{"workers": 2}\n' },
    );
    const dest = join(c.etc, 'shop', 'settings.json');
    const first = await c.run(['deploy', '--yes']);
    expect(first.exitCode, first.stderr + first.stdout).to.equal(0);
    expect(await readFile(dest, 'utf8')).to.equal('{"workers": 2}\n');
    expect(await lines(c.log)).to.deep.equal(['handler']);
    const id = await identity(dest);

    await c.write({ 'etc/settings.json': '{"workers": 3,}\n' });
    const r = await c.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(1);
    const out = r.stdout + r.stderr;
    expect(out, out).to.include(dest);
    expect(out, out).to.match(/validat/i);
    // json.tool's own words.
    expect(out, out).to.match(/Expecting property name enclosed in double quotes/);
    expect(out, out).not.to.match(/Traceback \(most recent/);
    expect(await readFile(dest, 'utf8')).to.equal('{"workers": 2}\n');
    expect(await identity(dest)).to.equal(id);
    expect(await readdir(dirname(dest)), 'no temp file left').to.deep.equal(['settings.json']);
    expect(await lines(c.log), 'no handler ran').to.deep.equal(['handler']);
    // Nothing was applied, so nothing is pending: the next plan still shows the same change, no pending handler.
    const plan = await c.run(['plan']);
    expect(plan.stdout).to.match(new RegExp(`~ ${dest}`));
    expect(plan.stdout).not.to.match(/pending from an earlier run/);
  });

  it('a failing handler fails the host; the re-run\'s plan shows it pending although the file no longer differs, and the deploy runs it', async () => {
    const c = await filesCase(
      'pending',
      ({ etc, log }) => [
        {
          src: './etc/app.conf',
          dest: join(etc, 'app.conf'),
          onChange: [`if [ -e ${etc}.broken ]; then echo "service refused to start" >&2; exit 3; fi; echo restarted >> ${log}`],
        },
      ],
      { 'etc/app.conf': 'level = 1\n' },
    );
    const dest = join(c.etc, 'app.conf');
    await mkdir(dirname(c.etc), { recursive: true });
    await writeFile(`${c.etc}.broken`, '');
    const r = await c.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(1);
    expect(r.stdout + r.stderr).to.include('service refused to start');
    expect(await readFile(dest, 'utf8'), 'the file is in place: only its handler failed').to.equal('level = 1\n');
    expect(await lines(c.log)).to.deep.equal([]);

    await rm(`${c.etc}.broken`);
    const plan = await c.run(['plan']);
    expect(plan.exitCode, plan.stderr + plan.stdout).to.equal(0);
    expect(plan.stdout).to.match(/pending from an earlier run: .*service refused to start/);
    expect(plan.stdout).not.to.match(new RegExp(`[~+] ${dest}`));
    const json = hostFiles(JSON.parse((await c.run(['plan', '--json'])).stdout) as PlanJson, c.host);
    expect(json.files.map((f) => f.action)).to.deep.equal(['unchanged']);
    expect(json.pending).to.have.length(1);
    expect(json.handlers).to.deep.equal(json.pending);

    const again = await c.run(['deploy', '--yes']);
    expect(again.exitCode, again.stderr + again.stdout).to.equal(0);
    expect(await lines(c.log)).to.deep.equal(['restarted']);
    const after = await c.run(['plan']);
    expect(after.stdout).not.to.match(/pending from an earlier run/);
    const noop = await c.run(['deploy', '--yes']);
    expect(noop.exitCode).to.equal(0);
    expect(await lines(c.log), 'ran once').to.deep.equal(['restarted']);
  });

  it('mode 0600 owned by another user (a secret: no diff, never in --json)', async () => {
    const c = await filesCase(
      'owned',
      ({ etc }) => [{ src: './etc/db.conf', dest: join(etc, 'private', 'db.conf'), owner: app.name, group: app.name, mode: '0600', secret: true }],
      { 'etc/db.conf': 'password = hunter2-first\n' },
    );
    const dest = join(c.etc, 'private', 'db.conf');
    const plan = await c.run(['plan']);
    expect(plan.stdout, plan.stdout).to.match(new RegExp(`\\+ ${dest} \\(create, secret, 0600 ${app.name}:${app.name}\\)`));
    const r = await c.run(['deploy', '--yes']);
    expect(r.exitCode, r.stderr + r.stdout).to.equal(0);
    const s = await stat(dest);
    expect([s.uid, s.gid, (s.mode & 0o7777).toString(8)]).to.deep.equal([app.uid, app.gid, '600']);
    expect(await readFile(dest, 'utf8')).to.equal('password = hunter2-first\n');

    await c.write({ 'etc/db.conf': 'password = hunter2-second\n' });
    const secret = await c.run(['plan']);
    expect(secret.stdout).to.match(new RegExp(`~ ${dest}`));
    expect(secret.stdout + secret.stderr).not.to.include('hunter2');
    const json = await c.run(['plan', '--json']);
    expect(json.stdout).not.to.include('hunter2');
    expect(hostFiles(JSON.parse(json.stdout) as PlanJson, c.host).files[0]).to.deep.include({ action: 'update', noDiff: 'secret' });
    const second = await c.run(['deploy', '--yes']);
    expect(second.exitCode, second.stderr + second.stdout).to.equal(0);
    expect(second.stdout + second.stderr).not.to.include('hunter2');
    const s2 = await stat(dest);
    expect([s2.uid, s2.gid, (s2.mode & 0o7777).toString(8)]).to.deep.equal([app.uid, app.gid, '600']);
  });

  it('sudo: true as a login user whom sudo asks for a password: one clear line, exit 1, nothing changed', async () => {
    const c = await filesCase('sudo', ({ etc }) => [{ src: './etc/app.conf', dest: join(etc, 'app.conf') }], { 'etc/app.conf': 'x = 1\n' }, {
      loginUser: deployer.name,
      hostExtra: { sudo: true },
    });
    for (const args of [['plan'], ['deploy', '--yes']]) {
      const r = await c.run(args);
      const out = r.stdout + r.stderr;
      expect(r.exitCode, out).to.equal(1);
      // One line says what and where (the plan shows it under the host, the summary again), and the hint the rule.
      expect(out, out).to.include(`${c.host.name}: cannot read its files`);
      expect(out, out).to.include(`sudo asked ${deployer.name} for a password to run the files script as root`);
      expect(out, out).to.include(`hint: on ${c.host.name}, let ${deployer.name} run commands as root without a password: add \`${deployer.name} ALL=(root) NOPASSWD: ALL\``);
      expect(out, out).not.to.match(/Traceback \(most recent/);
      expect(out, 'no dump of sudo\'s own output').not.to.match(/^sudo: /m);
    }
    expect(existsSync(c.etc), 'nothing created').to.equal(false);
    expect(existsSync(c.state)).to.equal(false);
  });

  it('a template error: exit 2 naming the file and the line; nothing connected, nothing written', async () => {
    const c = await filesCase(
      'template',
      ({ etc }) => [{ src: './etc/', dest: `${etc}/`, vars: { workers: 2 } }],
      { 'etc/good.conf': 'fine\n', 'etc/app/broken.conf.j2': 'workers = {{ workers }}\n# line 2\nbind = {{ bind_address }}\n' },
    );
    const before = await Promise.all(fleet.hosts.map(logins));
    const r = await c.run(['deploy', '--yes']);
    const out = r.stdout + r.stderr;
    expect(r.exitCode, out).to.equal(2);
    expect(out, out).to.match(/etc\/app\/broken\.conf\.j2/);
    expect(out, out).to.match(/line 3\b/i);
    expect(out, out).to.include('bind_address');
    expect(out, out).not.to.match(/Traceback|    at /);
    // A syntax error too.
    await c.write({ 'etc/app/broken.conf.j2': 'a\nworkers = {{ workers | }}\nc\n' });
    const syntax = await c.run(['plan']);
    const said = syntax.stdout + syntax.stderr;
    expect(syntax.exitCode, said).to.equal(2);
    expect(said, said).to.match(/etc\/app\/broken\.conf\.j2/);
    expect(said, said).to.match(/line 2\b/i);
    expect(await Promise.all(fleet.hosts.map(logins)), 'no SSH login').to.deep.equal(before);
    expect(existsSync(c.etc)).to.equal(false);
  });

  it('Ctrl-C while a handler runs (a terminal): exit 130, the next handler did not run; the next deploy runs it', async () => {
    const c = await filesCase(
      'interrupt',
      ({ etc, log }) => [
        {
          src: './etc/app.conf',
          dest: join(etc, 'app.conf'),
          onChange: [
            `touch ${etc}.started; while [ ! -e ${etc}.go ]; do sleep 0.1; done; echo first >> ${log}`,
            `echo second >> ${log}`,
          ],
        },
      ],
      { 'etc/app.conf': 'a = 1\n' },
    );
    const transcript = join(c.project.dir, 'transcript');
    const running = runVdeployInPty(['deploy', '--yes', '--deployfile', join(c.project.dir, 'deployfile.ts')], {
      answers: ['\x03'],
      whenFile: `${c.etc}.ctrl-c`,
      env: { PTY_DRIVE_TRANSCRIPT: transcript },
    });
    const release = () => writeFile(`${c.etc}.go`, '');
    const explain = async (e: unknown) => {
      await release();
      throw new Error(`${(e as Error).message}; transcript: ${await readFile(transcript, 'utf8').catch(() => '(none)')}`);
    };
    // The stop travels: the CLI says "Stopping" at once, the host's apply script reads "stop" from its
    // stdin (polled), then signals the files child. Releasing the first handler before that would let
    // the second start, as it rightly does when the stop comes too late. The script forwards a stop
    // from a thread that ends once it has signalled the child: its thread count drops by one.
    await waitFor(() => existsSync(`${c.etc}.started`)).catch(explain);
    const script = applyScriptRunning(c.host, `${c.etc}.started`);
    const threads = threadCount(script);
    await writeFile(`${c.etc}.ctrl-c`, '');
    await waitFor(async () => (await readFile(transcript, 'utf8').catch(() => '')).includes('Stopping') && threadCount(script) < threads).catch(explain);
    await release();
    const r = await running;
    expect(r.exitCode, r.output).to.equal(130);
    expect(await readFile(join(c.etc, 'app.conf'), 'utf8')).to.equal('a = 1\n');
    expect(await lines(c.log), `the running handler finished; the next never started:\n${r.output}`).to.deep.equal(['first']);

    const plan = await c.run(['plan']);
    expect(plan.stdout).to.match(/pending from an earlier run: echo second/);
    const again = await c.run(['deploy', '--yes']);
    expect(again.exitCode, again.stderr + again.stdout).to.equal(0);
    expect(await lines(c.log)).to.deep.equal(['first', 'second']);
  });

  it('a file removed from the repository is listed and kept; --prune-files removes it', async () => {
    const c = await filesCase('prune', ({ etc }) => [{ src: './etc/', dest: `${etc}/` }], { 'etc/a.conf': 'a\n', 'etc/b.conf': 'b\n' });
    const [a, b] = [join(c.etc, 'a.conf'), join(c.etc, 'b.conf')];
    expect((await c.run(['deploy', '--yes'])).exitCode).to.equal(0);
    expect(existsSync(b)).to.equal(true);
    await rm(join(c.project.dir, 'etc', 'b.conf'));

    const plan = await c.run(['plan']);
    expect(plan.exitCode, plan.stderr + plan.stdout).to.equal(0);
    expect(plan.stdout).to.include(`- ${b} (not in the repository; kept`);
    expect(hostFiles(JSON.parse((await c.run(['plan', '--json'])).stdout) as PlanJson, c.host).orphans).to.deep.equal([b]);
    const kept = await c.run(['deploy', '--yes']);
    expect(kept.exitCode, kept.stderr + kept.stdout).to.equal(0);
    expect(existsSync(b), 'kept without --prune-files').to.equal(true);

    const prunePlan = await c.run(['plan', '--prune-files']);
    expect(prunePlan.stdout).to.include(`- ${b} (not in the repository; removed: --prune-files)`);
    expect(existsSync(b)).to.equal(true);
    const pruned = await c.run(['deploy', '--yes', '--prune-files']);
    expect(pruned.exitCode, pruned.stderr + pruned.stdout).to.equal(0);
    expect(existsSync(b), 'removed with --prune-files').to.equal(false);
    expect(existsSync(a)).to.equal(true);
    expect((await c.run(['plan'])).stdout).not.to.include(b);
  });

  it('a directory where a file should be: the host fails naming it, nothing of its files written', async () => {
    const c = await filesCase('blocked', ({ etc, log }) => [{ src: './etc/', dest: `${etc}/`, onChange: [`echo ran >> ${log}`] }], { 'etc/a.conf': 'a\n', 'etc/b.conf': 'b\n' });
    await mkdir(join(c.etc, 'b.conf'), { recursive: true });
    const r = await c.run(['deploy', '--yes']);
    const out = r.stdout + r.stderr;
    expect(r.exitCode, out).to.equal(1);
    expect(out, out).to.include(`files on ${c.host.name}: error: ${join(c.etc, 'b.conf')} on the host is not a regular file (a directory, symlink or device): vdeploy does not write through or over it`);
    expect(out, out).to.include('hint: remove or move what is there on the host, or change the dest in the deployfile');
    expect(existsSync(join(c.etc, 'a.conf')), 'nothing written').to.equal(false);
    expect(await lines(c.log)).to.deep.equal([]);
  });

  it('status shows drift after hand edits on the host (content, mode, missing), in text and --json; exit 0', async () => {
    const c = await filesCase('drift', ({ etc }) => [{ src: './etc/', dest: `${etc}/`, mode: '0644' }], { 'etc/x.conf': 'x\n', 'etc/y.conf': 'y\n', 'etc/z.conf': 'z\n' });
    const [x, y, z] = ['x', 'y', 'z'].map((n) => join(c.etc, `${n}.conf`)) as [string, string, string];
    expect((await c.run(['deploy', '--yes'])).exitCode).to.equal(0);
    const clean = await c.run(['status']);
    expect(clean.exitCode, clean.stderr + clean.stdout).to.equal(0);
    expect(clean.stdout).not.to.match(/files drift/);

    await writeFile(x, 'x edited by hand\n');
    await chmod(y, 0o600);
    await rm(z);
    const s = await c.run(['status']);
    expect(s.exitCode, s.stderr + s.stdout).to.equal(0);
    const line = s.stdout.split('\n').find((l) => l.startsWith(`files drift on ${c.host.name}:`));
    expect(line, s.stdout).to.be.a('string');
    expect(line).to.include(`${x} (content)`).and.include(`${y} (mode`).and.include(`${z} (missing)`);
    const json = await c.run(['status', '--json']);
    expect(json.exitCode, json.stderr).to.equal(0);
    const host = (JSON.parse(json.stdout) as StatusJson).hosts?.find((h) => h.host === c.host.name);
    const drift = host?.files.drift ?? [];
    expect(drift.map((d) => ({ dest: d.dest, what: d.what })), json.stdout).to.deep.equal([
      { dest: x, what: ['content'] },
      { dest: y, what: ['mode'] },
      { dest: z, what: ['missing'] },
    ]);
    expect(drift[1]!.meta, 'the mode on the host, and the repository\'s').to.deep.equal({ mode: ['0600', '0644'] });
  });

  it('the plan\'s diff is coloured on a terminal and plain with NO_COLOR', async () => {
    const c = await filesCase('colour', ({ etc }) => [{ src: './etc/app.conf', dest: join(etc, 'app.conf') }], { 'etc/app.conf': 'a\nlisten = old-value\nc\n' });
    expect((await c.run(['deploy', '--yes'])).exitCode).to.equal(0);
    await c.write({ 'etc/app.conf': 'a\nlisten = new-value\nc\n' });
    const plan = (env: Record<string, string | undefined>) =>
      runVdeployInPty(['plan', '--deployfile', join(c.project.dir, 'deployfile.ts')], { answers: [], env: { NO_COLOR: undefined, FORCE_COLOR: undefined, TERM: 'xterm', ...env } });
    const coloured = await plan({});
    expect(coloured.exitCode, coloured.output).to.equal(0);
    expect(coloured.output, coloured.output).to.match(/\x1b\[31m\s*-listen = old-value/);
    expect(coloured.output, coloured.output).to.match(/\x1b\[32m\s*\+listen = new-value/);
    expect(coloured.output, coloured.output).to.match(/\x1b\[36m\s*@@/);
    const plain = await plan({ NO_COLOR: '1' });
    expect(plain.exitCode, plain.output).to.equal(0);
    const diff = plain.output.split(/\r?\n/).filter((l) => /listen = (old|new)-value/.test(l));
    expect(diff.map((l) => l.trim()), plain.output).to.deep.equal(['-listen = old-value', '+listen = new-value']);
    expect(diff.join('\n')).not.to.match(SGR);
    expect(stripVTControlCharacters(coloured.output)).to.include('-listen = old-value');
  });

  it('a systemd unit changing plans `systemctl daemon-reload` once, before its handlers (plan only: no systemd here)', async () => {
    const c = await filesCase(
      'systemd',
      ({ etc }) => [
        { src: './etc/systemd/', dest: `${etc}/systemd/`, onChange: ['systemctl restart shop'] },
        { src: './etc/other.conf', dest: join(etc, 'other.conf'), onChange: ['systemctl restart shop'] },
      ],
      { 'etc/systemd/system/shop.service': '[Service]\nExecStart=/srv/shop/current/bin/gunicorn shopapp.wsgi\n', 'etc/other.conf': 'o\n' },
    );
    const plan = await c.run(['plan']);
    expect(plan.exitCode, plan.stderr + plan.stdout).to.equal(0);
    const handlers = plan.stdout.split('\n').find((l) => l.trim().startsWith('handlers:'));
    expect(handlers, plan.stdout).to.match(/handlers: systemctl daemon-reload \(a unit changed\), systemctl restart shop$/);
    const json = hostFiles(JSON.parse((await c.run(['plan', '--json'])).stdout) as PlanJson, c.host);
    expect(json.daemonReload).to.equal(true);
    // Once, though both entries declare it.
    expect(json.handlers.filter((h) => h === 'systemctl restart shop')).to.have.length(1);
  });
});
