/**
 * The probe's contract (src/remote/python/vdeploy_remote/probe.py): what vdeploy sends it and what
 * it answers. test/fixtures/contracts/probe.*.json are examples both sides check.
 */
import * as z from 'zod';
import { protocolVersion } from '../remote/contracts.js';
import type { MarkerEnvironment } from '../requirements/markers.js';

const text = z.string().min(1);

export const probeRequestSchema = z.object({
  v: protocolVersion,
  /** As configured (may start with `~/`); null: do not list the wheel cache. */
  cacheDir: z.string().nullable(),
  /** python: the interpreter a missing venv would be made with, e.g. 'python3'; releases: the path is an app root (releases layout). */
  venvs: z.array(z.object({ path: text, python: text, releases: z.boolean().optional() })),
  /** Also each release's size and installed set (`vdeploy releases`). */
  releaseDetails: z.boolean().optional(),
  /** false: installed sets only, no interpreter facts. */
  interpreters: z.boolean().optional(),
  /** Interpreters whose facts vdeploy has: answered by fingerprint instead of being run. */
  known: z.array(z.object({ python: text, fingerprint: text, files: z.array(z.string()) })).optional(),
});

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

/** An interpreter's facts; also what interpreter-cache.ts checks its file against. */
export const interpreterSchema = z.object({
  version: z.string().regex(/^\d+\.\d+/, { message: 'must be a Python version like 3.11.2' }),
  markers: markersSchema,
  supportedTags: z.array(z.string().regex(/^[^-\s]+-[^-\s]+-[^-\s]+$/, { message: 'must be a py-abi-platform tag' })).min(1),
});

/** Facts just computed on the host; python/fingerprint/files are there to be cached (absent: not cacheable). */
export const freshInterpreterSchema = interpreterSchema.extend({
  python: text.optional(),
  fingerprint: text.optional(),
  files: z.array(z.string()).optional(),
  /** The parts of the identity SFTP can check (quick-identity.ts). */
  quick: z.array(z.unknown()).optional(),
});

/** An interpreter whose fingerprint matched one vdeploy sent: the facts are in vdeploy's cache. */
export const cachedInterpreterSchema = z.object({ python: text, cached: text, quick: z.array(z.unknown()).optional() });

/** Index into `interpreters`; null when it could not be probed; absent when not asked for. */
const interpreterRef = z.number().int().min(0).nullable().optional();

/** An app root's releases (releases layout): the live one and every release directory, oldest first. */
const releasesSchema = z.object({
  live: text.nullable(),
  list: z.array(
    z.object({
      id: text,
      /** With releaseDetails: the disk space it takes, the part no other release shares, its installed set (key → version). */
      bytes: z.number().int().min(0).optional(),
      ownBytes: z.number().int().min(0).optional(),
      installed: z.record(z.string(), z.string()).optional(),
    }),
  ),
});

const venvSchema = z.discriminatedUnion('state', [
  z.object({
    path: text,
    state: z.literal('missing'),
    interpreter: interpreterRef,
    interpreterError: z.string().optional(),
    /** A venv vdeploy began to create and that never had a successful apply (a full disk, a crash): made anew. */
    halfMade: z.literal(true).optional(),
    /** An app root without a live release: its releases and history. */
    releases: releasesSchema.optional(),
    history: z.array(z.unknown()).optional(),
  }),
  z.object({ path: text, state: z.literal('not-a-venv'), detail: text }),
  z.object({
    path: text,
    state: z.literal('venv'),
    interpreter: interpreterRef,
    interpreterError: z.string().optional(),
    installed: z.array(z.object({ name: text, version: text })),
    history: z.array(z.unknown()).optional(),
    /** pip's `~name` stash folders a pip that died mid-way left in site-packages (absolute paths). */
    stashes: z.array(text).optional(),
    releases: releasesSchema.optional(),
  }),
]);

const factsFields = {
  v: protocolVersion,
  /** Absolute, `~` expanded; absent when the request's cacheDir was null. */
  cacheDir: z.string().optional(),
  cachedWheels: z.array(text).optional(),
  interpreters: z.array(z.union([freshInterpreterSchema, cachedInterpreterSchema])),
  venvs: z.array(venvSchema),
  interpretersRun: z.number().int().min(0).optional(),
  probeMs: z.number().optional(),
};

/** The facts answer, with interpreters left to be checked one by one (a union's error would not say which field). */
export const probeFactsAnswerLoose = z.object({ ...factsFields, interpreters: z.array(z.unknown()) });

/** The host as a whole could not be probed (the wheel cache is a file, say). */
export const probeErrorAnswerSchema = z.object({ v: protocolVersion, error: z.string() });

export const probeAnswerSchema = z.union([z.object(factsFields), probeErrorAnswerSchema]);

export type ProbeScriptRequest = z.infer<typeof probeRequestSchema>;
export type ProbeScriptAnswer = z.infer<typeof probeAnswerSchema>;

export const contracts = {
  'probe.request': probeRequestSchema,
  'probe.answer': probeAnswerSchema,
} as const;
