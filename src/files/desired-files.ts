import type { ResolvedConfig, ResolvedHost } from '../config/resolve-config.js';
import type { HostFiles } from './types.js';

export async function desiredFiles(_config: ResolvedConfig, host: ResolvedHost): Promise<HostFiles> {
  return { host: host.name, sudo: false, files: [] };
}

export async function desiredFilesForHosts(config: ResolvedConfig, hosts: readonly ResolvedHost[]): Promise<Map<string, HostFiles>> {
  const out = new Map<string, HostFiles>();
  for (const host of hosts) out.set(host.name, await desiredFiles(config, host));
  return out;
}
