/** runCli in-process: importing it starts nothing, and everything it prints goes through the Output. */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Output } from '../../src/cli/output.js';
import { runCli } from '../../src/cli/run-cli.js';
import { REPO_ROOT } from '../helpers/paths.js';

interface Captured extends Output {
  stdout: string[];
  stderr: string[];
}

function capture(): Captured {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    out: (line = '') => stdout.push(line),
    err: (line = '') => stderr.push(line),
    json: (value) => stdout.push(JSON.stringify(value, null, 2)),
    isTTY: false,
  };
}

describe('runCli (in-process)', () => {
  it('prints the version through the Output and returns 0, leaving the process running', async () => {
    const output = capture();
    expect(await runCli(['--version'], output)).to.equal(0);
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(output.stdout).to.deep.equal([version]);
    expect(output.stderr).to.deep.equal([]);
  });

  it('prints the help through the Output', async () => {
    const output = capture();
    expect(await runCli(['--help'], output)).to.equal(0);
    expect(output.stdout.join('\n')).to.match(/^vdeploy <command> \[options\]/).and.include('Commands:');
  });

  it('runs a command: venvs --json of the example deployfile', async () => {
    const output = capture();
    const code = await runCli(['venvs', 'web1', '--json', '--deployfile', join(REPO_ROOT, 'deployfile.example.ts')], output);
    expect(code, output.stderr.join('\n')).to.equal(0);
    const venvs = JSON.parse(output.stdout.join('\n')) as Array<{ id: string; host: string }>;
    expect(venvs.length).to.be.greaterThan(0);
    expect(venvs.every((v) => v.host === 'web1')).to.equal(true);
  });

  it('reports a usage error on the Output with exit code 2', async () => {
    const output = capture();
    expect(await runCli(['no-such-command'], output)).to.equal(2);
    expect(output.stdout).to.deep.equal([]);
    expect(output.stderr.join('\n')).to.include('error: unknown command "no-such-command"');
  });
});
