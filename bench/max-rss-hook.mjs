// Preloaded into the vdeploy process (`node --import`) when GNU time is not installed: writes the
// process's peak resident set size (KiB, as GNU time's %M) to VDEPLOY_BENCH_RSS_FILE at exit.
import { writeFileSync } from 'node:fs';

const file = process.env.VDEPLOY_BENCH_RSS_FILE;
if (file) {
  delete process.env.VDEPLOY_BENCH_RSS_FILE;
  process.on('exit', () => writeFileSync(file, `${process.resourceUsage().maxRSS}\n`));
}
