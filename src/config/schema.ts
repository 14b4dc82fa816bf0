/**
 * The deployfile schema. One zod schema gives both types: `UserConfig` (what people write, defaults
 * optional) and `ParsedConfig` (defaults applied). Field names here are a contract with users'
 * deployfiles: add fields, never rename them.
 */
import { posix } from 'node:path';
// A namespace import (not `{ z }`): the CLI bundle then keeps only the parts of zod we use (~200 KiB, not ~800).
import * as z from 'zod';
import { NAME_PATTERN } from '../requirements/names.js';
import { checkPackages, packageSchema } from './packages-schema.js';
import { checkFileTargets, fileEntrySchema, templateVars, topFileEntrySchema } from './files-schema.js';

/** Names used in selectors (`user@host:/path`) must not contain the selector's punctuation. */
const selectorSafeName = (what: string) =>
  z
    .string()
    .min(1, { message: `${what} must not be empty` })
    .regex(/^[^\s@:/'"`$\\;]+$/, {
      message: `${what} must not contain spaces, quotes or any of @ : / $ \\ ;`,
    });

/** A remote path vdeploy will quote into commands; control characters can't be quoted safely into logs. */
const absoluteRemotePath = z
  .string()
  .refine((p) => posix.isAbsolute(p), { message: 'must be an absolute path (starting with /)' })
  .refine((p) => !/[\u0000-\u001f\u007f]/.test(p), {
    message: 'must not contain control characters (newlines, tabs, NUL)',
  })
  .transform((p) => (p.length > 1 ? posix.normalize(p).replace(/\/+$/, '') : p));

const secondsSchema = z.number().positive({ message: 'must be a positive number of seconds' });

export const sshSchema = z
  .object({
    /** known_hosts file(s) checked in addition to ~/.ssh/known_hosts. */
    knownHosts: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
    /** Private key used to log in (agent keys from SSH_AUTH_SOCK are tried too). */
    identityFile: z.string().min(1).optional(),
    strictHostKeyChecking: z.enum(['yes', 'accept-new', 'no']).default('yes'),
    /** Hosts connected to and applied in parallel. */
    concurrency: z.number().int().min(1).max(1024).default(16),
    connectTimeout: secondsSchema.default(15),
    /** Directory on each host that caches pushed wheels (default: ~/.cache/vdeploy/wheels of the login user). */
    wheelCache: z.string().min(1).optional(),
  })
  .strict();

export const djangoSchema = z
  .object({
    /** DJANGO_SETTINGS_MODULE, e.g. `mysite.settings`. */
    settings: z.string().min(1),
    /** Path to manage.py; default: `<venv>/bin/django-admin`. */
    manage: absoluteRemotePath.optional(),
    /** Working directory for migrate. */
    cwd: absoluteRemotePath.optional(),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'must be an environment variable name' }), z.string()).default({}),
  })
  .strict();

/** `{version:NAME}` in a health check's expectBody: the version of package NAME being deployed. */
export const VERSION_PLACEHOLDER = /\{version(?::([^{}]*))?\}/g;

/**
 * After reload: a command that must exit 0 and/or a URL (fetched on the host itself) that must answer
 * expectStatus — and, with expectBody, a body containing that text. Polled: settle, then up to
 * retries + 1 attempts interval apart, until it passes (an app server switching over answers with the
 * old code for a moment; only a body naming the new version tells the two apart).
 */
export const healthcheckSchema = z
  .object({
    command: z.string().min(1).optional(),
    url: z
      .string()
      .regex(/^https?:\/\/[^\s]+$/, { message: 'must be an http:// or https:// URL' })
      .optional(),
    expectStatus: z.number().int().min(100).max(599).default(200),
    /** Text the URL's body must contain; `{version:NAME}` stands for the version of package NAME being deployed. */
    expectBody: z.string().min(1, { message: 'must not be empty (leave it out to check the status only)' }).superRefine(checkPlaceholders).optional(),
    /** Seconds each attempt may take. */
    timeout: secondsSchema.default(10),
    /** Further attempts after the first fails. */
    retries: z.number().int().min(0).max(100).default(3),
    /** Seconds between attempts. */
    interval: z.number().min(0, { message: 'must be 0 or more seconds' }).default(2),
    /** Seconds to wait after the reload before the first attempt. */
    settle: z.number().min(0, { message: 'must be 0 or more seconds' }).default(0),
  })
  .strict()
  .refine((h) => h.command !== undefined || h.url !== undefined, { message: 'needs a command or a url (or both)' })
  .refine((h) => h.expectBody === undefined || h.url !== undefined, { message: 'needs a url (expectBody is checked against the URL\'s body)', path: ['expectBody'] });

function checkPlaceholders(text: string, ctx: z.RefinementCtx): void {
  for (const m of text.matchAll(VERSION_PLACEHOLDER)) {
    if (m[1] === undefined || !NAME_PATTERN.test(m[1])) {
      ctx.addIssue({ code: 'custom', message: `${m[0]}: write {version:PACKAGE}, PACKAGE being a package of the venv (e.g. {version:myapp})` });
    }
  }
}

export const hostSchema = z
  .object({
    name: selectorSafeName('host name'),
    /** DNS name or IP to connect to; default: `name`. */
    address: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    /** SSH login user; default: the local user name, as with OpenSSH. */
    user: selectorSafeName('user').optional(),
    roles: z.array(selectorSafeName('role')).default([]),
    /** Run once per host after all of its venvs are deployed. */
    reload: z.string().min(1).optional(),
    /** This host's wheel cache directory (default: ssh.wheelCache, else ~/.cache/vdeploy/wheels). */
    wheelCache: z.string().min(1).optional(),
    /** Health check for every venv on this host that declares none of its own. */
    healthcheck: healthcheckSchema.optional(),
    /** Files only this host gets (docs/files.md). */
    files: z.array(fileEntrySchema).default([]),
    /** File operations and handlers through `sudo -n` when the login user is not root. */
    sudo: z.boolean().default(false),
    /** Where the host keeps vdeploy's record of managed files and pending handlers (default: docs/files.md). */
    stateDir: absoluteRemotePath.optional(),
  })
  .strict();

/**
 * The releases layout: `path` is the app root, `<path>/releases/<id>/` a venv per deploy and
 * `<path>/current` a symlink to the live one. `true` keeps 5 releases.
 */
// A preprocess, not a union of boolean and object: a union's error is "Invalid input" for `'yes'` and
// for `{ keep: 'x' }` alike. The cast gives deployfile authors the input type a preprocess cannot.
export const releasesSchema = z.preprocess(
  // true is the default object; false (like leaving it out) is the in-place layout.
  (r) => (r === true ? {} : r === false ? undefined : r),
  z
    .object(
      {
        /** Successful releases kept on the host (the live one and the one a rollback returns to are always kept). */
        keep: z.number().int().min(1, { message: 'must be at least 1' }).max(100, { message: 'must be at most 100' }).default(5),
      },
      { error: (issue) => (issue.code === 'invalid_type' ? 'must be true, false or { keep: N }' : undefined) },
    )
    .strict()
    .optional(),
) as unknown as z.ZodType<{ keep: number } | undefined, boolean | { keep?: number } | undefined>;

export const venvSchema = z
  .object({
    host: z.string().min(1),
    /** The venv's owning user; default: the host's login user. Other users are reached with `sudo -n -u`. */
    user: selectorSafeName('user').optional(),
    path: absoluteRemotePath,
    /** Interpreter used to create the venv when it doesn't exist yet. */
    python: z.string().min(1).default('python3'),
    /** Requirements file for this venv; default: the top-level `requirements`. */
    requirements: z.string().min(1).optional(),
    django: djangoSchema.optional(),
    /** Run after this venv's migrate. */
    reload: z.string().min(1).optional(),
    /** Run after reload; a failure restores the pre-deploy package set (unless --no-rollback). */
    healthcheck: healthcheckSchema.optional(),
    /** A new venv per deploy under `<path>/releases/`, switched to atomically through `<path>/current`. */
    releases: releasesSchema.optional(),
  })
  .strict();

/** Build once, ship everywhere (docs/shipping.md): releases venvs of one group get one pip build. */
export const shipSchema = z
  .object({
    /** false: every venv builds its release with pip (as `--no-ship` does for one run). */
    enabled: z.boolean().default(true),
    /** Host whose venv builds each group it has a member in (default: the group's first venv in deploy order). */
    builder: z.string().min(1, { message: 'must name a host (or leave it out)' }).optional(),
    /** Size limit of the local artifact cache, in MiB: least recently used artifacts beyond it are removed. */
    cacheMegabytes: z.number().int({ message: 'must be a whole number of megabytes' }).min(1, { message: 'must be at least 1 (megabyte)' }).default(2048),
  })
  .strict();

export const configSchema = z
  .object({
    /** Wheel repository directory holding `release_log`. */
    wheels: z.string().min(1).default('./wheels'),
    /** Default requirements file for every venv. */
    requirements: z.string().min(1).default('./requirements.txt'),
    ssh: sshSchema.default({ strictHostKeyChecking: 'yes', concurrency: 16, connectTimeout: 15 }),
    hosts: z.array(hostSchema).min(1, { message: 'declare at least one host' }),
    venvs: z.array(venvSchema).default([]),
    ship: shipSchema.default({ enabled: true, cacheMegabytes: 2048 }),
    /** Config files for the hosts ("mock /etc", docs/files.md). */
    files: z.array(topFileEntrySchema).default([]),
    /** Template variables every file template sees (an entry's own vars win). */
    vars: templateVars.default({}),
    /** OS packages (.deb / .rpm) of venvs (docs/packages.md). */
    packages: z.array(packageSchema).default([]),
  })
  .strict()
  .superRefine((config, ctx) => {
    const hostIndex = new Map<string, number>();
    config.hosts.forEach((host, i) => {
      const first = hostIndex.get(host.name);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['hosts', i, 'name'], message: `duplicate host "${host.name}" (also hosts[${first}])` });
      } else {
        hostIndex.set(host.name, i);
      }
    });
    const seen = new Map<string, number>();
    config.venvs.forEach((venv, i) => {
      if (!hostIndex.has(venv.host)) {
        const known = [...hostIndex.keys()].join(', ');
        ctx.addIssue({ code: 'custom', path: ['venvs', i, 'host'], message: `unknown host "${venv.host}" (hosts are: ${known})` });
      }
      const key = `${venv.host}\0${venv.path}`;
      const first = seen.get(key);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['venvs', i], message: `duplicate venv ${venv.host}:${venv.path} (also venvs[${first}])` });
      } else {
        seen.set(key, i);
      }
    });
    const builder = config.ship.builder;
    if (builder !== undefined && !hostIndex.has(builder)) {
      const known = [...hostIndex.keys()].join(', ');
      ctx.addIssue({ code: 'custom', path: ['ship', 'builder'], message: `unknown host "${builder}" (hosts are: ${known})` });
    }
    checkFileTargets(config, ctx);
    checkPackages(config, ctx);
  });

/** What a deployfile's author writes: everything with a default is optional. */
export type UserConfig = z.input<typeof configSchema>;
/** The validated deployfile, defaults applied (paths still as written). */
export type ParsedConfig = z.output<typeof configSchema>;
export type UserHost = z.input<typeof hostSchema>;
export type UserVenv = z.input<typeof venvSchema>;
/** A `files` entry as written in a host (`hosts[].files`). */
export type UserFileEntry = z.input<typeof fileEntrySchema>;
/** A top-level `files` entry (with its `hosts` / `roles` filters). */
export type UserTopFileEntry = z.input<typeof topFileEntrySchema>;
export type FileEntryConfig = z.output<typeof fileEntrySchema>;
export type TopFileEntryConfig = z.output<typeof topFileEntrySchema>;
export type DjangoConfig = z.output<typeof djangoSchema>;
export type HealthcheckConfig = z.output<typeof healthcheckSchema>;
export type ShipConfig = z.output<typeof shipSchema>;
export type StrictHostKeyChecking = ParsedConfig['ssh']['strictHostKeyChecking'];
