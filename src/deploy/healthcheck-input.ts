/**
 * A venv's health check as the apply script gets it: `{version:NAME}` in expectBody replaced by the
 * version of NAME in the set being deployed, so a check passes only once the new code answers (while
 * gunicorn and the like switch workers, the old code answers for a moment, with the old version).
 */
import type { HealthcheckConfig } from '../config/schema.js';
import { VERSION_PLACEHOLDER } from '../config/schema.js';
import { normalizeName } from '../requirements/names.js';
import type { ResolvedPackage } from '../resolve/resolve-venv.js';
import type { ApplyVenvInput } from './apply-contract.js';

type Expanded = { ok: true; text: string } | { ok: false; name: string };

/** expectBody with each `{version:NAME}` replaced; the first NAME the set lacks otherwise. */
export function expandExpectBody(text: string, packages: readonly Pick<ResolvedPackage, 'key' | 'version'>[]): Expanded {
  const versions = new Map(packages.map((p) => [p.key, p.version]));
  let missing: string | undefined;
  const expanded = text.replace(VERSION_PLACEHOLDER, (whole, name: string | undefined) => {
    const version = name === undefined ? undefined : versions.get(normalizeName(name));
    if (version === undefined) missing ??= name ?? whole;
    return version ?? whole;
  });
  return missing === undefined ? { ok: true, text: expanded } : { ok: false, name: missing };
}

/** Why a venv's health check cannot be checked against this set (a plan-stage error), or undefined. */
export function healthcheckProblem(hc: HealthcheckConfig | undefined, packages: readonly ResolvedPackage[]): string | undefined {
  if (hc?.expectBody === undefined) return undefined;
  const r = expandExpectBody(hc.expectBody, packages);
  return r.ok ? undefined : `healthcheck.expectBody names {version:${r.name}}, but ${r.name} is not in the set being deployed`;
}

export function healthcheckInput(hc: HealthcheckConfig, packages: readonly ResolvedPackage[]): NonNullable<ApplyVenvInput['healthcheck']> {
  const body = hc.expectBody === undefined ? undefined : expandExpectBody(hc.expectBody, packages);
  return {
    ...(hc.command ? { command: hc.command } : {}),
    ...(hc.url ? { url: hc.url } : {}),
    expectStatus: hc.expectStatus,
    // The plan refused a set without the named package, so this is always expanded here.
    ...(body?.ok ? { expectBody: body.text } : {}),
    timeout: hc.timeout,
    retries: hc.retries,
    interval: hc.interval,
    settle: hc.settle,
  };
}
