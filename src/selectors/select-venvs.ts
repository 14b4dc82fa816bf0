/** Chooses the deployfile's venvs that a command's selectors and `--role` flags name. */
import { ConfigError } from '../errors.js';
import type { ResolvedConfig, ResolvedVenv } from '../config/resolve-config.js';
import { nearestName } from './nearest-name.js';
import { formatSelector, parseSelector, type Selector } from './selector.js';

export interface SelectVenvsOptions {
  selectors?: readonly string[];
  roles?: readonly string[];
}

export function matchesSelector(venv: ResolvedVenv, selector: Selector): boolean {
  if (selector.user !== undefined && selector.user !== venv.user) return false;
  if (selector.host !== undefined && selector.host !== venv.host.name && selector.host !== venv.host.address) return false;
  if (selector.path !== undefined && selector.path !== venv.path) return false;
  return true;
}

/**
 * The union of what the selectors match (each venv once, in deployfile order), narrowed to hosts with
 * one of `roles` when given. No selectors means every venv. A selector or role that matches nothing is
 * an error listing what exists, because a typo must never deploy to nothing and report success.
 */
export function selectVenvs(config: ResolvedConfig, options: SelectVenvsOptions = {}): ResolvedVenv[] {
  const selectors = (options.selectors ?? []).map(parseSelector);
  const roles = options.roles ?? [];
  checkRoles(config, roles);
  for (const selector of selectors) {
    if (!config.venvs.some((v) => matchesSelector(v, selector))) {
      throw new ConfigError(`selector "${selector.text}" matches no venv`, { hint: suggestTargets(config, selector) });
    }
  }

  const selected = matchVenvs(config, selectors, roles);
  if (selected.length === 0) {
    const why = config.venvs.length === 0 ? 'the deployfile declares no venvs' : 'the selectors and --role match no venv together';
    throw new ConfigError(why, { hint: describeTargets(config) });
  }
  return selected;
}

/** The venvs the selectors (any of them; none: all) and roles (any of them; none: all) match, in deployfile order. */
export function matchVenvs(config: ResolvedConfig, selectors: readonly Selector[], roles: readonly string[]): ResolvedVenv[] {
  return config.venvs.filter(
    (venv) =>
      (selectors.length === 0 || selectors.some((s) => matchesSelector(venv, s))) &&
      (roles.length === 0 || roles.some((r) => venv.host.roles.includes(r))),
  );
}

/** A role no host has is an error naming the roles that exist (a typo must never select nothing). */
export function checkRoles(config: ResolvedConfig, roles: readonly string[]): void {
  for (const role of roles) {
    if (!config.hosts.some((h) => h.roles.includes(role))) {
      const known = [...new Set(config.hosts.flatMap((h) => h.roles))];
      const near = nearestName(role, known);
      throw new ConfigError(`role "${role}" matches no host`, {
        hint: known.length ? `${near ? `did you mean "${near}"? ` : ''}roles in the deployfile: ${known.join(', ')}` : 'no host in the deployfile declares roles',
      });
    }
  }
}

/**
 * The hint for a selector that matches nothing: the nearest name of the same shape (a typo of a host
 * name, of `user@host`, of a path…), else a short summary; never every venv id on one line.
 */
export function suggestTargets(config: ResolvedConfig, selector: Selector): string {
  const sameShape = (v: ResolvedVenv) =>
    formatSelector({
      ...(selector.user !== undefined ? { user: v.user } : {}),
      ...(selector.host !== undefined ? { host: v.host.name } : {}),
      ...(selector.path !== undefined ? { path: v.path } : {}),
    });
  const near = nearestName(selector.text, new Set(config.venvs.map(sameShape)));
  return near ? `did you mean "${near}"? (\`vdeploy venvs\` lists every venv)` : describeTargets(config);
}

/** One short line on what exists, for the hints of selection errors: hosts, and where to see the venvs. */
export function describeTargets(config: ResolvedConfig): string {
  const hosts = config.hosts.map((h) => h.name);
  const shown = hosts.length > 8 ? `${hosts.slice(0, 8).join(', ')} and ${hosts.length - 8} more` : hosts.join(', ');
  if (config.venvs.length === 0) return `hosts: ${shown}; add venvs to the deployfile`;
  const venvs = config.venvs.length === 1 ? 'its venv' : `all ${config.venvs.length} venvs`;
  return `hosts: ${shown}; \`vdeploy venvs\` lists ${venvs}`;
}
