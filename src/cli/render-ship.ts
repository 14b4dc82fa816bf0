/** Build once, ship: the deploy summary's line about shipping, and the report's ship fields per venv. */
import chalk from 'chalk';
import type { Report } from '../deploy/report.js';
import { plural } from './output.js';
import { formatBytes } from './render-events.js';

/** `shipped: 1 build, 7 receivers (3 full, 4 delta); sent 246.0 MiB of artifacts, 0 B of wheels`, and each fallback. */
export function renderShipSummary(report: Report): string[] {
  const shipped = report.venvs.filter((r) => r.shipped);
  const sent = report.bytesSent ?? { wheels: 0, artifacts: 0 };
  if (shipped.length === 0) return sent.artifacts > 0 || sent.wheels > 0 ? [`sent ${formatBytes(sent.artifacts)} of artifacts, ${formatBytes(sent.wheels)} of wheels`] : [];
  // A build counts once it packed (its tar's size is known); a failed builder's receivers fell back.
  const builds = shipped.filter((r) => r.shipped!.role === 'builder' && r.shipped!.bytes !== undefined).length;
  const received = shipped.filter((r) => r.shipped!.role === 'receiver' && !r.shipped!.fellBack);
  const full = received.filter((r) => r.shipped!.kind === 'full').length;
  const delta = received.length - full;
  const lines = [
    `shipped: ${plural(builds, 'build')}, ${plural(received.length, 'receiver')} (${full} full, ${delta} delta); sent ${formatBytes(sent.artifacts)} of artifacts, ${formatBytes(sent.wheels)} of wheels`,
  ];
  for (const r of shipped) if (r.shipped!.fellBack) lines.push(`  ${chalk.yellow('↯')} ${r.id}: built with pip instead (${r.shipped!.fellBack})`);
  return lines;
}
