/**
 * Reading what the probe script (probe-script.ts) prints: validate the shape, then turn the wire
 * format (interpreters listed once, referenced by index; cached ones by fingerprint) into HostFacts.
 * Pure, so it is table-tested without SSH; anything off is a VdeployError naming the host, never a
 * half-filled HostFacts.
 */
import * as z from 'zod';
import { VdeployError } from '../errors.js';
import { hashQuickIdentity } from './quick-identity.js';
import type { MarkerEnvironment } from '../requirements/markers.js';
import { normalizeName } from '../requirements/names.js';
import type { HostFacts, InstalledPackage, InterpreterFacts, VenvFacts } from './types.js';

const text = z.string().min(1);

const markersSchema = z.object({
  implementation_name: z.string(),
  implementation_version: z.string(),
  os_name: z.string(),
  platform_machine: z.string(),
  platform_release: z.string(),
  platform_system: z.string(),
  platform_version: z.string(),
  python_full_version: z.string(),
  platform_python_implementation: z.string(),
  python_version: z.string(),
  sys_platform: z.string(),
}) satisfies z.ZodType<MarkerEnvironment>;

/** Also what interpreter-cache.ts checks its file against. */
export const interpreterSchema = z.object({
  version: z.string().regex(/^\d+\.\d+/, { message: 'must be a Python version like 3.11.2' }),
  markers: markersSchema,
  supportedTags: z.array(z.string().regex(/^[^-\s]+-[^-\s]+-[^-\s]+$/, { message: 'must be a py-abi-platform tag' })).min(1),
});

/** Facts just computed on the host; python/fingerprint/files are there to be cached (absent: not cacheable). */
const freshInterpreterSchema = interpreterSchema.extend({
  python: text.optional(),
  fingerprint: text.optional(),
  files: z.array(z.string()).optional(),
  /** The parts of the identity SFTP can check (quick-identity.ts). */
  quick: z.array(z.unknown()).optional(),
});

/** An interpreter whose fingerprint matched one vdeploy sent: the facts are in vdeploy's cache. */
const cachedInterpreterSchema = z.object({ python: text, cached: text, quick: z.array(z.unknown()).optional() });

/** Index into `interpreters`; null when it could not be probed; absent when not asked for. */
const interpreterRef = z.number().int().min(0).nullable().optional();

const venvSchema = z.discriminatedUnion('state', [
  z.object({ path: text, state: z.literal('missing'), interpreter: interpreterRef, interpreterError: z.string().optional() }),
  z.object({ path: text, state: z.literal('not-a-venv'), detail: text }),
  z.object({
    path: text,
    state: z.literal('venv'),
    interpreter: interpreterRef,
    interpreterError: z.string().optional(),
    installed: z.array(z.object({ name: text, version: text })),
    history: z.array(z.unknown()).optional(),
  }),
]);

const outputSchema = z.object({
  v: z.literal(1),
  cacheDir: z.string().optional(),
  cachedWheels: z.array(text).optional(),
  // Checked item by item (freshInterpreterSchema or cachedInterpreterSchema): a union's error would not say which field.
  interpreters: z.array(z.unknown()),
  venvs: z.array(venvSchema),
  interpretersRun: z.number().int().min(0).optional(),
  probeMs: z.number().optional(),
});

type ProbeOutput = z.infer<typeof outputSchema>;

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

const HINT = 'this is likely a vdeploy bug, or something on the host prints to stdout when python3 starts (sitecustomize?)';

/** The script's stdout as HostFacts; throws a VdeployError naming `target` when it is not what the script prints. */
export function parseProbeOutput(stdout: string, target: string, cached: ReadonlyMap<string, InterpreterFacts> = new Map()): HostFacts {
  return readProbeAnswer(stdout, target, cached).facts;
}

/**
 * parseProbeOutput, plus the interpreter facts worth caching. `cached` maps each fingerprint sent in
 * the request to its facts; an answer referring to any other is malformed.
 */
export function readProbeAnswer(stdout: string, target: string, cached: ReadonlyMap<string, InterpreterFacts>): ProbeAnswer {
  const output = readOutput(stdout, target);
  if (output.cacheDir === undefined || output.cachedWheels === undefined) {
    throw malformed(target, 'cacheDir and cachedWheels are missing');
  }
  if (!output.cacheDir.startsWith('/')) throw malformed(target, `cacheDir ${JSON.stringify(output.cacheDir)} is not absolute`);
  const learned: LearnedInterpreter[] = [];
  const confirmed: ConfirmedInterpreter[] = [];
  const interpreters = output.interpreters.map((item, i): InterpreterFacts => {
    if (isObject(item) && 'cached' in item) {
      const ref = check(cachedInterpreterSchema, item, target, ['interpreters', i]);
      const facts = cached.get(ref.cached);
      if (facts === undefined) throw malformed(target, `interpreters.${i}: fingerprint ${ref.cached} was not offered`);
      if (ref.quick !== undefined) confirmed.push({ python: ref.python, fingerprint: ref.cached, quick: hashQuickIdentity(ref.quick) });
      return facts;
    }
    const { python, fingerprint, files, quick, ...rest } = check(freshInterpreterSchema, item, target, ['interpreters', i]);
    const facts: InterpreterFacts = { version: rest.version, markers: rest.markers, supportedTags: rest.supportedTags };
    if (python !== undefined && fingerprint !== undefined && files !== undefined) {
      learned.push({ python, fingerprint, files, facts, ...(quick === undefined ? {} : { quick: hashQuickIdentity(quick) }) });
    }
    return facts;
  });
  const venvs = output.venvs.map((venv, i): VenvFacts => {
    if (venv.state === 'not-a-venv') return { path: venv.path, state: venv.state, detail: venv.detail };
    if (venv.interpreter === undefined) throw malformed(target, `venvs.${i}.interpreter is missing`);
    const interpreter = venv.interpreter === null ? null : interpreters[venv.interpreter];
    if (interpreter === undefined) throw malformed(target, `venvs.${i}.interpreter: no interpreter #${venv.interpreter}`);
    const error = venv.interpreterError ?? (interpreter === null ? 'the interpreter could not be probed' : undefined);
    if (venv.state === 'missing') {
      return { path: venv.path, state: 'missing', interpreter, ...(interpreter === null ? { interpreterError: error! } : {}) };
    }
    // A venv whose python does not run (or gives no tags) cannot be planned for: an error, never overwritten.
    if (interpreter === null) {
      return { path: venv.path, state: 'not-a-venv', detail: `is a venv whose bin/python does not work: ${error!}`, interpreterError: error! };
    }
    return { path: venv.path, state: 'venv', interpreter, installed: toInstalled(venv.installed), history: toHistory(venv.history) };
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

function readOutput(stdout: string, target: string): ProbeOutput {
  // The last non-empty line: a login shell's rc files may print before the script does.
  const line = stdout.split('\n').map((l) => l.trim()).filter((l) => l.length > 0).at(-1);
  if (line === undefined) throw malformed(target, 'it printed nothing');
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    throw malformed(target, `not JSON: ${JSON.stringify(line.slice(0, 80))}`);
  }
  if (isObject(json) && typeof json.error === 'string') {
    throw new VdeployError(`probing ${target} failed: ${json.error}`, { hint: 'check the wheel cache directory on that host (ssh.wheelCache in the deployfile)' });
  }
  return check(outputSchema, json, target, []);
}

function check<T>(schema: z.ZodType<T>, value: unknown, target: string, at: Array<string | number>): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const path = [...at, ...issue.path.map(String)];
  throw malformed(target, `${path.length > 0 ? `${path.join('.')}: ` : ''}${issue.message}`);
}

function toInstalled(list: Array<{ name: string; version: string }>): InstalledPackage[] {
  return list.map(({ name, version }) => ({ name, key: normalizeName(name), version }));
}

function malformed(target: string, why: string): VdeployError {
  return new VdeployError(`the probe of ${target} gave unreadable output (${why})`, { hint: HINT });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** History lines as the host has them (older probes sent none); parsed by src/history/history-entry.ts. */
function toHistory(history: unknown): Array<Record<string, unknown>> {
  return Array.isArray(history) ? history.filter((h): h is Record<string, unknown> => typeof h === 'object' && h !== null && !Array.isArray(h)) : [];
}
