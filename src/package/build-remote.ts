/**
 * `buildOn`: a package's venv built on a host of the target OS over SSH (as vdist builds in a
 * container of it), then downloaded: a temporary directory there gets the resolved wheels and
 * requirements, the venv is created, installed, relocated and compiled with the same commands as
 * here, then packed with tar and fetched (Connection.get) into the local staging directory.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ResolvedConfig } from '../config/resolve-config.js';
import { VdeployError } from '../errors.js';
import { relocateVenv } from '../relocate/relocate.js';
import type { Connection } from '../remote/connection.js';
import type { ResolvedPackage } from '../resolve/resolve-venv.js';
import { LocalConnection } from '../remote/local-connection.js';
import type { BuildStep } from './build-venv.js';
import { compile, run } from './venv-steps.js';

export interface RemoteBuild {
  config: ResolvedConfig;
  prefix: string;
  python: string;
  packages: ResolvedPackage[];
  /** The local staging directory: receives `venv/`. */
  staging: string;
  step: (s: BuildStep, detail?: string) => void;
  signal?: AbortSignal;
}

/** Builds the venv on `conn`'s host; returns the remote build directory's path (already removed there). */
export async function buildOnHost(conn: Connection, b: RemoteBuild): Promise<string> {
  if (!conn.get) throw new VdeployError(`${conn.target}: this connection cannot download files`, { hint: 'buildOn needs an SSH connection (SFTP)' });
  const made = await conn.exec(['mktemp', '-d', '/tmp/vdeploy-package-XXXXXX'], { nothrow: true });
  const remote = made.stdout.trim();
  if (made.exitCode !== 0 || !remote.startsWith('/tmp/vdeploy-package-')) throw new VdeployError(`${conn.target}: cannot make a build directory (${made.stderr.trim() || `exit ${made.exitCode}`})`, { hint: 'the build host needs mktemp and a writable /tmp' });
  const venv = `${remote}/venv`;
  try {
    b.step('install', `uploading ${b.packages.length} wheels to ${conn.target}:${remote}`);
    await run(conn, ['mkdir', `${remote}/wheels`], 'mkdir', b.signal);
    for (const p of b.packages) await conn.put(join(b.config.wheels, p.filename), `${remote}/wheels/${p.filename}`);
    const reqs = join(b.staging, 'requirements.txt');
    await writeFile(reqs, b.packages.map((p) => `${p.name}==${p.version} --hash=sha256:${p.sha256}\n`).join(''));
    await conn.put(reqs, `${remote}/requirements.txt`);
    b.step('venv', `${conn.target}: ${b.python} -m venv`);
    await run(conn, [b.python, '-m', 'venv', venv], `creating the venv on ${conn.target}`, b.signal);
    b.step('install', `${conn.target}: pip install`);
    await run(conn, [`${venv}/bin/python`, '-m', 'pip', 'install', '--isolated', '--no-index', '--find-links', `${remote}/wheels`, '--require-hashes', '--no-deps', '--disable-pip-version-check', '--no-compile', '-r', `${remote}/requirements.txt`], `pip install on ${conn.target}`, b.signal);
    b.step('relocate', `${conn.target}:${venv} → ${b.prefix}/venv`);
    await relocateVenv(conn, { venv, newPath: `${b.prefix}/venv`, oldPath: venv }, b.signal ? { signal: b.signal } : {});
    await run(conn, ['rm', '-rf', `${venv}/.vdeploy`], 'cleaning up', b.signal);
    b.step('compile', `${conn.target}: bytecode for the final paths`);
    await compile(conn, b.python, venv, `${b.prefix}/venv`, b.signal);
    b.step('install', `downloading the venv from ${conn.target}`);
    await run(conn, ['tar', '-C', remote, '-czf', `${remote}/venv.tgz`, 'venv'], `packing the venv on ${conn.target}`, b.signal);
    await mkdir(b.staging, { recursive: true });
    await conn.get(`${remote}/venv.tgz`, join(b.staging, 'venv.tgz'));
    const local = new LocalConnection();
    await run(local, ['tar', '-C', b.staging, '-xzf', join(b.staging, 'venv.tgz')], 'unpacking the venv');
    await run(local, ['rm', '-f', join(b.staging, 'venv.tgz'), reqs], 'cleaning up');
    return remote;
  } finally {
    await conn.exec(['rm', '-rf', remote], { nothrow: true });
  }
}
