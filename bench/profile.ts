/**
 * Where a vdeploy run's time goes, read from outside: the event lines it prints on stderr (each with
 * the duration vdeploy measured, and the moment the bench saw it), plus the whole-process times of
 * commands that stop early (`--version`: Node and the CLI's modules; `venvs`: + the deployfile).
 */
import type { TimedLine } from './contenders.js';

export interface RunProfile {
  /** Whole process, ms. */
  total: number;
  /** Process start → first SSH connection started: Node, CLI modules, deployfile, requirements, release log. */
  startup: number;
  /** Slowest host's SSH connection (TCP + handshake + auth). */
  connect: number;
  /** Slowest host's probe (one remote command). */
  probe: number;
  /** Last probe answered → first apply work started (resolve, diff, render the plan). */
  plan: number;
  /** Slowest host's wheel upload (0 when nothing was pushed). */
  push: number;
  /** First apply work started → last venv finished (0 for a no-op). */
  apply: number;
  /** Per apply step (install, create, verify, …): summed over venvs. */
  steps: Record<string, number>;
  /** Last event → process exit: summary, release log, closing connections. */
  exit: number;
}

const HOST_EVENT = /^(\S+): (connected|probed) \(([\d.]+m?s)\)$/;
const PUSHING = /^(\S+): pushing \d+ wheels?$/;
const PUSHED = /^(\S+): pushed \d+ wheels?, .* \(([\d.]+m?s)\)$/;
const STEP = /^(.+): (\S+) (ok|failed) \(([\d.]+m?s)\)$/;
const VENV_END = /^(.+): (deployed|rolled back|failed|locked|interrupted|skipped) \(([\d.]+m?s)\)$/;

/** "45ms" or "1.2s" (vdeploy's formatDuration) → ms. */
export function parseDuration(text: string): number {
  return text.endsWith('ms') ? Number(text.slice(0, -2)) : Number(text.slice(0, -1)) * 1000;
}

export function profileRun(lines: readonly TimedLine[], total: number): RunProfile {
  const profile: RunProfile = { total, startup: 0, connect: 0, probe: 0, plan: 0, push: 0, apply: 0, steps: {}, exit: 0 };
  let connectStart = Infinity;
  let planned = 0;
  let applyStart = Infinity;
  let applyEnd = 0;
  let lastEvent = 0;
  for (const { ms, text } of lines) {
    let m: RegExpExecArray | null;
    if ((m = HOST_EVENT.exec(text))) {
      const took = parseDuration(m[3]!);
      if (m[2] === 'connected') {
        connectStart = Math.min(connectStart, ms - took);
        profile.connect = Math.max(profile.connect, took);
      } else {
        profile.probe = Math.max(profile.probe, took);
        planned = Math.max(planned, ms);
      }
    } else if ((m = PUSHING.exec(text))) {
      applyStart = Math.min(applyStart, ms);
    } else if ((m = PUSHED.exec(text))) {
      profile.push = Math.max(profile.push, parseDuration(m[2]!));
    } else if ((m = VENV_END.exec(text))) {
      const took = parseDuration(m[3]!);
      applyStart = Math.min(applyStart, ms - took);
      applyEnd = Math.max(applyEnd, ms);
    } else if ((m = STEP.exec(text))) {
      profile.steps[m[2]!] = (profile.steps[m[2]!] ?? 0) + parseDuration(m[4]!);
    } else continue;
    lastEvent = Math.max(lastEvent, ms);
  }
  profile.startup = Number.isFinite(connectStart) ? Math.max(0, connectStart) : 0;
  if (Number.isFinite(applyStart)) {
    profile.plan = Math.max(0, applyStart - planned);
    profile.apply = Math.max(0, applyEnd - applyStart);
  }
  profile.exit = Math.max(0, total - lastEvent);
  return profile;
}

/**
 * Each venv's apply time as vdeploy reports it ("…/srv/app1: deployed (2.5s)", "rolled back (0.4s)"):
 * from the moment its apply started on the host's SSH connection until its answer came back. That
 * is the host's time for that venv (the remote Python process from its start, all its steps); a
 * whole run's wall time adds process start, connecting, probing and the other venvs.
 */
export function venvApplyTimes(lines: readonly TimedLine[]): number[] {
  const out: number[] = [];
  for (const { text } of lines) {
    const m = VENV_END.exec(text);
    if (m) out.push(parseDuration(m[3]!));
  }
  return out;
}

/** The median of each field over runs. */
export function medianProfile(profiles: readonly RunProfile[]): RunProfile {
  const pick = (f: (p: RunProfile) => number) => median(profiles.map(f));
  const stepNames = [...new Set(profiles.flatMap((p) => Object.keys(p.steps)))];
  return {
    total: pick((p) => p.total),
    startup: pick((p) => p.startup),
    connect: pick((p) => p.connect),
    probe: pick((p) => p.probe),
    plan: pick((p) => p.plan),
    push: pick((p) => p.push),
    apply: pick((p) => p.apply),
    steps: Object.fromEntries(stepNames.map((s) => [s, pick((p) => p.steps[s] ?? 0)])),
    exit: pick((p) => p.exit),
  };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** One line for the report: "startup 0.42 s · connect 0.08 s · …" (stages that took time). */
export function formatProfile(p: RunProfile): string {
  const parts: Array<[string, number]> = [
    ['startup+load', p.startup],
    ['connect', p.connect],
    ['probe', p.probe],
    ['plan', p.plan],
    ['push', p.push],
    ['apply', p.apply],
    ['exit', p.exit],
  ];
  const stages = parts.filter(([, ms]) => ms >= 1).map(([name, ms]) => `${name} ${seconds(ms)}`);
  const steps = Object.entries(p.steps)
    .filter(([, ms]) => ms >= 1)
    .map(([name, ms]) => `${name} ${seconds(ms)}`);
  return `${stages.join(' · ')}${steps.length ? ` (apply steps summed over venvs: ${steps.join(', ')})` : ''}`;
}

export function seconds(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 1000).toFixed(2)} s`;
}
