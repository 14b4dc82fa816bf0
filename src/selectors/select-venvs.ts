/** Chooses the deployfile's venvs that a command's selectors and `--role` flags name. */
import { ConfigError } from '../errors.js';
import type { ResolvedConfig, ResolvedVenv } from '../config/resolve-config.js';
import { parseSelector, type Selector } from './selector.js';

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

  for (const role of roles) {
    if (!config.hosts.some((h) => h.roles.includes(role))) {
      const known = [...new Set(config.hosts.flatMap((h) => h.roles))];
      throw new ConfigError(`role "${role}" matches no host`, {
        hint: known.length ? `roles in the deployfile: ${known.join(', ')}` : 'no host in the deployfile declares roles',
      });
    }
  }
  for (const selector of selectors) {
    if (!config.venvs.some((v) => matchesSelector(v, selector))) {
      throw new ConfigError(`selector "${selector.text}" matches no venv`, { hint: describeTargets(config) });
    }
  }

  const selected = config.venvs.filter(
    (venv) =>
      (selectors.length === 0 || selectors.some((s) => matchesSelector(venv, s))) &&
      (roles.length === 0 || roles.some((r) => venv.host.roles.includes(r))),
  );
  if (selected.length === 0) {
    const why = config.venvs.length === 0 ? 'the deployfile declares no venvs' : 'the selectors and --role match no venv together';
    throw new ConfigError(why, { hint: describeTargets(config) });
  }
  return selected;
}

/** One line listing what exists, for the hints of selection errors. */
export function describeTargets(config: ResolvedConfig): string {
  if (config.venvs.length === 0) return `hosts: ${config.hosts.map((h) => h.name).join(', ')}; add venvs to the deployfile`;
  const shown = config.venvs.slice(0, 12).map((v) => v.id);
  const more = config.venvs.length - shown.length;
  return `venvs are: ${shown.join(', ')}${more > 0 ? ` (and ${more} more; run \`vdeploy venvs\`)` : ''}`;
}
