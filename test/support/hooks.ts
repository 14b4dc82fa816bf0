// Root hooks: temporary directories the tests made are removed when the run ends
// (kept with VDEPLOY_KEEP_TMP=1 for debugging).
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const tempDirs = new Set<string>();

export function registerTempDir(dir: string): void {
  tempDirs.add(dir);
}

export const mochaHooks = {
  beforeAll(): void {
    // vdeploy remembers interpreter facts and wheel metadata in ~/.cache/vdeploy: tests (and the CLIs they start, which
    // inherit this environment) use a cache of their own. A hook, not module code: helpers that import
    // this file outside mocha (practice-fleet) leave the user's environment alone.
    const dir = mkdtempSync(join(tmpdir(), 'vdeploy-test-cache-'));
    registerTempDir(dir);
    process.env.VDEPLOY_CACHE_DIR = dir;
  },
  async afterAll(): Promise<void> {
    if (process.env.VDEPLOY_KEEP_TMP) return;
    await Promise.all([...tempDirs].map((d) => rm(d, { recursive: true, force: true })));
    tempDirs.clear();
  },
};
