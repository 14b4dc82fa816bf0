/** Runs the built CLI binary as a user would, and returns what it did as a value. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { registerTempDir } from '../support/hooks.js';
import { CLI_BIN, REPO_ROOT } from './paths.js';

export interface CliResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

export interface RunCliOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  input?: string;
  timeoutMs?: number;
}

export function runVdeploy(args: string[], options: RunCliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_BIN, ...args], {
      cwd: options.cwd,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve({ exitCode, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** A fresh temporary directory, removed when the test run ends. */
/** The built CLI as a child process a test can signal (runVdeploy waits instead); `done` resolves when it exits. */
export function startVdeploy(args: string[], cwd: string): { child: ChildProcess; done: Promise<CliResult>; stderr: () => string } {
  const child = spawn(process.execPath, [CLI_BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1', SSH_AUTH_SOCK: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<CliResult>((resolve) => child.on('close', (exitCode) => resolve({ exitCode, stdout, stderr })));
  return { child, done, stderr: () => stderr };
}

export async function makeTempDir(prefix = 'vdeploy-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  registerTempDir(dir);
  return dir;
}

export interface PtyOptions {
  /** Type the next answer each time this text has appeared and the output has gone quiet. */
  prompt?: string;
  /** What to type, in order: 'y', '\x03' (Ctrl-C), …; `{after, send}`: type `send` once `after` has appeared since the previous answer. */
  answers: Array<string | { after: string; send: string }>;
  /** Instead of waiting for the prompt, type the answers once this file exists (a live view never goes quiet). */
  whenFile?: string;
  /** Added to the environment; `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  /** Send stdout or stderr to this file instead of the terminal, as `vdeploy … >FILE` / `2>FILE` would. */
  redirect?: { stdout?: string; stderr?: string };
  cwd?: string;
}

/**
 * Runs the built CLI in a real pseudo-terminal (test/helpers/pty_drive.py), as a person at a terminal
 * would: stdout and stderr are the terminal, Ctrl-C is the terminal's \x03. Its whole output is one string.
 */
export function runVdeployInPty(args: string[], options: PtyOptions): Promise<{ exitCode: number; output: string }> {
  return runInPty([process.execPath, CLI_BIN, ...args], options);
}

/** Any command in a real pseudo-terminal, driven as runVdeployInPty drives the CLI. */
export function runInPty(argv: string[], options: PtyOptions): Promise<{ exitCode: number; output: string }> {
  const driver = join(REPO_ROOT, 'test', 'helpers', 'pty_drive.py');
  const { stdout: outFile, stderr: errFile } = options.redirect ?? {};
  const env = {
    ...process.env,
    NO_COLOR: '1',
    SSH_AUTH_SOCK: '',
    ...options.env,
    ...(options.whenFile ? { PTY_DRIVE_WHEN_FILE: options.whenFile } : {}),
    ...(outFile ? { PTY_STDOUT_FILE: outFile } : {}),
    ...(errFile ? { PTY_STDERR_FILE: errFile } : {}),
  };
  // The redirection is the shell's, as the user's would be; the file names travel in the environment.
  const redirected = outFile || errFile ? ['/bin/sh', '-c', `exec "$@"${outFile ? ' >"$PTY_STDOUT_FILE"' : ''}${errFile ? ' 2>"$PTY_STDERR_FILE"' : ''}`, 'sh', ...argv] : argv;
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/python3', [driver, options.prompt ?? '', JSON.stringify(options.answers), ...redirected], {
      cwd: options.cwd,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.on('error', reject);
    child.on('close', () => {
      try {
        resolve(JSON.parse(stdout) as { exitCode: number; output: string });
      } catch {
        reject(new Error(`pty_drive.py gave no result: ${stdout.slice(0, 200)}`));
      }
    });
  });
}

/** A usage/config error as users see it: exit 2, one `error:` line matching `pattern`, a `hint:` line, no stack trace. */
export function expectOneLineError(r: { exitCode: number | null; stderr: string }, pattern: RegExp): void {
  expect(r.exitCode, r.stderr).to.equal(2);
  const lines = r.stderr.trim().split('\n');
  expect(lines[0]).to.match(/^error: /);
  expect(lines[0]).to.match(pattern);
  expect(lines[1]).to.match(/^hint: /);
  expect(r.stderr).not.to.match(/\n\s+at /);
}
