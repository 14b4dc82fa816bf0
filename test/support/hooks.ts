// Root hooks: temporary directories the tests made are removed when the run ends
// (kept with VDEPLOY_KEEP_TMP=1 for debugging).
import { rm } from 'node:fs/promises';

const tempDirs = new Set<string>();

export function registerTempDir(dir: string): void {
  tempDirs.add(dir);
}

export const mochaHooks = {
  async afterAll(): Promise<void> {
    if (process.env.VDEPLOY_KEEP_TMP) return;
    await Promise.all([...tempDirs].map((d) => rm(d, { recursive: true, force: true })));
    tempDirs.clear();
  },
};
