/**
 * The wheels every contender deploys: Django, asgiref, sqlparse and gunicorn from ../shared/wheels,
 * and a small Django app ("shopapp", depending on Django and gunicorn) built here in 1.0 and 1.1.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { buildDjangoAppWheel } from '../test/helpers/django-app.js';
import { SHARED_WHEELS } from '../test/helpers/paths.js';
import type { BenchWheel } from './contenders.js';
import { normalizeName } from './venvs.js';

const SHARED = ['django', 'asgiref', 'sqlparse', 'gunicorn'];
export const APP = 'shopapp';

export interface WheelSet {
  shared: BenchWheel[];
  app10: BenchWheel;
  app11: BenchWheel;
  /** Every wheel above: what the deployfile's repository releases. */
  all: BenchWheel[];
}

export async function prepareWheels(dir: string): Promise<WheelSet> {
  mkdirSync(dir, { recursive: true });
  let files: string[];
  try {
    files = readdirSync(SHARED_WHEELS);
  } catch {
    throw new Error(`shared wheels not found at ${SHARED_WHEELS}: put the repository beside ../shared, or set VDEPLOY_SHARED_WHEELS=DIR`);
  }
  const shared = SHARED.map((name) => {
    const file = files.find((f) => f.startsWith(`${name}-`) && f.endsWith('.whl'));
    if (!file) throw new Error(`no ${name} wheel in ${SHARED_WHEELS}`);
    return describeWheel(join(SHARED_WHEELS, file));
  });
  const app10 = describeWheel(await buildDjangoAppWheel(dir, { version: '1.0' }));
  const app11 = describeWheel(await buildDjangoAppWheel(dir, { version: '1.1' }));
  return { shared, app10, app11, all: [...shared, app10, app11] };
}

/** The exact set a venv holds with the app at `version`. */
export function wantedWheels(set: WheelSet, appVersion: '1.0' | '1.1'): BenchWheel[] {
  return [...set.shared, appVersion === '1.0' ? set.app10 : set.app11];
}

/** Copy wheels into a directory (a find-links directory, a wheel cache). */
export function copyWheels(wheels: readonly BenchWheel[], dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const w of wheels) copyFileSync(w.file, join(dir, basename(w.file)));
}

function describeWheel(file: string): BenchWheel {
  const [name, version] = basename(file).split('-') as [string, string];
  return { name, key: normalizeName(name), version, file, sha256: createHash('sha256').update(readFileSync(file)).digest('hex') };
}
