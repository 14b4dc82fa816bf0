/**
 * Reading what the probe (vdeploy_remote/probe.py) answers: check it against its contract
 * (probe-contract.ts), then turn the wire format (interpreters listed once, referenced by index;
 * cached ones by fingerprint) into HostFacts. Pure, so it is table-tested without SSH; anything off
 * is a ProtocolError naming the host, never a half-filled HostFacts.
 */
import * as z from 'zod';
import { ProtocolError, VdeployError } from '../errors.js';
import { checkAnswer, readAnswer, type AnswerSource } from '../remote/contracts.js';
import { cachedInterpreterSchema, freshInterpreterSchema, probeErrorAnswerSchema, probeFactsAnswerLoose } from './probe-contract.js';
import { hashQuickIdentity } from './quick-identity.js';
import { normalizeName } from '../requirements/names.js';
import type { HostFacts, InstalledPackage, InterpreterFacts, VenvFacts } from './types.js';

type ProbeOutput = z.infer<typeof probeFactsAnswerLoose>;

/** Facts the host computed this time, with what the cache needs to offer them back next time. */
export interface LearnedInterpreter {
  /** The interpreter's realpath on the host. */
  python: string;
  fingerprint: string;
  files: string[];
  facts: InterpreterFacts;
  /** Hash of the identity SFTP can check (quick-identity.ts); absent from older entries. */
  quick?: string;
}

/** A cached interpreter the host confirmed by fingerprint, with its quick identity as of now. */
export interface ConfirmedInterpreter {
  python: string;
  fingerprint: string;
  quick: string;
}

export interface ProbeAnswer {
  facts: HostFacts;
  learned: LearnedInterpreter[];
  confirmed: ConfirmedInterpreter[];
}

/** The script's stdout as HostFacts; throws a VdeployError naming `target` when it is not what the script prints. */
export function parseProbeOutput(stdout: string, target: string, cached: ReadonlyMap<string, InterpreterFacts> = new Map()): HostFacts {
  return readProbeAnswer(stdout, target, cached).facts;
}

/**
 * parseProbeOutput, plus the interpreter facts worth caching. `cached` maps each fingerprint sent in
 * the request to its facts; an answer referring to any other is malformed.
 */
export function readProbeAnswer(stdout: string, target: string, cached: ReadonlyMap<string, InterpreterFacts>): ProbeAnswer {
  const from: AnswerSource = { host: target, script: 'probe' };
  const output = readOutput(stdout, from);
  if (output.cacheDir === undefined || output.cachedWheels === undefined) {
    throw malformed(from, 'cacheDir and cachedWheels are missing');
  }
  if (!output.cacheDir.startsWith('/')) throw malformed(from, `cacheDir ${JSON.stringify(output.cacheDir)} is not absolute`);
  const learned: LearnedInterpreter[] = [];
  const confirmed: ConfirmedInterpreter[] = [];
  const interpreters = output.interpreters.map((item, i): InterpreterFacts => {
    if (isObject(item) && 'cached' in item) {
      const ref = checkAnswer(cachedInterpreterSchema, item, from, ['interpreters', i]);
      const facts = cached.get(ref.cached);
      if (facts === undefined) throw malformed(from, `interpreters.${i}: fingerprint ${ref.cached} was not offered`);
      if (ref.quick !== undefined) confirmed.push({ python: ref.python, fingerprint: ref.cached, quick: hashQuickIdentity(ref.quick) });
      return facts;
    }
    const { python, fingerprint, files, quick, ...rest } = checkAnswer(freshInterpreterSchema, item, from, ['interpreters', i]);
    const facts: InterpreterFacts = { version: rest.version, markers: rest.markers, supportedTags: rest.supportedTags };
    if (python !== undefined && fingerprint !== undefined && files !== undefined) {
      learned.push({ python, fingerprint, files, facts, ...(quick === undefined ? {} : { quick: hashQuickIdentity(quick) }) });
    }
    return facts;
  });
  const venvs = output.venvs.map((venv, i): VenvFacts => {
    if (venv.state === 'not-a-venv') return { path: venv.path, state: venv.state, detail: venv.detail };
    if (venv.interpreter === undefined) throw malformed(from, `venvs.${i}.interpreter is missing`);
    const interpreter = venv.interpreter === null ? null : interpreters[venv.interpreter];
    if (interpreter === undefined) throw malformed(from, `venvs.${i}.interpreter: no interpreter #${venv.interpreter}`);
    const error = venv.interpreterError ?? (interpreter === null ? 'the interpreter could not be probed' : undefined);
    if (venv.state === 'missing') {
      return {
        path: venv.path,
        state: 'missing',
        interpreter,
        ...(interpreter === null ? { interpreterError: error! } : {}),
        ...(venv.halfMade ? { halfMade: true } : {}),
        ...(venv.releases ? { releases: venv.releases, history: toHistory(venv.history) } : {}),
      };
    }
    // A venv whose python does not run (or gives no tags) cannot be planned for: an error, never overwritten.
    if (interpreter === null) {
      return { path: venv.path, state: 'not-a-venv', detail: `is a venv whose bin/python does not work: ${error!}`, interpreterError: error! };
    }
    const stashes = venv.stashes?.length ? { stashes: venv.stashes } : {};
    return { path: venv.path, state: 'venv', interpreter, installed: toInstalled(venv.installed), history: toHistory(venv.history), ...stashes, ...(venv.releases ? { releases: venv.releases } : {}) };
  });
  const facts: HostFacts = {
    cacheDir: output.cacheDir,
    cachedWheels: output.cachedWheels,
    venvs,
    readBy: 'script',
    ...(output.interpretersRun === undefined ? {} : { interpretersRun: output.interpretersRun }),
    ...(output.probeMs === undefined ? {} : { probeMs: output.probeMs }),
  };
  return { facts, learned, confirmed };
}

/** The answer's facts; the script's own {"error"} (the host as a whole cannot be probed) as a VdeployError. */
function readOutput(stdout: string, from: AnswerSource): ProbeOutput {
  const json = readAnswer<unknown>(z.unknown(), stdout, from);
  if (isObject(json) && 'error' in json) {
    const { error } = checkAnswer(probeErrorAnswerSchema, json, from);
    throw new VdeployError(`probing ${from.host} failed: ${error}`, { hint: 'check the wheel cache directory on that host (ssh.wheelCache in the deployfile)' });
  }
  return checkAnswer(probeFactsAnswerLoose, json, from);
}

function toInstalled(list: Array<{ name: string; version: string }>): InstalledPackage[] {
  return list.map(({ name, version }) => ({ name, key: normalizeName(name), version }));
}

function malformed(from: AnswerSource, why: string): ProtocolError {
  return new ProtocolError(from.host, from.script, why);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** History lines as the host has them (older probes sent none); parsed by src/history/history-entry.ts. */
function toHistory(history: unknown): Array<Record<string, unknown>> {
  return Array.isArray(history) ? history.filter((h): h is Record<string, unknown> => typeof h === 'object' && h !== null && !Array.isArray(h)) : [];
}
