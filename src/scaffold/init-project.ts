/** `vdeploy init`: a starter deployfile, requirements file and empty wheel repository. */
import { constants } from 'node:fs';
import { mkdir, open, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { ConfigError } from '../errors.js';

const STARTER_DEPLOYFILE = `import { defineConfig } from 'vdeploy';

// vdeploy's deployfile: which hosts to connect to and which virtualenvs live on them.
// Every field is described in vdeploy's docs/deployfile.md.
export default defineConfig({
  wheels: './wheels', // wheel repository: add wheels with \`vdeploy add-wheel dist/*.whl\`
  requirements: './requirements.txt', // what every venv gets unless it names its own file
  ssh: {
    knownHosts: '~/.ssh/known_hosts', // host keys are always checked; unknown hosts are refused
    strictHostKeyChecking: 'yes',
    concurrency: 16,
  },
  hosts: [
    { name: 'web1', address: 'web1.example.com', user: 'deploy', roles: ['web'] },
  ],
  venvs: [
    {
      host: 'web1',
      // With \`releases\`, path is the app root: each deploy builds a new venv in /srv/app/releases/<id>/
      // beside the live one and switches the /srv/app/current symlink to it in one step; a rollback
      // switches back without pip. Run the app from /srv/app/current/bin/... (docs/releases.md).
      // Leave \`releases\` out to upgrade a venv at path in place instead.
      path: '/srv/app',
      python: 'python3',
      releases: { keep: 5 }, // successful releases kept on the host (the live one always is)
    },
  ],
});
`;

const STARTER_REQUIREMENTS = `# One PEP 508 requirement per line, resolved against the wheel repository's release_log.
# Example:
# django>=5.2,<6
# gunicorn
`;

export interface InitResult {
  dir: string;
  /** Paths created, relative to `dir`. */
  created: string[];
}

/** Creates the starter files; refuses (and creates nothing) if any of them exists already. */
export async function initProject(dir: string): Promise<InitResult> {
  const files: Array<[string, string]> = [
    ['deployfile.ts', STARTER_DEPLOYFILE],
    ['requirements.txt', STARTER_REQUIREMENTS],
    [join('wheels', 'release_log'), ''],
  ];
  const existing: string[] = [];
  for (const [name] of files) {
    if (await exists(join(dir, name))) existing.push(name);
  }
  if (existing.length > 0) {
    throw new ConfigError(`${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''} in ${dir}; nothing was written`, {
      hint: 'vdeploy init never overwrites: move those files away or edit them by hand',
    });
  }
  await mkdir(join(dir, 'wheels'), { recursive: true });
  for (const [name, content] of files) {
    // O_EXCL so a file created between the check and now is still never overwritten.
    const handle = await open(join(dir, name), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
    try {
      await handle.writeFile(content);
    } finally {
      await handle.close();
    }
  }
  return { dir, created: files.map(([name]) => relative(dir, join(dir, name))) };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
