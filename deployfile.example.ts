/**
 * An example deployfile: two hosts, three virtualenvs (two app roots in the releases layout, one
 * venv upgraded in place), one of them a Django site, and the config files that run them (a
 * supervisord program for gunicorn on the web host, a systemd unit for the worker).
 * Copy it to `deployfile.ts` next to your `wheels/` directory, copy vdeploy's `examples/etc/` to
 * `etc/` beside it, and edit the hosts.
 * Every field is described in docs/deployfile.md; config files in docs/files.md.
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
      reload: 'sudo systemctl reload nginx', // once per host, after all its venvs and files are done
      // The `app` venv below installs from this cache as `app`, so `app` must be able to read it
      // (the default, ~deploy/.cache/vdeploy/wheels, is not when deploy's home is private).
      wheelCache: '/var/cache/vdeploy/wheels',
      // The files are root's: written, and their handlers run, through `sudo -n` (the host needs
      // `deploy ALL=(root) NOPASSWD: ALL`; see docs/files.md).
      sudo: true,
    },
    {
      name: 'worker1',
      address: '10.0.0.12',
      user: 'deploy',
      roles: ['worker'],
      sudo: true,
    },
  ],

  // Template variables every file under `files` sees (with each entry's own `vars` over them).
  vars: { settings: 'mysite.settings' },

  // Config files, a "mock /etc" kept in the repository (docs/files.md): rendered locally (*.j2 files
  // are Nunjucks templates, the suffix dropped on the host), compared by sha256 with what the host
  // has (the plan shows a diff), uploaded to a temp file, checked, renamed into place — after the
  // host's venvs are installed and migrated, before any reload (the venvs' own reloads and health
  // checks wait for the files and their handlers, so they see the new config). Each entry's `onChange` runs once
  // per host when one of its files changed; one that failed or was interrupted runs on the next deploy.
  files: [
    {
      // etc/supervisor/conf.d/mysite.conf.j2 -> /etc/supervisor/conf.d/mysite.conf on the web hosts:
      // gunicorn for the Django site, run from /srv/app/current (the template reads `venvs`).
      src: './etc/supervisor/',
      dest: '/etc/supervisor/',
      roles: ['web'],
      owner: 'root',
      group: 'root',
      mode: '0644',
      vars: { bind: '127.0.0.1:8000', workers: 4 },
      // Load a new or changed program config (update restarts a program whose config changed).
      onChange: ['supervisorctl reread', 'supervisorctl update'],
    },
    {
      // The systemd alternative, for the worker: a unit under systemd/system/ that changes makes
      // vdeploy run `systemctl daemon-reload` before these handlers.
      src: './etc/systemd/',
      dest: '/etc/systemd/',
      roles: ['worker'],
      vars: { concurrency: 2 },
      onChange: ['systemctl enable mysite-worker.service', 'systemctl restart mysite-worker.service'],
    },
  ],

  venvs: [
    {
      // The Django site, in the releases layout (recommended): `path` is the app root. Each deploy
      // builds a complete new venv in /srv/app/releases/<id>/ beside the live one (a hardlink clone
      // of it, relocated, plus the changed packages), runs migrate with it, then switches the
      // /srv/app/current symlink to it in one rename(2); a failed reload or health check switches
      // back. `vdeploy rollback` switches to an older release without pip. Run the app from
      // /srv/app/current/bin/... See docs/releases.md.
      // Owned by `app`, so vdeploy works on it with `sudo -n -u app` (the host needs the sudoers
      // rule `deploy ALL=(app) NOPASSWD: ALL`; see docs/deployfile.md).
      host: 'web1',
      user: 'app',
      path: '/srv/app',
      releases: { keep: 5 }, // successful releases kept (the live one and the rollback target always are)
      python: 'python3',
      requirements: './requirements-web.txt',
      django: { settings: 'mysite.settings', cwd: '/srv/app', env: { DJANGO_DEBUG: '0' } },
      // After the switch the server must load the new release: `kill -HUP` keeps gunicorn on the old
      // one (its master resolved the old path), a restart does not (docs/deployfile.md, "Reloading
      // after a release switch"; `app` needs a sudoers rule for this command). gunicorn runs under
      // supervisord, from the program config in `files` above: this reload and the health check
      // wait for the files and their handlers, so on a new host the program exists by then.
      reload: 'sudo supervisorctl restart mysite',
      // Passes only once the NEW code answers: /health/ returns "mysite <version>".
      healthcheck: { url: 'http://127.0.0.1:8000/health/', expectBody: 'mysite {version:mysite}', retries: 30, interval: 1 },
    },
    {
      // The alternative: an in-place venv (no `releases`), upgraded where it is by pip. Cheaper on
      // disk and on a first deploy, but the app may import a half-upgraded set while pip runs, and a
      // rollback runs pip again.
      host: 'web1',
      path: '/srv/tools/venv',
    },
    {
      // `releases: true` keeps 5.
      host: 'worker1',
      path: '/srv/worker',
      releases: true,
      python: '/usr/bin/python3.11',
    },
  ],
});
