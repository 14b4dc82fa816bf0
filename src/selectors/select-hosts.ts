/**
 * What plan and deploy work on: the selected venvs, and the hosts to plan — those of the selected
 * venvs, plus hosts selected for their config files alone (docs/files.md). A host with files and no
 * venv selected there is named by a host-only selector (`host`, `user@host`, user being the login
 * user) or by the roles; with no selector, every host with files is. A deployfile with files and no
 * venvs is valid. A selector or role that matches nothing is still an error naming what exists.
 */
import { ConfigError } from '../errors.js';
import { entriesFor } from '../files/desired-files.js';
import type { ResolvedConfig, ResolvedHost, ResolvedVenv } from '../config/resolve-config.js';
import { checkRoles, describeTargets, matchesSelector, matchVenvs, suggestTargets, type SelectVenvsOptions } from './select-venvs.js';
import { parseSelector, type Selector } from './selector.js';

export interface SelectHostsOptions extends SelectVenvsOptions {
  /** Whether the deployfile gives this host config files (desired-files.ts decides which). */
  hasFiles: (host: ResolvedHost) => boolean;
}

export interface Targets {
  /** In deployfile order; may be empty when hosts are selected for their files only. */
  venvs: ResolvedVenv[];
  /** In deployfile order, each once. */
  hosts: ResolvedHost[];
}

/**
 * Whether the deployfile gives a host config files: entries of its own, or a top-level entry whose
 * `hosts` names it or whose `roles` it has (an entry with neither goes to every host).
 */
export function hostHasFiles(config: ResolvedConfig, host: ResolvedHost): boolean {
  return entriesFor(config, host).length > 0;
}

/** A host-only selector (no path) that names this host; its user, if any, is the login user. */
export function matchesHost(host: ResolvedHost, selector: Selector): boolean {
  if (selector.path !== undefined || selector.host === undefined) return false;
  if (selector.host !== host.name && selector.host !== host.address) return false;
  return selector.user === undefined || selector.user === host.user;
}

export function selectTargets(config: ResolvedConfig, options: SelectHostsOptions): Targets {
  const selectors = (options.selectors ?? []).map(parseSelector);
  const roles = options.roles ?? [];
  checkRoles(config, roles);
  const withFiles = config.hosts.filter((h) => options.hasFiles(h));
  for (const selector of selectors) {
    if (config.venvs.some((v) => matchesSelector(v, selector)) || withFiles.some((h) => matchesHost(h, selector))) continue;
    const what = withFiles.length > 0 ? 'matches no venv and no host with files' : 'matches no venv';
    throw new ConfigError(`selector "${selector.text}" ${what}`, { hint: suggestTargets(config, selector) });
  }
  const venvs = matchVenvs(config, selectors, roles);
  const fileHosts = withFiles.filter(
    (h) => (selectors.length === 0 || selectors.some((s) => matchesHost(h, s))) && (roles.length === 0 || roles.some((r) => h.roles.includes(r))),
  );
  const hosts = config.hosts.filter((h) => fileHosts.includes(h) || venvs.some((v) => v.host === h));
  if (hosts.length === 0) {
    const why =
      config.venvs.length === 0 && withFiles.length === 0
        ? 'the deployfile declares no venvs and no files'
        : withFiles.length === 0
          ? 'the selectors and --role match no venv together'
          : 'the selectors and --role match no venv and no host with files together';
    throw new ConfigError(why, { hint: describeTargets(config) });
  }
  return { venvs, hosts };
}

/** The hosts plan and deploy work on (see selectTargets). */
export function selectHosts(config: ResolvedConfig, options: SelectHostsOptions): ResolvedHost[] {
  return selectTargets(config, options).hosts;
}
