"""An apply in the releases layout (releases.py): the new release is built beside the live one, never
touching `current`, then switched to atomically.

Steps: lock <root>/.vdeploy/lock, sweep what unfinished builds left, unmigrate (rollback, with the
live, newer code), build (a hardlink clone of the live release relocated to its own path, or a fresh
venv, or — a rollback — the release still on the host, or — migrate only — the live release),
stashes, install, prune, verify, pack (a builder of a ship group: artifact.py), migrate with the new
release's Python, switch, hold (holdBeforeReload: wait for host_apply's "go" while the host's config
files are applied), reload, health check. A receiver of a ship group builds by receiving the
builder's release (a full tar, or a delta applied to a clone of its live release) instead. A failure before the switch deletes the new release: nothing live changed. A failed reload or
health check after it switches back the same way and reloads again (unless automatic rollback is
off). A success cleans up beyond `keep`. The history line says which release went live
("release"), which was live before ("previousRelease"), and what was removed.
"""
import os
import shutil
import time

from vdeploy_remote import apply_venv, artifact, protocol, releases, relocate, venv_facts
from vdeploy_remote.apply_venv import StepFailed


class ReleaseApply(apply_venv.Apply):
    """An Apply whose venv is a release under the app root (request "venv")."""

    def __init__(self, request, sleep=time.sleep):
        apply_venv.Apply.__init__(self, request, sleep)
        self.root = request['venv']
        self.meta = os.path.join(self.root, '.vdeploy')
        self.options = request['releases']
        self.live = None        # the id `current` pointed to when the apply began
        self.release = None     # the id this apply makes live
        self.built = False      # whether this apply made self.release (so a failure removes it)
        self.switched = False
        self.removed = []
        self.snapshot = None    # a clone's inodes right after its relocation (a delta pack compares)
        self.artifact = None    # what pack made (builder) / received (receiver): the answer's release.*
        self.received = None
        self.use(self.root)

    def use(self, venv):
        self.venv = venv
        self.python = os.path.join(venv, 'bin', 'python')

    def current(self):
        return releases.current_link(self.root)

    def app_dir(self):
        return self.current()

    def django_argv(self, argv, cwd):
        """migrate runs with the new release's Python: paths through `current` name the new release."""
        if not self.release:
            return argv, cwd  # unmigrate, before the build: the live (newer) code, through `current`
        link = self.current() + '/'
        fix = lambda p: (self.venv + '/' + p[len(link):]) if isinstance(p, str) and p.startswith(link) else p
        return [fix(a) for a in argv], (fix(cwd + '/')[:-1] if cwd else cwd)


def lock(ctx):
    root = ctx.root
    if os.path.lexists(root) and not os.path.isdir(root):
        raise StepFailed('lock', '%s exists and is not a directory' % root)
    if os.path.isfile(os.path.join(root, 'pyvenv.cfg')):
        raise StepFailed('lock', '%s is an in-place venv, not an app root for releases' % root)
    apply_venv.take_lock(ctx)


def sweep(ctx):
    ctx.live = releases.live(ctx.root)
    releases.remove_stale_links(ctx.root)
    try:
        ctx.removed.extend(releases.sweep(ctx.root, venv_facts.read_history(ctx.root), ctx.live))
    except OSError as e:
        ctx.failed_step('sweep', 'cannot remove an unfinished release: %s' % e)


def build(ctx):
    """Chooses or makes the release this apply will make live, and points ctx at it."""
    options, request = ctx.options, ctx.request
    if options.get('switchTo'):
        return use_existing(ctx, options['switchTo'])
    ship = options.get('ship')
    if not ship and not request.get('install') and not request.get('uninstall') and not request.get('create') and ctx.live:
        return use_existing(ctx, ctx.live)  # migrate only: nothing to build
    history = venv_facts.read_history(ctx.root)
    ctx.release = releases.next_id(ctx.root, len(history), ship and ship.get('releaseId'))
    path = releases.release_path(ctx.root, ctx.release)
    ctx.built = True
    if ship:
        return receive(ctx, path, history)
    if request.get('create') or not ctx.live:
        os.makedirs(releases.releases_dir(ctx.root), exist_ok=True)
        ctx.use(path)
        python = (request.get('create') or {}).get('python') or 'python3'
        ok, _ = ctx.run('create', [python, '-m', 'venv', path])
        if not ok:
            apply_venv.explain_ensurepip(ctx)
            raise StepFailed('create')
        return
    clone_live(ctx, path)


def use_existing(ctx, release_id):
    path = releases.release_path(ctx.root, release_id)
    if not os.path.isfile(os.path.join(path, 'pyvenv.cfg')):
        ctx.failed_step('build', 'release %s is no longer on the host' % release_id)
    ctx.release = release_id
    ctx.use(path)


def clone_live(ctx, path):
    """The live release, cloned and relocated to `path`."""
    source = releases.release_path(ctx.root, ctx.live)
    protocol.progress({'step': 'clone', 'phase': 'start'})
    started = time.time()
    pip = venv_facts.installed_versions(source).get('pip')
    hardlinks = pip is not None and apply_venv.pip_release(pip) >= (18, 1)
    ok, out = releases.clone(source, path, hardlinks)
    if not ok and hardlinks:
        ok, out = releases.clone(source, path, False)
        hardlinks = False
    ctx.use(path)
    step = {'name': 'clone', 'ok': ok, 'exitCode': 0 if ok else 1, 'ms': int((time.time() - started) * 1000),
            'how': 'hardlinks' if hardlinks else 'copy'}
    if not ok:
        step['stderrTail'] = protocol.tail(out)
    ctx.steps.append(step)
    protocol.progress({'step': 'clone', 'phase': 'end'})
    if not ok:
        raise StepFailed('clone')
    # The clone's lock file would be a hardlink to the live release's: relocate writes into its own.
    shutil.rmtree(os.path.join(path, '.vdeploy'), ignore_errors=True)
    relocate_clone(ctx, source, path)
    if (ctx.options.get('pack') or {}).get('delta'):
        ctx.snapshot = artifact.snapshot(path)


def relocate_tree(path, source, holder):
    """Relocates the venv at path, which was built at source; the problems (none: it worked)."""
    result = relocate.empty_result({'venv': path})
    try:
        relocate.relocate({'venv': path, 'newPath': path, 'oldPath': source, 'holder': holder}, result)
    except relocate.Fatal as e:
        result['fatal'] = {'message': e.message}
    except OSError as e:
        result['fatal'] = {'message': '%s: %s' % (e.filename or '', e.strerror or e)}
    return ([result['fatal']['message']] if result['fatal'] else []) + ['%s: %s' % (e['path'], e['message']) for e in result['errors']]


def relocate_clone(ctx, source, path):
    protocol.progress({'step': 'relocate', 'phase': 'start'})
    started = time.time()
    problems = relocate_tree(path, source, ctx.request['holder'])
    step = {'name': 'relocate', 'ok': not problems, 'exitCode': 0 if not problems else 1,
            'ms': int((time.time() - started) * 1000)}
    if problems:
        step['stderrTail'] = protocol.tail('\n'.join(problems), 5)
    ctx.steps.append(step)
    protocol.progress({'step': 'relocate', 'phase': 'end'})
    if problems:
        raise StepFailed('relocate')


def receive(ctx, path, history):
    """Step "receive": the release is the builder's, from the shipped tar; any mismatch fails the step
    (settle then removes the release, and vdeploy builds this venv with pip instead)."""
    ship = ctx.options['ship']
    protocol.progress({'step': 'receive', 'phase': 'start'})
    started = time.time()
    ctx.use(path)
    error = None
    try:
        os.makedirs(releases.releases_dir(ctx.root), exist_ok=True)
        ctx.received = receive_release(ctx, ship, path, history)
    except artifact.Mismatch as e:
        error = str(e)
    except OSError as e:
        error = '%s: %s' % (e.filename or ship['tar'], e.strerror or e)
    step = {'name': 'receive', 'ok': not error, 'exitCode': 0 if not error else 1, 'ms': int((time.time() - started) * 1000)}
    if error:
        step['stderrTail'] = error
    ctx.steps.append(step)
    protocol.progress({'step': 'receive', 'phase': 'end'})
    if error:
        raise StepFailed('receive', error)
    ctx.history['artifact'] = ship['digest']
    ctx.history['received'] = {'kind': ship['kind']}
    artifact.prune_tars(os.path.dirname(ship['tar']), protect=[ship['tar']])


def receive_release(ctx, ship, path, history):
    """Unpacks (full) or clones the live release and applies the delta, relocates, checks; release.received."""
    holder, clock = ctx.request['holder'], [time.time()]
    ms = {'unpack': 0, 'verify': 0, 'relocate': 0}

    def lap(name):
        now = time.time()
        ms[name] += int((now - clock[0]) * 1000)
        clock[0] = now

    def relocated(problems):
        lap('relocate')
        if problems:
            raise artifact.Mismatch('relocate: ' + '; '.join(problems[:3]))

    if ship['kind'] == 'delta':
        live_base = artifact.artifact_of(history, ctx.live) if ctx.live else None
        if live_base != ship['base']:
            raise artifact.Mismatch('the live release %s is not the delta\'s base (its artifact is %s, the delta applies to %s)'
                                    % (ctx.live, live_base, ship['base']))
        live_path = releases.release_path(ctx.root, ctx.live)
        # Hardlinks are safe whatever the pip: receiving and relocating replace files, never write into them.
        ok, out = releases.clone(live_path, path, True)
        if not ok:
            ok, out = releases.clone(live_path, path, False)
        if not ok:
            raise artifact.Mismatch('cannot clone the live release: %s' % protocol.tail(out, 2))
        shutil.rmtree(os.path.join(path, '.vdeploy'), ignore_errors=True)
        lap('unpack')
        relocated(relocate_tree(path, live_path, holder))
        manifest, written = artifact.receive_delta(ship['tar'], path, ship['digest'], ship['base'])
        lap('unpack')
        moved = manifest['sourcePath'] != path
        if moved:
            relocated(artifact.relocate_entries(path, manifest['sourcePath'], path, written, holder))
        artifact.check_tree(path, manifest)
        lap('verify')
        moved = True
    else:
        manifest, written = artifact.receive_full(ship['tar'], path, ship['digest'])
        lap('unpack')
        moved = manifest['sourcePath'] != path
        if moved:
            relocated(relocate_tree(path, manifest['sourcePath'], holder))
    return {'digest': ship['digest'], 'kind': ship['kind'], 'files': len(written), 'bytes': os.path.getsize(ship['tar']),
            'relocated': moved, 'ms': ms}


def pack(ctx):
    """Step "pack" (a ship group's builder): the new release's manifest and tars in the host's artifact
    cache. A failed pack does not fail the deploy: vdeploy then builds the group's other venvs with pip."""
    spec = ctx.options.get('pack')
    if not spec or not ctx.built or not ctx.release:
        return
    protocol.progress({'step': 'pack', 'phase': 'start'})
    started = time.time()
    delta_from = None
    if spec.get('delta') and ctx.snapshot is not None:
        base = artifact.artifact_of(venv_facts.read_history(ctx.root), ctx.live)
        if base:
            delta_from = (releases.release_path(ctx.root, ctx.live), base, ctx.snapshot)
    step = {'name': 'pack', 'ok': True, 'exitCode': 0}
    try:
        ctx.artifact = artifact.pack(ctx.venv, os.path.join(spec['cacheDir'], 'artifacts'), spec['fingerprint'],
                                     spec['desired'], delta_from)
        ctx.history['artifact'] = ctx.artifact['digest']
    except (artifact.Mismatch, OSError) as e:
        step.update(ok=False, exitCode=1, stderrTail='cannot pack the release: %s' % (
            e if isinstance(e, artifact.Mismatch) else '%s: %s' % (e.filename or '', e.strerror or e)))
    step['ms'] = int((time.time() - started) * 1000)
    ctx.steps.append(step)
    protocol.progress({'step': 'pack', 'phase': 'end'})


def switch(ctx):
    if ctx.release == ctx.live:
        return
    started = time.time()
    try:
        releases.switch(ctx.root, ctx.release)
    except OSError as e:
        ctx.failed_step('switch', 'cannot switch %s to %s: %s' % (ctx.current(), ctx.release, e))
    ctx.switched = True
    ctx.steps.append({'name': 'switch', 'ok': True, 'exitCode': 0, 'ms': int((time.time() - started) * 1000)})


def reload_current(ctx):
    """The venv's reload, from the app root's `current` (what the app runs from)."""
    command = ctx.request.get('reload')
    if command:
        ok, _ = ctx.run('reload', ['sh', '-c', command], cwd=ctx.app_dir())
        if not ok:
            raise StepFailed('reload')


def switch_back(ctx):
    """After a failed reload or health check: `current` back to what it was, and the reload again."""
    started = time.time()
    try:
        if ctx.live:
            releases.switch(ctx.root, ctx.live)
        else:
            os.unlink(ctx.current())
    except OSError as e:
        ctx.steps.append({'name': 'switch-back', 'ok': False, 'exitCode': None, 'ms': 0, 'stderrTail': str(e)})
        return False
    ctx.switched = False
    ctx.steps.append({'name': 'switch-back', 'ok': True, 'exitCode': 0, 'ms': int((time.time() - started) * 1000)})
    if ctx.request.get('reload') and ctx.live:
        ok, _ = ctx.run('reload', ['sh', '-c', ctx.request['reload']], cwd=ctx.app_dir())
        return ok
    return True


# A stop (SIGTERM: host_apply forwards Ctrl-C to a releases apply) ends the apply after a step marked
# True, before the switch, and the release it built is removed. Once migrate has run, the release goes
# live instead: stopping then would leave the old code on the new schema for good.
STEPS = ((sweep, True), (apply_venv.unmigrate, True), (build, True), (apply_venv.remove_stashes, True),
         (apply_venv.install, True), (apply_venv.prune, False), (apply_venv.verify, True), (pack, True), (apply_venv.migrate, False),
         (switch, False), (apply_venv.hold, False), (reload_current, False), (apply_venv.healthcheck, False))


def steps(ctx):
    """STEPS; for a rollback that unmigrates, no stop after it: the schema went back, so the older
    release goes live."""
    if not ctx.request.get('unmigrate'):
        return STEPS
    return tuple((step, may_stop and step is sweep) for step, may_stop in STEPS)


def settle(ctx, outcome, failed):
    """After the steps: switch back, remove a release that did not go live, clean up after a success."""
    info = {'previous': ctx.live}
    if outcome != 'deployed' and ctx.switched and failed in ('reload', 'healthcheck') and ctx.options.get('switchBack', True):
        info['switchedBack'] = {'ok': switch_back(ctx)}
    now_live = releases.live(ctx.root)
    try:
        if ctx.built and ctx.release and ctx.release != now_live and os.path.isdir(releases.release_path(ctx.root, ctx.release)):
            ctx.removed.append(releases.remove(ctx.root, ctx.release, 'unfinished' if outcome == 'interrupted' else 'failed'))
        if outcome == 'deployed':
            history = venv_facts.read_history(ctx.root) + [dict(ctx.history, outcome='deployed', release=ctx.release, previousRelease=ctx.live)]
            free = releases.free_bytes(ctx.root)
            ctx.removed.extend(releases.clean_up(ctx.root, history, now_live, int(ctx.options.get('keep') or 5)))
            after = releases.free_bytes(ctx.root)
            if free is not None and after is not None:
                info['freedBytes'] = max(after - free, 0)
    except OSError as e:
        ctx.steps.append({'name': 'cleanup', 'ok': False, 'exitCode': None, 'ms': 0, 'stderrTail': 'cannot remove a release: %s' % e})
    info.update(id=ctx.release, live=now_live, removed=ctx.removed)
    # The artifact only of a release that went live: receivers get what works here, or build themselves.
    if ctx.artifact and outcome == 'deployed':
        info['artifact'] = ctx.artifact
    if ctx.received:
        info['received'] = ctx.received
    # A release this apply built: what it takes. Not for a switch to an existing release: walking its
    # thousands of files would be most of a rollback's host time (`vdeploy releases` tells).
    if ctx.built and ctx.release and os.path.isdir(releases.release_path(ctx.root, ctx.release)):
        info['bytes'], info['ownBytes'] = releases.tree_bytes(releases.release_path(ctx.root, ctx.release))
    return info


def apply(ctx):
    """The whole apply of a release; the answer (with "release": settle's info)."""
    try:
        lock(ctx)
    except StepFailed as e:
        return {'outcome': 'failed', 'failedStep': e.step, 'steps': ctx.steps, 'error': e.error}
    except apply_venv.Locked as e:
        return {'outcome': 'locked', 'failedStep': 'lock', 'steps': ctx.steps, 'heldBy': e.holder}
    ctx.history['before'] = venv_facts.installed_versions(ctx.current())
    outcome, failed = apply_venv.run_steps(ctx, steps(ctx))
    info = settle(ctx, outcome, failed)
    ctx.history.update(release=ctx.release, previousRelease=ctx.live)
    if 'switchedBack' in info:
        ctx.history['switchedBack'] = info['switchedBack']['ok']
    if info['removed']:
        ctx.history['removedReleases'] = info['removed']
    ctx.use(ctx.current())  # the history's "after": what is live now
    answer = apply_venv.record(ctx, outcome, failed)
    answer['release'] = info
    return answer
