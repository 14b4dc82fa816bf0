/** Deploy events as plain lines (CI logs, pipes): one line per event that matters, no colours needed. */
import chalk from 'chalk';
import type { DeployEvent } from '../deploy/events.js';
import { formatDuration } from '../remote/connection.js';

export function formatEvent(e: DeployEvent): string | undefined {
  switch (e.kind) {
    case 'host:connected':
      return `${e.host}: connected (${formatDuration(e.ms)})`;
    case 'host:probed':
      return `${e.host}: probed (${formatDuration(e.ms)})`;
    case 'host:failed':
      return `${e.host}: ${chalk.red(`${e.stage} failed`)}: ${e.message}`;
    case 'push:start':
      return `${e.host}: pushing ${e.wheels.length} wheel${e.wheels.length === 1 ? '' : 's'}`;
    case 'push:end':
      return `${e.host}: pushed ${e.wheels.length} wheel${e.wheels.length === 1 ? '' : 's'}, ${formatBytes(e.bytes)} (${formatDuration(e.ms)})`;
    case 'step:end':
      return `${e.venv}: ${e.step} ${e.ok ? 'ok' : chalk.red('failed')} (${formatDuration(e.ms)})`;
    case 'venv:end':
      return `${e.venv}: ${e.outcome} (${formatDuration(e.ms)})`;
    case 'files:start':
      return `${e.host}: applying files`;
    case 'files:end':
      return `${e.host}: files ${e.ok ? 'ok' : chalk.red('failed')}, ${e.written} written, ${e.handlers} handler${e.handlers === 1 ? '' : 's'} run (${formatDuration(e.ms)})`;
    case 'reload:end':
      return `${e.host}: reload ${e.ok ? 'ok' : chalk.red('failed')} (${formatDuration(e.ms)})`;
    case 'interrupt':
      return chalk.yellow(e.message);
    case 'ship:packed':
      return `${e.venv}: packed group ${e.group.slice(0, 16)}, ${formatBytes(e.bytes)}${e.deltaBytes !== undefined ? ` (delta ${formatBytes(e.deltaBytes)})` : ''} (${formatDuration(e.ms)})`;
    case 'ship:fetched':
      return `${e.host}: fetched group ${e.group.slice(0, 16)}, ${formatBytes(e.bytes)} (${formatDuration(e.ms)})`;
    case 'ship:sent':
      return `${e.host}: sent group ${e.group.slice(0, 16)} (${e.ship}), ${formatBytes(e.bytes)} (${formatDuration(e.ms)})`;
    case 'ship:fallback':
      return `${e.venv}: ${chalk.yellow('building with pip')}: ${e.reason}`;
    default:
      return undefined;
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(1)} GiB`;
}
