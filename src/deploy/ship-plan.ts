/**
 * Shipping, at plan time (docs/shipping.md): which venvs get one and the same release, who builds it
 * with pip, and who receives it instead — in full, or as a delta on the release they have live. A
 * plain function of the plan and what the probe learned, so every rule is table-tested without SSH.
 *
 * Venvs form a group when their interpreters are interchangeable (interpreterFingerprint: configured
 * python path, version, markers, supported tags — the tags carry the libc) and they want exactly the
 * same wheels: then a release built for one works for all of them after relocation.
 */
import { createHash } from 'node:crypto';
import type { InterpreterFacts } from '../facts/types.js';
import { hasChanges, type Plan, type ShipGroup, type ShipPlan, type VenvPlan } from './plan.js';

type OkVenv = Extract<VenvPlan, { status: 'ok' }>;

/** What planning learned about one venv that shipping needs beyond its plan. */
export interface ShipFacts {
  /** The configured interpreter (venvs[].python): the path a release's venv was made with is part of it. */
  python: string;
  interpreter: InterpreterFacts;
  /** The artifact digest of the release live now (history-entry.ts liveArtifact), if it was shipped or packed. */
  liveArtifact?: string;
}

export interface ShipOptions {
  /** Off: every venv builds with pip as before (`--no-ship`, deployfile `ship.enabled: false`). */
  enabled: boolean;
  /** Host whose member builds a group it has a member in (`--builder`, deployfile `ship.builder`). */
  builder?: string;
  /** The digest of a full artifact the local artifact cache holds for a group key, if any. */
  cachedGroup?: (groupKey: string) => string | undefined;
}

/** How many characters of a group key (and of a delta's base digest) the plan text shows. */
export const SHORT_KEY = 16;
export const SHORT_BASE = 8;

/**
 * sha256 of the interpreter's identity. Markers are written with sorted keys so that two probes that
 * list them in another order still agree; the tags keep their order (it is the interpreter's preference).
 */
export function interpreterFingerprint(python: string, interpreter: InterpreterFacts): string {
  const markers = Object.fromEntries(Object.entries(interpreter.markers).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return sha256(JSON.stringify({ python, version: interpreter.version, markers, supportedTags: interpreter.supportedTags }));
}

/** The group of a fingerprint and a desired set (wheel filenames, in any order). */
export function groupKey(fingerprint: string, desired: readonly string[]): string {
  return sha256(`${fingerprint}\n${[...desired].sort().join('\n')}`);
}

/** The desired wheel filenames of a venv's plan, sorted (ShipGroup.desired, the pack's `desired`). */
export function desiredFiles(v: OkVenv): string[] {
  return v.desired.map((p) => p.filename).sort();
}

/**
 * A venv ships (builds for others, or receives) only when it gets a new release built by pip: the
 * releases layout, changes to apply, a fresh or cloned build, not a rollback (rollbacks switch, or
 * rebuild from the release log as they always did).
 */
export function isShipCandidate(v: VenvPlan): v is OkVenv {
  return v.status === 'ok' && v.releases !== undefined && hasChanges(v) && v.releases.build !== 'switch' && v.rollback === undefined;
}

/** The plan with `ship` on the venvs that build for others or receive, and `groups`; unchanged when disabled or nothing ships. */
export function planShipping(plan: Plan, facts: ReadonlyMap<string, ShipFacts>, options: ShipOptions): Plan {
  if (!options.enabled) return plan;
  const ships = new Map<string, ShipPlan>();
  const groups: ShipGroup[] = [];
  for (const g of formGroups(plan, facts)) {
    const cached = options.cachedGroup?.(g.key);
    if (cached !== undefined) {
      // The release is on this machine already: nobody builds, every member receives it whole.
      for (const m of g.members) ships.set(m.id, { role: 'receiver', group: g.key, from: 'cache', kind: 'full' });
      groups.push(shipGroup(g, 'cache'));
      continue;
    }
    // A group of one gains nothing from a pack: it builds with pip as before.
    if (g.members.length < 2) continue;
    const builder = (options.builder !== undefined ? g.members.find((m) => m.host === options.builder) : undefined) ?? g.members[0]!;
    ships.set(builder.id, { role: 'builder', group: g.key, members: g.members.length });
    // A delta is what the builder's clone changed in its live release: it fits a receiver holding that same release.
    const base = builder.releases!.build === 'clone' ? facts.get(builder.id)?.liveArtifact : undefined;
    for (const m of g.members) {
      if (m === builder) continue;
      const delta = base !== undefined && m.releases!.build === 'clone' && facts.get(m.id)?.liveArtifact === base;
      ships.set(m.id, delta ? { role: 'receiver', group: g.key, from: builder.id, kind: 'delta', base } : { role: 'receiver', group: g.key, from: builder.id, kind: 'full' });
    }
    groups.push(shipGroup(g, builder.id));
  }
  if (groups.length === 0) return plan;
  return {
    ...plan,
    venvs: plan.venvs.map((v) => {
      const ship = ships.get(v.id);
      return ship && v.status === 'ok' ? { ...v, ship } : v;
    }),
    groups,
  };
}

interface Forming {
  key: string;
  fingerprint: string;
  desired: string[];
  /** In deploy order. */
  members: OkVenv[];
}

/** The candidates by group key, groups in the order of their first member, members in deploy order. */
function formGroups(plan: Plan, facts: ReadonlyMap<string, ShipFacts>): Forming[] {
  const byKey = new Map<string, Forming>();
  for (const v of plan.venvs) {
    const f = facts.get(v.id);
    if (!isShipCandidate(v) || f === undefined) continue;
    const fingerprint = interpreterFingerprint(f.python, f.interpreter);
    const desired = desiredFiles(v);
    const key = groupKey(fingerprint, desired);
    const group = byKey.get(key);
    if (group) group.members.push(v);
    else byKey.set(key, { key, fingerprint, desired, members: [v] });
  }
  return [...byKey.values()];
}

function shipGroup(g: Forming, builder: string): ShipGroup {
  return { key: g.key, fingerprint: g.fingerprint, builder, members: g.members.map((m) => m.id), desired: g.desired };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
