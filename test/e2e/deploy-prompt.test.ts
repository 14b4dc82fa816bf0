// The per-venv confirmation on a real terminal (a pseudo-terminal), through the built binary against a
// real sshd host: one key per answer, no Enter, one line per question, as docs/cli.md shows it.
import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { buildWheel } from '../helpers/build-wheel.js';
import { makeTempDir, runVdeployInPty } from '../helpers/cli.js';
import { makeDeployProject, type DeployProject } from '../helpers/deploy-project.js';
import { startFleet, type Fleet } from '../helpers/fleet.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { LocalConnection } from '../../src/remote/local-connection.js';

const local = new LocalConnection();
const PROMPT = '[y,n,a,q,d,?]? ';

async function installedVersion(venv: string, name: string): Promise<string | undefined> {
  const r = await local.exec([join(venv, 'bin', 'python'), '-c', `import importlib.metadata as m\ntry: print(m.version(${JSON.stringify(name)}))\nexcept Exception: print("")`]);
  return r.stdout.trim() || undefined;
}

/** The lines of docs/cli.md's example session of the prompt (the code block after "asks for each venv"). */
async function documentedSession(): Promise<string[]> {
  const doc = await readFile(join(REPO_ROOT, 'docs', 'cli.md'), 'utf8');
  const block = /asks for each venv with changes, one key each[\s\S]*?```\n([\s\S]*?)```/.exec(doc);
  expect(block, 'docs/cli.md: the prompt example').not.to.equal(null);
  return block![1]!.trimEnd().split('\n');
}

describe('vdeploy deploy asks per venv with single keys (real terminal, real sshd host)', function () {
  this.timeout(300_000);
  let fleet: Fleet;
  let project: DeployProject;
  let venvs: string[];
  let ids: string[];
  let wheels: string;
  before(async () => {
    fleet = await startFleet({ hosts: 1, venvsPerHost: 4 });
    wheels = await makeTempDir('vdeploy-prompt-wheels-');
    const h = fleet.hosts[0]!;
    venvs = h.venvs;
    ids = venvs.map((v) => `${fleet.user}@host1:${v}`);
    project = await makeDeployProject(fleet, {
      venvs: venvs.map((path) => ({ host: h, path })),
      requirements: 'tinyapp\n',
      wheels: [await buildWheel(wheels, { name: 'tinyapp', version: '1.0' })],
    });
  });
  after(async () => fleet?.stop());

  /** The run's terminal output without colours and cursor movement (the planning live view draws some). */
  const deploy = async (answers: string[]) => {
    const r = await runVdeployInPty(['deploy', '--deployfile', join(project.dir, 'deployfile.ts')], { prompt: PROMPT, answers });
    return { ...r, output: stripVTControlCharacters(r.output) };
  };

  it('d shows the plan for that venv, y, n, ? shows the help, q quits: one line per question, no Enter', async () => {
    const r = await deploy(['d', 'y', 'n', '?', 'q']);
    expect(r.exitCode, r.output).to.equal(0);
    const lines = r.output.split(/\r?\n/);
    // The plan names the venv whose changes "the same changes as" refers to.
    expect(r.output).to.include(`${ids[1]}  1 to install  (the same changes as ${ids[0]})`);
    // Each question is one line: the key typed ends it.
    const q = (i: number, key: string) => `(${i + 1}/4) Deploy to ${ids[i]} ${PROMPT}${key}`;
    expect(lines).to.include.members([q(0, 'd'), q(0, 'y'), q(1, 'n'), q(2, '?'), q(2, 'q')]);
    // d: that venv's planned changes in full, then the same question again.
    const afterD = lines.indexOf(q(0, 'd'));
    expect(lines[afterD + 1]).to.equal(`${ids[0]}  1 to install`);
    expect(lines[afterD + 2]).to.match(/^\s+\+\s+tinyapp\s+1\.0\s+install$/);
    // ?: the help exactly as docs/cli.md shows it.
    const doc = await documentedSession();
    const afterHelp = lines.indexOf(q(2, '?'));
    const help = doc.filter((l) => /^[ynaqd?] - /.test(l));
    expect(help).to.have.length(6);
    expect(lines.slice(afterHelp + 1, afterHelp + 7)).to.deep.equal(help);
    // The documented questions have exactly the CLI's shape.
    for (const line of doc.filter((l) => l.startsWith('('))) expect(line).to.match(/^\(\d+\/\d+\) (Deploy to|Roll back) \S+@\S+:\/\S+ \[y,n,a,q,d,\?\]\?( [ynaqd?])?$/);
    expect(r.output, 'the old five-line list').not.to.match(/[ynaq]\) (yes|no|all remaining|quit)/);
    expect(r.output).to.match(/deployed/);
    expect(await Promise.all(venvs.map((v) => installedVersion(v, 'tinyapp')))).to.deep.equal(['1.0', undefined, undefined, undefined]);
  });

  it('a takes this venv and all the remaining ones; Enter typed out of habit is ignored', async () => {
    // (An Enter prints nothing, so the driver types it together with the next key.)
    const r = await deploy(['\rn', 'a']);
    expect(r.exitCode, r.output).to.equal(0);
    expect(r.output).to.include(`(1/3) Deploy to ${ids[1]} ${PROMPT}n`);
    expect(r.output).to.include(`(2/3) Deploy to ${ids[2]} ${PROMPT}a`);
    expect(r.output).not.to.include('(3/3)');
    expect(await Promise.all(venvs.map((v) => installedVersion(v, 'tinyapp')))).to.deep.equal(['1.0', undefined, '1.0', '1.0']);
  });

  it('Ctrl-C at the prompt applies nothing and exits 130', async () => {
    const r = await deploy(['\x03']);
    expect(r.exitCode, r.output).to.equal(130);
    expect(r.output).to.match(/interrupted at the confirmation prompt; nothing was deployed/);
    expect(await installedVersion(venvs[1]!, 'tinyapp')).to.equal(undefined);
  });
});
