/**
 * The apply's contracts: what vdeploy sends the host apply script
 * (src/remote/python/vdeploy_remote/host_apply.py) and what it prints, and what each venv's apply
 * (vdeploy_remote/apply_venv.py, started by host_apply) reads and answers. Examples both sides check:
 * test/fixtures/contracts/apply_venv.*.json and host_apply.*.json.
 */
import * as z from 'zod';
import { applyFilesInput, filesResult } from '../files/files-contract.js';
import { protocolVersion } from '../remote/contracts.js';

const versions = z.record(z.string(), z.string());

/** One venv's plan as vdeploy builds it; host_apply adds "v" when it hands it to apply_venv. */
export const applyVenvInput = z.object({
  venv: z.string(),
  create: z.object({ python: z.string() }).nullable(),
  lockWaitSeconds: z.number(),
  /** Written into <venv>/.vdeploy/lock; a second deploy names it. */
  holder: z.object({ user: z.string(), host: z.string(), pid: z.number().int(), startedAt: z.string() }),
  /** `wheels`: the cached wheels this install takes (checked against their sha256 first). */
  install: z
    .object({
      requirements: z.string(),
      cacheDir: z.string(),
      wheels: z.array(z.object({ filename: z.string(), sha256: z.string() })),
    })
    .nullable(),
  uninstall: z.array(z.string()),
  uninstallKeys: z.array(z.string()),
  /** key → version the venv must have afterwards (compared as PEP 440). */
  expect: versions,
  /** Django: `argv` runs manage.py/django-admin; `run`: migrate this time (else only unmigrate may use it). */
  migrate: z
    .object({ argv: z.array(z.string()), cwd: z.string().optional(), env: z.record(z.string(), z.string()).optional(), run: z.boolean() })
    .nullable(),
  /** Migrate each app back to `to` before installing (rollback --unapply-migrations). */
  unmigrate: z.array(z.object({ app: z.string(), to: z.string() })),
  reload: z.string().nullable(),
  healthcheck: z
    .object({
      command: z.string().optional(),
      url: z.string().optional(),
      expectStatus: z.number().int(),
      /** Text the URL's body must contain (placeholders already replaced). */
      expectBody: z.string().optional(),
      timeout: z.number(),
      retries: z.number().int(),
      interval: z.number(),
      /** Seconds to wait before the first attempt. */
      settle: z.number(),
    })
    .nullable(),
  /** The history record, completed by the script with before/after/outcome/steps. */
  history: z.record(z.string(), z.unknown()),
  /**
   * Releases layout (`venv` is then the app root): keep that many successful releases; switchTo: a
   * rollback to a release still on the host (no pip); switchBack: a failed reload or health check after
   * the switch switches back (automatic rollback).
   */
  releases: z
    .object({
      keep: z.number().int().min(1),
      switchTo: z.string().nullable(),
      switchBack: z.boolean(),
      /**
       * A ship group's builder: after verify, pack the new release into <cacheDir>/artifacts/<digest>.tar
       * (and, with `delta`, when the build cloned a live release that has an artifact, a delta from it).
       */
      pack: z
        .object({ cacheDir: z.string(), group: z.string(), fingerprint: z.string(), desired: z.array(z.string()), delta: z.boolean() })
        .nullable()
        .optional(),
      /**
       * A ship group's receiver: the release comes from `tar` (install null, uninstall [], create null);
       * `base`: the artifact digest of the live release a delta applies to; `releaseId`: the builder's
       * release id (kept when free here); `sourcePath`: where the builder built it (relocated from).
       */
      ship: z
        .object({
          tar: z.string(),
          kind: z.enum(['full', 'delta']),
          digest: z.string(),
          base: z.string().nullable(),
          releaseId: z.string().nullable(),
          sourcePath: z.string(),
        })
        .nullable()
        .optional(),
    })
    .nullable()
    .optional(),
  /**
   * Set by host_apply (never by vdeploy) when the host's config files come in the same run and this venv
   * has a reload or a health check: the apply reads its request as stdin's first line and, on its way to
   * deployed, right before the reload (releases: after the switch) prints the progress line
   * `{"step": "reload", "phase": "hold"}` and waits for "go" on stdin (its end means go too).
   */
  holdBeforeReload: z.boolean().optional(),
});

export const applyVenvRequest = applyVenvInput.extend({ v: protocolVersion });

export const applyStep = z.object({
  name: z.string(),
  ok: z.boolean(),
  exitCode: z.number().int().nullable(),
  ms: z.number().int(),
  stderrTail: z.string().optional(),
  /** install: the venv's pip version. */
  pip: z.string().optional(),
  /**
   * install: how vdeploy knows every wheel came from its cache — pip's --report ("report"), or, with a
   * pip older than 22.2, the hashes alone ("hashes": every requirement pinned to the sha256 of the wheel
   * vdeploy pushed, with --no-index --find-links CACHE).
   */
  provenance: z.enum(['report', 'hashes']).optional(),
  /**
   * showmigrations: the migrations `migrate` was about to apply ('app.name', in order) — known only
   * here, with the new code installed, before it applies them.
   */
  pending: z.array(z.string()).optional(),
  /** clone (releases layout): whether the live release was cloned by hardlinks or copied. */
  how: z.enum(['hardlinks', 'copy']).optional(),
});

/** A release an apply removed: an unfinished or failed one, or one beyond `keep`; bytes: what it alone took. */
export const removedRelease = z.object({ id: z.string(), bytes: z.number().int().min(0), why: z.enum(['unfinished', 'failed', 'beyond keep']) });

/** A tar the builder's pack wrote on its host. */
const artifactTar = z.object({ path: z.string(), bytes: z.number().int().min(0), sha256: z.string() });

/** A ship group's builder: what pack made (only when the release went live). */
export const artifactAnswer = z.object({
  /** sha256 of the manifest's canonical JSON: names the artifact. */
  digest: z.string(),
  /** Entries in the manifest (files, symlinks, directories). */
  files: z.number().int().min(0),
  full: artifactTar,
  /** The delta from the live release's artifact `base` (null: none was possible or asked for). */
  delta: artifactTar.extend({ base: z.string() }).nullable(),
  ms: z.object({ manifest: z.number().int().min(0), pack: z.number().int().min(0) }),
});

/** A ship group's receiver: what it received (unpack and verify are one pass: verify is the final path-set check). */
export const receivedAnswer = z.object({
  digest: z.string(),
  kind: z.enum(['full', 'delta']),
  /** Entries written from the tar (a delta's: only the changed ones). */
  files: z.number().int().min(0),
  /** The tar's size. */
  bytes: z.number().int().min(0),
  /** Whether the release was relocated (its path differs from the builder's). */
  relocated: z.boolean(),
  ms: z.object({ unpack: z.number().int().min(0), verify: z.number().int().min(0), relocate: z.number().int().min(0) }),
});

/** Releases layout: what the apply did with releases. */
export const releaseAnswer = z.object({
  /** The release this apply built or switched to (null: it stopped before choosing one). */
  id: z.string().nullable(),
  /** `current` before and after the apply. */
  previous: z.string().nullable(),
  live: z.string().nullable(),
  removed: z.array(removedRelease),
  /** A failed reload or health check after the switch: whether switching back (and its reload) worked. */
  switchedBack: z.object({ ok: z.boolean() }).optional(),
  freedBytes: z.number().int().min(0).optional(),
  /** The release's size, and the part no other release shares (hardlinked clones share the rest). */
  bytes: z.number().int().min(0).optional(),
  ownBytes: z.number().int().min(0).optional(),
  artifact: artifactAnswer.optional(),
  received: receivedAnswer.optional(),
});

/** 'app.name' of each migration an apply applied (migrate) or unapplied (unmigrate), in the order Django ran them. */
export const migrationsRun = z.object({ applied: z.array(z.string()), unapplied: z.array(z.string()) });

export const applyVenvAnswer = z.object({
  v: protocolVersion,
  outcome: z.enum(['deployed', 'failed', 'locked', 'interrupted']),
  failedStep: z.string().nullable(),
  steps: z.array(applyStep),
  /** key → version before the apply (absent when it stopped before the lock). */
  before: versions.optional(),
  /** key → version after the apply (absent when it stopped before the lock). */
  installed: versions.optional(),
  /** The migrations this apply applied and unapplied (absent when it stopped before the lock). */
  migrations: migrationsRun.optional(),
  /** locked: what the holder wrote into the lock file. */
  heldBy: z.record(z.string(), z.unknown()).optional(),
  /** A failure that is not a command's (the lock's, an unreadable request). */
  error: z.string().optional(),
  release: releaseAnswer.optional(),
});

export const hostApplyRequest = z.object({
  v: protocolVersion,
  /** Uploaded under temporary names; moved into place after their sha256 is checked. */
  uploads: z.array(z.object({ tmp: z.string(), final: z.string(), sha256: z.string() })),
  /** Wait for an "uploaded" line before touching the uploads (they are still arriving over SFTP). */
  waitForUploads: z.boolean(),
  /** `sudo`: the argv prefix that runs the apply as the venv's owner, or [] for the login user. */
  venvs: z.array(z.object({ sudo: z.array(z.string()), input: applyVenvInput })),
  /** The host's reload; runs once after the venvs when one of them (or an earlier batch's) deployed. */
  reload: z.string().nullable(),
  /** An earlier batch on this host deployed a venv: reload even if this one deploys none. */
  reloadAnyway: z.boolean(),
  /**
   * Config files (issue 17): applied by vdeploy_remote/files.py in a child after the venvs' install and
   * migrate (when none halted and no stop came) and before any reload: a venv with a reload or health
   * check holds before them (holdBeforeReload) and goes on after the files; `sudo`: as root through `sudo -n`.
   */
  files: z.object({ sudo: z.boolean(), request: applyFilesInput }).nullable().optional(),
});

/** The lines host_apply prints on stdout, by the key that says which kind a line is. */
export const hostApplyLineKinds = {
  push: z.object({
    v: protocolVersion,
    push: z.object({ bad: z.array(z.object({ final: z.string(), got: z.string() })), bytes: z.number().int(), ms: z.number().int() }),
  }),
  venv: z.object({
    v: protocolVersion,
    venv: z.number().int().min(0),
    /** null: the child gave no readable answer (then exitCode and stderrTail say what happened). */
    output: applyVenvAnswer.nullable(),
    exitCode: z.number().int().nullable(),
    ms: z.number().int(),
    stderrTail: z.string().optional(),
  }),
  /** After the config files: files.py's answer (null: no readable one; exitCode and stderrTail say why). A failed one skips the reload. */
  files: z.object({
    v: protocolVersion,
    files: filesResult.nullable(),
    exitCode: z.number().int().nullable(),
    stderrTail: z.string().optional(),
    ms: z.number().int(),
  }),
  reload: z.object({ v: protocolVersion, reload: z.object({ ok: z.boolean(), exitCode: z.number().int().nullable(), ms: z.number().int(), tail: z.string() }) }),
  done: z.object({
    v: protocolVersion,
    done: z.object({ started: z.number().int().min(0), stoppedBy: z.enum(['stop', 'halted', 'push']).nullable() }),
  }),
};

export const hostApplyLine = z.union([hostApplyLineKinds.push, hostApplyLineKinds.venv, hostApplyLineKinds.files, hostApplyLineKinds.reload, hostApplyLineKinds.done]);

/** The progress lines on stderr (after `@vdeploy `). */
export const hostApplyProgress = z.union([
  z.object({ venv: z.number().int().min(0), phase: z.literal('venv-start') }),
  /** phase "hold": the venv waits before its reload for the host's config files (holdBeforeReload). */
  z.object({ venv: z.number().int().min(0), step: z.string(), phase: z.enum(['start', 'end', 'hold']) }),
  z.object({ reload: z.literal('start') }),
  z.object({ files: z.literal('start') }),
]);

export const contracts = {
  'apply_venv.request': applyVenvRequest,
  'apply_venv.answer': applyVenvAnswer,
  'host_apply.request': hostApplyRequest,
  'host_apply.line': hostApplyLine,
  'host_apply.progress': hostApplyProgress,
} as const;

export type ApplyVenvInput = z.infer<typeof applyVenvInput>;
export type ApplyVenvRequest = z.infer<typeof applyVenvRequest>;
export type ApplyStep = z.infer<typeof applyStep>;
export type ReleaseAnswer = z.infer<typeof releaseAnswer>;
export type ArtifactAnswer = z.infer<typeof artifactAnswer>;
export type ReceivedAnswer = z.infer<typeof receivedAnswer>;
export type MigrationsRun = z.infer<typeof migrationsRun>;
export type ApplyVenvAnswer = z.infer<typeof applyVenvAnswer>;
export type HostApplyRequest = z.infer<typeof hostApplyRequest>;
export type HostApplyLine = z.infer<typeof hostApplyLine>;
export type HostApplyProgress = z.infer<typeof hostApplyProgress>;
