/**
 * Package indexes for the `vdeploy fetch` tests, made the way users have them: a PEP 503 "simple"
 * directory (served as file://) over ../shared/wheels, and a --find-links directory of small wheels
 * built here for other platform tags (cp38/cp312 manylinux), a marker-dependent dependency, and a
 * project published only as an sdist. And the environment that keeps pip away from this machine's
 * own configuration (a global pip.conf and PIP_FIND_LINKS point at local mirrors).
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readdirSync } from 'node:fs';
import { buildWheel } from './build-wheel.js';
import { SHARED_WHEELS } from './paths.js';

export interface FetchIndex {
  /** file:// URL of the PEP 503 simple index over the shared real wheels. */
  simpleUrl: string;
  /** --find-links directory of the wheels built here (and the sdist). */
  findLinks: string;
  /** Built wheel paths by filename, to compare bytes with what lands in the repository. */
  built: Map<string, string>;
}

/**
 * fastlib 1.0 for cp38 and cp312 (manylinux_2_17) and for win_amd64 (never wanted), fastlib 2.0 for
 * cp312 only; markerapp 1.0 (pure) needs backportlib on Python < 3.9 only; onlysdist 1.0 is an sdist.
 */
export async function makeFetchIndex(dir: string): Promise<FetchIndex> {
  const findLinks = join(dir, 'platform-wheels');
  const built = new Map<string, string>();
  const add = async (path: string) => built.set(basename(path), path);
  const fastlib = (version: string, tag: string) =>
    buildWheel(findLinks, { name: 'fastlib', version, tag, files: { 'fastlib/__init__.py': `__version__ = "${version}"\nTAG = "${tag}"\n` } });
  await add(await fastlib('1.0', 'cp38-cp38-manylinux_2_17_x86_64'));
  await add(await fastlib('1.0', 'cp312-cp312-manylinux_2_17_x86_64'));
  await add(await fastlib('1.0', 'cp312-cp312-win_amd64'));
  await add(await fastlib('2.0', 'cp312-cp312-manylinux_2_17_x86_64'));
  await add(await buildWheel(findLinks, { name: 'backportlib', version: '1.0', requiresPython: '>=3.6' }));
  await add(await buildWheel(findLinks, { name: 'markerapp', version: '1.0', requiresPython: '>=3.6', requiresDist: ['backportlib>=1.0; python_version < "3.9"', 'fastlib>=1.0'] }));
  // pip never opens it (--only-binary=:all:): the name alone makes it an sdist on the index.
  await writeFile(join(findLinks, 'onlysdist-1.0.tar.gz'), 'not really a tarball\n');
  return { simpleUrl: await makeSimpleIndex(join(dir, 'simple'), SHARED_WHEELS), findLinks, built };
}

/** A PEP 503 simple index (one page per project, files copied beside it) of the wheels in `from`. */
export async function makeSimpleIndex(root: string, from: string): Promise<string> {
  const projects = new Map<string, string[]>();
  for (const file of readdirSync(from).filter((f) => f.endsWith('.whl'))) {
    const project = file.split('-')[0]!.toLowerCase().replace(/[-_.]+/g, '-');
    projects.set(project, [...(projects.get(project) ?? []), file]);
  }
  for (const [project, files] of projects) {
    await mkdir(join(root, project), { recursive: true });
    for (const file of files) await copyFile(join(from, file), join(root, project, file));
    const links = files.map((f) => `<a href="${encodeURIComponent(f)}">${f}</a><br/>`).join('\n');
    await writeFile(join(root, project, 'index.html'), `<!DOCTYPE html><html><body>\n${links}\n</body></html>\n`);
  }
  const index = [...projects.keys()].map((p) => `<a href="${p}/">${p}</a><br/>`).join('\n');
  await writeFile(join(root, 'index.html'), `<!DOCTYPE html><html><body>\n${index}\n</body></html>\n`);
  return pathToFileURL(root).href + '/';
}

/**
 * pip with no configuration of this machine: no config files (PIP_CONFIG_FILE=/dev/null is pip's
 * "none at all"), none of the PIP_* variables the machine sets, no pip cache (a wheel must come from
 * the test's index, not from one cached by an earlier run). Spawned children drop undefined values.
 */
export function isolatedPipEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  // Unset, not empty: pip would read an empty PIP_INDEX_URL as an index at ''.
  return {
    PIP_CONFIG_FILE: '/dev/null',
    PIP_FIND_LINKS: undefined,
    PIP_INDEX_URL: undefined,
    PIP_EXTRA_INDEX_URL: undefined,
    PIP_NO_INDEX: undefined,
    PIP_NO_CACHE_DIR: '1',
    PIP_DISABLE_PIP_VERSION_CHECK: '1',
    ...extra,
  };
}
