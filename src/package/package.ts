/**
 * `vdeploy package` (docs/packages.md): for each selected `packages` entry, the venv built here and
 * relocated to its prefix, one `PackageTree`, written as .deb and/or .rpm into the output directory
 * (each file through a temporary name and rename(2): nothing half-written), and optionally a flat apt
 * repository updated with the .debs. Returns what was written; progress goes out as events.
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ResolvedConfig, ResolvedHost, ResolvedPackageConfig } from '../config/resolve-config.js';
import type { HostConnector } from '../remote/connect-host.js';
import { ConfigError } from '../errors.js';
import type { Connection } from '../remote/connection.js';
import { LocalConnection } from '../remote/local-connection.js';
import { atomicWrite, updateAptRepo } from './apt-repo.js';
import { assembleTree } from './assemble.js';
import { buildPackageVenv, type BuildEvent } from './build-venv.js';
import { debFileName, writeDeb } from './deb.js';
import { rpmFileName, writeRpm } from './rpm.js';
import type { PackageTree } from './tree.js';

export type PackageFormat = 'deb' | 'rpm';

export interface PackageOptions {
  /** Package names to build (none: every `packages` entry). */
  names?: string[];
  formats: PackageFormat[];
  version: string;
  iteration?: number;
  /** Default: the current directory. */
  outDir?: string;
  /** Also add the .debs to this flat apt repository. */
  aptRepo?: string;
  /** Every mtime (SOURCE_DATE_EPOCH); default: the newest release-log time of the packaged wheels. */
  sourceDateEpoch?: number;
  local?: Connection;
  /** Connects to a package's buildOn host. */
  connector?: HostConnector;
  onEvent?: (event: PackageEvent) => void;
  signal?: AbortSignal;
}

export interface WrittenPackage {
  package: string;
  format: PackageFormat;
  /** Absolute path. */
  file: string;
  size: number;
  sha256: string;
  architecture: string;
  /** The packaged wheels (name==version). */
  contents: string[];
}

export interface PackageResult {
  written: WrittenPackage[];
  aptRepo?: { dir: string; files: string[]; packages: number };
}

export type PackageEvent = BuildEvent | { kind: 'written'; written: WrittenPackage } | { kind: 'apt-repo'; dir: string };

/** Upstream versions both dpkg and rpm accept (no `-`: it separates the iteration). */
const VERSION = /^[0-9][A-Za-z0-9.+~]*$/;

export function selectPackages(config: ResolvedConfig, names: readonly string[]): ResolvedPackageConfig[] {
  if (config.packages.length === 0) {
    throw new ConfigError('the deployfile declares no packages', { hint: "add `packages: [{ name, venv: 'host:/path', prefix: '/opt/NAME', interpreter: 'system' }]` (docs/packages.md)" });
  }
  const unknown = names.filter((n) => !config.packages.some((p) => p.name === n));
  if (unknown.length > 0) {
    throw new ConfigError(`no package named ${unknown.join(', ')} in the deployfile`, { hint: `packages are: ${config.packages.map((p) => p.name).join(', ')}` });
  }
  return names.length === 0 ? config.packages : config.packages.filter((p) => names.includes(p.name));
}

export function checkVersion(version: string, iteration: number): void {
  if (!VERSION.test(version)) {
    throw new ConfigError(`--version ${JSON.stringify(version)} is not a package version`, { hint: 'start with a digit; use letters, digits and . + ~ only (no -: --iteration says the package revision), e.g. --version 1.4.2' });
  }
  if (!Number.isInteger(iteration) || iteration < 1) throw new ConfigError(`--iteration ${iteration} must be a whole number of at least 1`, { hint: 'e.g. --iteration 2 for a second package of the same version' });
}

export async function buildPackages(config: ResolvedConfig, options: PackageOptions): Promise<PackageResult> {
  const iteration = options.iteration ?? 1;
  checkVersion(options.version, iteration);
  const selected = selectPackages(config, options.names ?? []);
  if (options.aptRepo !== undefined && !options.formats.includes('deb')) throw new ConfigError('--apt-repo needs .deb packages', { hint: 'use --format deb or --format both with --apt-repo' });
  const local = options.local ?? new LocalConnection();
  const outDir = resolve(options.outDir ?? '.');
  await mkdir(outDir, { recursive: true });
  const written: WrittenPackage[] = [];
  for (const pkg of selected) {
    const built = await buildPackageVenv(config, pkg, { local, ...(options.connector ? { connect: (h: ResolvedHost) => options.connector!.connect(h) } : {}), ...(options.onEvent ? { onEvent: options.onEvent } : {}), ...(options.signal ? { signal: options.signal } : {}) });
    try {
      const mtime = options.sourceDateEpoch ?? built.newestRelease;
      const tree = await assembleTree({ pkg, built, version: options.version, iteration, mtime });
      const contents = built.packages.map((p) => `${p.name}==${p.version}`);
      for (const format of options.formats) {
        const w = await writePackage(tree, format, outDir);
        const done = { package: pkg.name, ...w, architecture: tree.meta.architecture, contents };
        written.push(done);
        options.onEvent?.({ kind: 'written', written: done });
      }
    } finally {
      await built.cleanup();
    }
  }
  const result: PackageResult = { written };
  if (options.aptRepo !== undefined) {
    const debs = written.filter((w) => w.format === 'deb').map((w) => w.file);
    const repo = await updateAptRepo(options.aptRepo, debs, options.sourceDateEpoch !== undefined ? { epoch: options.sourceDateEpoch } : {});
    result.aptRepo = { dir: repo.dir, files: repo.files, packages: repo.packages.length };
    options.onEvent?.({ kind: 'apt-repo', dir: repo.dir });
  }
  return result;
}

async function writePackage(tree: PackageTree, format: PackageFormat, outDir: string): Promise<{ format: PackageFormat; file: string; size: number; sha256: string }> {
  const data = format === 'deb' ? await writeDeb(tree) : await writeRpm(tree);
  const file = join(outDir, format === 'deb' ? debFileName(tree.meta) : rpmFileName(tree.meta));
  await atomicWrite(file, data);
  return { format, file, size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
}
