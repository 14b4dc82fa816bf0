// Preloaded into the vdeploy process (`node --import`) when GNU time is not installed: writes the
// process's peak resident set size (KiB, as GNU time's %M) and its user and system CPU seconds (%U %S)
// to VDEPLOY_BENCH_RSS_FILE at exit.
import { writeFileSync } from 'node:fs';

const file = process.env.VDEPLOY_BENCH_RSS_FILE;
if (file) {
  delete process.env.VDEPLOY_BENCH_RSS_FILE;
  process.on('exit', () => {
    const u = process.resourceUsage();
    writeFileSync(file, `${u.maxRSS} ${u.userCPUTime / 1e6} ${u.systemCPUTime / 1e6}\n`);
  });
}
