/**
 * An example deployfile: two hosts, three virtualenvs, one of them a Django site.
 * Copy it to `deployfile.ts` next to your `wheels/` directory and edit the hosts.
 * Every field is described in docs/deployfile.md.
 */
import { defineConfig } from 'vdeploy';

export default defineConfig({
  // The wheel repository: `vdeploy add-wheel dist/*.whl` copies wheels here and appends to
  // wheels/release_log, which is what deploys resolve requirements against.
  wheels: './wheels',

  // What every venv gets unless it names its own requirements file (PEP 508 lines, `-r` includes).
  requirements: './requirements.txt',

  ssh: {
    // Host keys are checked against this file (and ~/.ssh/known_hosts); an unknown host is refused.
    knownHosts: '~/.ssh/known_hosts',
    identityFile: '~/.ssh/id_ed25519',
    strictHostKeyChecking: 'yes',
    concurrency: 16, // hosts worked on in parallel
  },

  hosts: [
    {
      name: 'web1', // what selectors and messages call it: `vdeploy deploy web1`
      address: 'web1.example.com',
      port: 22,
      user: 'deploy', // the SSH login user
      roles: ['web'],
      reload: 'sudo systemctl reload nginx', // once per host, after all its venvs are done
      // The `app` venv below installs from this cache as `app`, so `app` must be able to read it
      // (the default, ~deploy/.cache/vdeploy/wheels, is not when deploy's home is private).
      wheelCache: '/var/cache/vdeploy/wheels',
    },
    {
      name: 'worker1',
      address: '10.0.0.12',
      user: 'deploy',
      roles: ['worker'],
    },
  ],

  venvs: [
    {
      // The Django site: owned by `app`, so vdeploy works on it with `sudo -n -u app` (the host needs
      // the sudoers rule `deploy ALL=(app) NOPASSWD: ALL`; see docs/deployfile.md).
      host: 'web1',
      user: 'app',
      path: '/srv/app/venv',
      python: 'python3',
      requirements: './requirements-web.txt',
      django: { settings: 'mysite.settings', cwd: '/srv/app', env: { DJANGO_DEBUG: '0' } },
      // HUP makes gunicorn load the new code in new workers (not with --preload: restart it then).
      reload: 'kill -HUP $(cat /srv/app/gunicorn.pid)',
      // Passes only once the NEW code answers: /health/ returns "mysite <version>".
      healthcheck: { url: 'http://127.0.0.1:8000/health/', expectBody: 'mysite {version:mysite}', retries: 30, interval: 1 },
    },
    {
      // A second venv on the same host, with the default requirements file.
      host: 'web1',
      path: '/srv/tools/venv',
    },
    {
      host: 'worker1',
      path: '/srv/worker/venv',
      python: '/usr/bin/python3.11',
    },
  ],
});
