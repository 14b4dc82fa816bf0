/** Where tests find the repository, the built CLI and the shared real wheels. */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI_BIN = join(REPO_ROOT, 'dist', 'cli', 'main.js');

/** `../shared/wheels` beside the clone (override with VDEPLOY_SHARED_WHEELS). */
export const SHARED_WHEELS = process.env.VDEPLOY_SHARED_WHEELS ?? resolve(REPO_ROOT, '..', 'shared', 'wheels');

export function sharedWheel(prefix: string): string {
  const dir = SHARED_WHEELS;
  if (!existsSync(dir)) throw new Error(`shared wheels not found at ${dir} (set VDEPLOY_SHARED_WHEELS)`);
  return join(dir, prefix);
}
