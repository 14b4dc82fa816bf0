import type { ApplyFilesRequest, FilesPlan, HostFileFacts, HostFiles } from './types.js';

export function planHostFiles(desired: HostFiles, facts: HostFileFacts, opts: { prune: boolean }): FilesPlan {
  return { sudo: desired.sudo, ...(desired.stateDir ? { stateDir: desired.stateDir } : {}), files: [], orphans: [], prune: opts.prune, pending: facts.pending, handlers: [], daemonReload: false };
}

export function applyFilesRequest(plan: FilesPlan, desired: HostFiles, facts: HostFileFacts): ApplyFilesRequest {
  return { op: 'apply', stateDir: plan.stateDir ?? null, host: desired.host, write: [], meta: [], remove: [], handlers: plan.handlers, managed: facts.managed };
}
