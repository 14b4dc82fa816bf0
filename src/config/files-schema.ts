/**
 * The `files` entries of the deployfile (config files, "mock /etc": docs/files.md) and template `vars`;
 * part of the one deployfile schema in schema.ts.
 */
import { posix } from 'node:path';
import * as z from 'zod';

/** A file mode as people write it: '0644', '644', '0755'. */
const fileMode = z
  .string({ error: (issue) => (issue.code === 'invalid_type' ? "must be a quoted octal string like '0644' (a number 0644 would not mean what it says)" : undefined) })
  .regex(/^[0-7]{3,4}$/, { message: "must be an octal mode string like '0644' (3 or 4 digits 0-7)" });

/** An owner or group name (or a numeric id): it goes into chown, so no spaces, colons or control characters. */
const accountName = (what: string) =>
  z.string().min(1, { message: `${what} must not be empty` }).regex(/^[^\s:/\u0000-\u001f\u007f]+$/, { message: `${what} must not contain spaces, colons or slashes` });

/**
 * Like schema.ts's absoluteRemotePath, but a trailing '/' is kept: for a single-file entry it says "a directory,
 * the file keeps its own name" (docs/files.md).
 */
const fileDest = z
  .string()
  .refine((p) => posix.isAbsolute(p), { message: 'must be an absolute path (starting with /)' })
  .refine((p) => !/[\u0000-\u001f\u007f]/.test(p), { message: 'must not contain control characters (newlines, tabs, NUL)' })
  .transform((p) => {
    const normal = posix.normalize(p);
    return normal === '/' || !p.endsWith('/') ? normal.replace(/(.)\/+$/, '$1') : `${normal.replace(/\/+$/, '')}/`;
  });

/** Names the template context sets itself: a var with one of them would be silently hidden. */
const RESERVED_VARS = ['host', 'venvs'];

/** Template variables: plain data (the deployfile's default export is data already). */
export const templateVars = z
  .record(z.string(), z.unknown(), { error: (issue) => (issue.code === 'invalid_type' ? 'must be an object of template variables ({ name: value })' : undefined) })
  .superRefine((vars, ctx) => {
  for (const name of RESERVED_VARS) {
    if (Object.hasOwn(vars, name)) ctx.addIssue({ code: 'custom', path: [name], message: `is reserved: templates get the ${name === 'host' ? 'host ({ name, address, roles })' : 'venvs on the host'} as \`${name}\`; rename the variable` });
  }
});

/** One `files` entry (docs/files.md): a tree or one file from the repository, copied to hosts. */
const fileEntryShape = {
  /** Local, relative to the deployfile's directory: a directory is a tree (every regular file under it). */
  src: z.string().min(1, { message: 'must not be empty' }),
  /** For a tree: the directory it lands in; for one file: its path, or a directory when it ends with '/'. */
  dest: fileDest,
  /** Absent: not managed (not chowned; drift ignores it). */
  owner: accountName('owner').optional(),
  group: accountName('group').optional(),
  /** Default '0644'; a source file with an x bit gets x wherever r is (0644 -> 0755). */
  mode: fileMode.default('0644'),
  /** Absent: only *.j2 files are templates (the suffix is stripped from dest); true: every file; false: none. */
  template: z.boolean().optional(),
  vars: templateVars.default({}),
  /** Run on the uploaded temp file before it is renamed into place; `{path}` stands for that file. */
  validate: z
    .string()
    .min(1, { message: 'must not be empty (leave it out to skip validation)' })
    .refine((v) => v.includes('{path}'), { message: 'must contain {path} (the uploaded temp file it checks), e.g. `nginx -t -c {path}`' })
    .optional(),
  /** Shell commands run once per host, in order, when any file of this entry changed. */
  onChange: z.array(z.string().min(1, { message: 'must not be empty' })).default([]),
  /** No diff in the plan; content never in --json. */
  secret: z.boolean().default(false),
  /** File operations and handlers run through `sudo -n` (ignored when the login user is root). */
  sudo: z.boolean().default(false),
};

export const fileEntrySchema = z.object(fileEntryShape).strict();

/** A top-level entry: goes to the hosts named in `hosts` and those with one of `roles`; to every host when neither is given. */
export const topFileEntrySchema = z
  .object({
    ...fileEntryShape,
    hosts: z.array(z.string().min(1)).optional(),
    roles: z.array(z.string().min(1)).optional(),
  })
  .strict();

/** `files[i].hosts` must name declared hosts and `files[i].roles` roles some host has: a typo would silently deploy nowhere. */
export function checkFileTargets(config: { hosts: Array<{ name: string; roles: string[] }>; files: Array<{ hosts?: string[] | undefined; roles?: string[] | undefined }> }, ctx: z.RefinementCtx): void {
  const names = config.hosts.map((h) => h.name);
  const roles = new Set(config.hosts.flatMap((h) => h.roles));
  config.files.forEach((entry, i) => {
    entry.hosts?.forEach((name, j) => {
      if (!names.includes(name)) ctx.addIssue({ code: 'custom', path: ['files', i, 'hosts', j], message: `unknown host "${name}" (hosts are: ${names.join(', ')})` });
    });
    entry.roles?.forEach((role, j) => {
      if (!roles.has(role)) {
        const known = roles.size > 0 ? `roles are: ${[...roles].join(', ')}` : 'no host has roles';
        ctx.addIssue({ code: 'custom', path: ['files', i, 'roles', j], message: `no host has role "${role}" (${known})` });
      }
    });
  });
}
