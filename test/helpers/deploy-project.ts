/**
 * A vdeploy project wired to a test fleet: a deployfile whose hosts are the fleet's sshds (each with
 * its own wheel cache under its root, since the fleet's hosts share this machine's disk), a wheel
 * repository filled through the real `add-wheel`, and a requirements file.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, runVdeploy, type CliResult, type RunCliOptions } from './cli.js';
import type { Fleet, FleetHost } from './fleet.js';

export interface ProjectVenv {
  /** A fleet host, or the name of one of `extraHosts`. */
  host: FleetHost | string;
  path: string;
  django?: { settings: string; cwd?: string; env?: Record<string, string> };
  reload?: string;
  /** The venv's health check, as written in a deployfile. */
  healthcheck?: Record<string, unknown>;
  requirements?: string;
  /** The interpreter a missing venv is created with; default /usr/bin/python3. */
  python?: string;
  /** The venv's owner (`venvs[].user`); default: the login user. */
  user?: string;
  /** `venvs[].releases`: the releases layout. */
  releases?: boolean | { keep?: number };
}

export interface DeployProjectOptions {
  venvs: ProjectVenv[];
  requirements: string;
  /** Wheel files to release with `vdeploy add-wheel`. */
  wheels: string[];
  /** Per-host reload command (shell text), by host name. */
  hostReload?: Record<string, string>;
  /** Hosts besides the fleet's, as deployfile entries (e.g. one where nothing listens). */
  extraHosts?: Array<Record<string, unknown>>;
  /** Extra top-level deployfile fields (JSON-able). */
  extra?: Record<string, unknown>;
  /** The SSH login user of the fleet's hosts; default fleet.user. */
  loginUser?: string;
  /** Each fleet host's wheelCache; default cacheDirOf(host). */
  wheelCache?: (host: FleetHost) => string;
  /** More fields of each fleet host's entry (JSON-able): `files`, `stateDir`, `sudo`… */
  hostFields?: (host: FleetHost) => Record<string, unknown>;
}

export interface DeployProject {
  dir: string;
  repo: string;
  run(args: string[], opts?: RunCliOptions): Promise<CliResult>;
  /** Rewrite requirements.txt. */
  setRequirements(text: string): Promise<void>;
  /** Release more wheels (exit code checked). */
  addWheels(files: string[]): Promise<void>;
}

export function cacheDirOf(host: FleetHost): string {
  return join(host.root, 'wheel-cache');
}

export async function makeDeployProject(fleet: Fleet, options: DeployProjectOptions): Promise<DeployProject> {
  const dir = await makeTempDir('vdeploy-project-');
  const repo = join(dir, 'wheels');
  await mkdir(repo, { recursive: true });
  await writeFile(join(repo, 'release_log'), '');
  const hosts: Array<Record<string, unknown>> = fleet.hosts.map((h) => ({
    name: h.name,
    address: h.address,
    port: h.port,
    user: options.loginUser ?? fleet.user,
    wheelCache: (options.wheelCache ?? cacheDirOf)(h),
    ...(options.hostReload?.[h.name] ? { reload: options.hostReload[h.name] } : {}),
    ...options.hostFields?.(h),
  }));
  hosts.push(...(options.extraHosts ?? []));
  const venvs = options.venvs.map((v) => ({
    host: typeof v.host === 'string' ? v.host : v.host.name,
    path: v.path,
    python: v.python ?? '/usr/bin/python3',
    ...(v.user ? { user: v.user } : {}),
    ...(v.django ? { django: v.django } : {}),
    ...(v.reload ? { reload: v.reload } : {}),
    ...(v.healthcheck ? { healthcheck: v.healthcheck } : {}),
    ...(v.requirements ? { requirements: v.requirements } : {}),
    ...(v.releases !== undefined ? { releases: v.releases } : {}),
  }));
  const config = {
    wheels: './wheels',
    requirements: './requirements.txt',
    ssh: { knownHosts: fleet.knownHostsPath, identityFile: fleet.clientKeyPath, strictHostKeyChecking: 'yes' },
    hosts,
    venvs,
    ...options.extra,
  };
  await writeFile(join(dir, 'deployfile.ts'), `export default ${JSON.stringify(config, null, 2)};\n`);
  await writeFile(join(dir, 'requirements.txt'), options.requirements);
  // No agent and no ~/.ssh keys of the machine: only the fleet's client key.
  const env = { SSH_AUTH_SOCK: undefined, VDEPLOY_SSH_PASSPHRASE: undefined };
  const run = (args: string[], opts: RunCliOptions = {}) => runVdeploy(args, { cwd: dir, timeoutMs: 300_000, ...opts, env: { ...env, ...opts.env } });
  const project: DeployProject = {
    dir,
    repo,
    run,
    setRequirements: (text) => writeFile(join(dir, 'requirements.txt'), text),
    async addWheels(files) {
      if (files.length === 0) return;
      const r = await run(['add-wheel', ...files]);
      if (r.exitCode !== 0) throw new Error(`add-wheel failed: ${r.stderr}${r.stdout}`);
    },
  };
  await project.addWheels(options.wheels);
  return project;
}
