// Colour through the built binary, in a real pseudo-terminal where the user has one: on by default on
// a terminal, off with NO_COLOR / --no-color / FORCE_COLOR=0, decided per stream (a redirected stream
// gets none while the terminal keeps its colour), and forced into a pipe by FORCE_COLOR or --color.
import { expect } from 'chai';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, runVdeploy, runVdeployInPty } from '../helpers/cli.js';
import { SHARED_WHEELS } from '../helpers/paths.js';

/** A colour (SGR) escape; cursor movement and the like don't count. */
const SGR = /\x1b\[[0-9;]*m/;

/** A terminal with no colour preference of its own: the tests say what they set. */
const PLAIN_ENV = { NO_COLOR: undefined, FORCE_COLOR: undefined, TERM: 'xterm' };

/** A project whose one host is never reached: `venvs` needs no connection, `plan` fails at the SSH key. */
async function project(): Promise<string> {
  const dir = await makeTempDir();
  const config = { hosts: [{ name: 'web1', address: '127.0.0.1', port: 1 }], venvs: [{ host: 'web1', path: '/srv/app/venv' }] };
  await writeFile(join(dir, 'deployfile.ts'), `export default ${JSON.stringify(config)};\n`);
  await writeFile(join(dir, 'requirements.txt'), 'idna\n');
  return dir;
}

/** add-wheel of one good wheel and one misnamed file: "added" on stdout, "refused:" on stderr. */
async function wheelFiles(dir: string): Promise<string[]> {
  const good = join(dir, 'idna-3.20-py3-none-any.whl');
  await copyFile(join(SHARED_WHEELS, 'idna-3.20-py3-none-any.whl'), good);
  const junk = join(dir, 'junk.whl');
  await writeFile(junk, 'not a wheel');
  return [good, junk];
}

/** The CLI in a pseudo-terminal; it runs in the test's directory, so --deployfile / --repo name the project. */
function pty(args: string[], env: Record<string, string | undefined>, redirect?: { stdout?: string; stderr?: string }) {
  return runVdeployInPty(args, { answers: [], env: { ...PLAIN_ENV, ...env }, ...(redirect ? { redirect } : {}) });
}

describe('colour', () => {
  it('is on by default on a terminal, on stdout and on stderr (an empty NO_COLOR counts as unset)', async () => {
    const dir = await project();
    const table = await pty(['venvs', '--deployfile', join(dir, 'deployfile.ts')], {});
    expect(table.exitCode, table.output).to.equal(0);
    expect(table.output).to.include('VENV').and.match(SGR);
    const error = await pty(['venvs', 'web9', '--deployfile', join(dir, 'deployfile.ts')], { NO_COLOR: '' });
    expect(error.exitCode, error.output).to.equal(2);
    expect(error.output).to.match(/\x1b\[31merror:/);
  });

  it('is off on a terminal with NO_COLOR (any non-empty value), --no-color (before or after the command, beating FORCE_COLOR) or FORCE_COLOR=0', async () => {
    const dir = await project();
    const deployfile = join(dir, 'deployfile.ts');
    const cases: Array<[string[], Record<string, string | undefined>]> = [
      [['venvs', 'web9'], { NO_COLOR: '1' }],
      [['venvs', 'web9'], { NO_COLOR: '0' }],
      [['venvs', 'web9', '--no-color'], {}],
      [['--no-color', 'venvs', 'web9'], { FORCE_COLOR: '1' }],
      [['venvs', 'web9'], { FORCE_COLOR: '0' }],
    ];
    for (const [args, env] of cases) {
      const r = await pty([...args, '--deployfile', deployfile], env);
      const what = `${args.join(' ')} ${JSON.stringify(env)}`;
      expect(r.exitCode, `${what}: ${r.output}`).to.equal(2);
      expect(r.output, what).to.include('error: selector "web9" matches no venv');
      expect(r.output, what).not.to.match(SGR);
    }
    const table = await pty(['venvs', '--deployfile', deployfile], { NO_COLOR: '1' });
    expect(table.output).to.include('VENV').and.not.match(SGR);
  });

  it('is decided per stream: a redirected stderr or stdout gets none while the terminal keeps its colour', async () => {
    const dir = await project();
    const files = await wheelFiles(dir);

    const errFile = join(dir, 'stderr.log');
    const errRedirected = await pty(['add-wheel', '--repo', join(dir, 'wheels-a'), ...files], {}, { stderr: errFile });
    expect(errRedirected.exitCode, errRedirected.output).to.equal(1);
    expect(errRedirected.output).to.match(/\x1b\[32madded/);
    const errLog = await readFile(errFile, 'utf8');
    expect(errLog).to.include('refused:').and.not.match(SGR);

    const outFile = join(dir, 'stdout.log');
    const outRedirected = await pty(['add-wheel', '--repo', join(dir, 'wheels-b'), ...files], {}, { stdout: outFile });
    expect(outRedirected.exitCode, outRedirected.output).to.equal(1);
    expect(outRedirected.output).to.match(/\x1b\[31mrefused:/);
    const outLog = await readFile(outFile, 'utf8');
    expect(outLog).to.include('added').and.not.match(SGR);
  });

  it('is off in pipes, and forced there by FORCE_COLOR or --color (which beats NO_COLOR)', async () => {
    const dir = await project();
    const files = await wheelFiles(dir);
    const piped = await runVdeploy(['add-wheel', '--repo', join(dir, 'w1'), ...files], { env: { NO_COLOR: undefined, TERM: 'xterm' } });
    expect(piped.exitCode, piped.stderr).to.equal(1);
    expect(piped.stdout + piped.stderr).to.include('added').and.include('refused:').and.not.match(SGR);

    const forced = await runVdeploy(['add-wheel', '--repo', join(dir, 'w2'), ...files], { env: { NO_COLOR: undefined, FORCE_COLOR: '1' } });
    expect(forced.stdout).to.match(/\x1b\[32madded/);
    expect(forced.stderr).to.match(/\x1b\[31mrefused:/);

    const flag = await runVdeploy(['add-wheel', '--color', '--repo', join(dir, 'w3'), ...files], { env: { NO_COLOR: '1' } });
    expect(flag.stdout).to.match(/\x1b\[32madded/);
    expect(flag.stderr).to.match(/\x1b\[31mrefused:/);
  });

  it("the live view on a terminal follows the same decision (listr2's icons included)", async () => {
    const dir = await project();
    const deployfile = join(dir, 'deployfile.ts');
    const coloured = await pty(['plan', '--deployfile', deployfile], {});
    expect(coloured.exitCode, coloured.output).to.equal(1);
    expect(coloured.output).to.include('error (connect)').and.match(SGR);
    for (const [args, env] of [[['plan'], { NO_COLOR: '1' }], [['plan', '--no-color'], {}]] as const) {
      const plain = await pty([...args, '--deployfile', deployfile], env);
      expect(plain.exitCode, plain.output).to.equal(1);
      expect(plain.output).to.include('error (connect)').and.not.match(SGR);
    }
  });
});
