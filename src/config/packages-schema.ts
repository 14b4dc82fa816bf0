/**
 * The deployfile's `packages` (OS packages, issue 19, docs/packages.md): each builds a .deb and/or an
 * .rpm of one venv's desired set, relocated to `<prefix>/venv`. Part of the one schema in schema.ts.
 */
import { posix } from 'node:path';
import * as z from 'zod';

/** Debian's package-name rule (policy 5.6.1), also valid for RPM. */
export const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;

const absolutePath = z
  .string()
  .refine((p) => posix.isAbsolute(p), { message: 'must be an absolute path (starting with /)' })
  .refine((p) => !/['"$`\\\s\u0000-\u001f\u007f]/.test(p), { message: 'must not contain spaces, quotes, $, backquotes, backslashes or control characters (it is written into scripts and shebangs)' })
  .refine((p) => posix.normalize(p).replace(/\/+$/, '') !== '', { message: 'must not be / (give the directory the package installs into, e.g. /opt/myshop)' })
  .transform((p) => posix.normalize(p).replace(/\/+$/, ''));

/** `host:/path`: a venv of the deployfile (its requirements and the release log give the package's set). */
const venvRef = z.string().regex(/^[^\s@:/]+:\/\S*$/, { message: 'must be HOST:/PATH naming a venv of the deployfile (e.g. web1:/srv/app)' });

/** A Debian dependency expression (`libpq5`, `libssl3 (>= 3.0)`, `a | b`): no commas (one per entry) nor newlines. */
const dependency = z.string().regex(/^[a-z0-9][a-z0-9+.-]+(\s*\([<>=]{1,2}\s*[^\s(),]+\))?(\s*\|\s*[a-z0-9][a-z0-9+.-]+(\s*\([<>=]{1,2}\s*[^\s(),]+\))?)*$/, {
  message: 'must be one package name with an optional version, e.g. libpq5 or "libssl3 (>= 3.0)" (one dependency per entry)',
});

const oneLine = (what: string) =>
  z
    .string()
    .min(1, { message: `${what} must not be empty` })
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), { message: `${what} must be one line (no newlines or control characters)` });

export const packageSchema = z
  .object({
    name: z.string().regex(PACKAGE_NAME, { message: 'must be a package name: lower-case letters, digits, + - . (at least 2 characters, starting with a letter or digit)' }),
    venv: venvRef,
    /** Where the package installs; the venv is `<prefix>/venv`, a shipped interpreter `<prefix>/python`. */
    prefix: absolutePath,
    interpreter: z.union([z.literal('system'), z.object({ path: absolutePath }).strict()], {
      error: () => "must be 'system' or { path: '/absolute/cpython/prefix' }",
    }),
    /** A host of the target OS to build the venv on over SSH (interpreter 'system'); default: here. */
    buildOn: z.string().min(1).optional(),
    /** Local directories whose trees are installed under / (./etc/ → /etc/...), as conffiles. */
    files: z.array(z.string().min(1, { message: 'must not be empty' })).default([]),
    /** A systemd unit (local path) installed to /lib/systemd/system/<basename>, enabled and restarted on install. */
    service: z
      .object({ unit: z.string().regex(/\.(service|socket|timer)$/, { message: 'must be a systemd unit file (NAME.service, .socket or .timer)' }) })
      .strict()
      .optional(),
    depends: z.array(dependency).default([]),
    /** RPM Requires (default: `depends`' names). */
    requires: z.array(oneLine('a requirement')).optional(),
    maintainer: oneLine('maintainer').optional(),
    description: z.string().min(1, { message: 'must not be empty' }).optional(),
    homepage: z.string().regex(/^https?:\/\/\S+$/, { message: 'must be an http:// or https:// URL' }).optional(),
    license: oneLine('license').optional(),
  })
  .strict();

export type PackageConfig = z.output<typeof packageSchema>;
export type UserPackage = z.input<typeof packageSchema>;

/** Duplicate names, and venvs that are not venvs of the deployfile: a typo would package nothing. */
export function checkPackages(config: { hosts: Array<{ name: string }>; venvs: Array<{ host: string; path: string }>; packages: Array<{ name: string; venv: string; buildOn?: string | undefined }> }, ctx: z.RefinementCtx): void {
  const names = new Map<string, number>();
  const venvs = new Set(config.venvs.map((v) => `${v.host}:${v.path}`));
  config.packages.forEach((p, i) => {
    const first = names.get(p.name);
    if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['packages', i, 'name'], message: `duplicate package "${p.name}" (also packages[${first}])` });
    else names.set(p.name, i);
    const [host, ...rest] = p.venv.split(':');
    const path = posix.normalize(rest.join(':')).replace(/(.)\/+$/, '$1');
    if (!venvs.has(`${host}:${path}`)) {
      const known = [...venvs].join(', ') || 'none declared';
      ctx.addIssue({ code: 'custom', path: ['packages', i, 'venv'], message: `"${p.venv}" is not a venv of the deployfile (venvs are: ${known})` });
    }
    if (p.buildOn !== undefined && !config.hosts.some((h) => h.name === p.buildOn)) {
      ctx.addIssue({ code: 'custom', path: ['packages', i, 'buildOn'], message: `unknown host "${p.buildOn}" (hosts are: ${config.hosts.map((h) => h.name).join(', ')})` });
    }
  });
}
