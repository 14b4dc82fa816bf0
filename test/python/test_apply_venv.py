"""vdeploy_remote.apply_venv: each step alone on temporary directories (hand-built venv trees, stub
commands), the decisions as pure functions (which pip options for which pip, PEP 440 verify, migration
output, health check retries), and main() end to end once, in a child process started as host_apply
starts it, on a real venv made by this Python (pip 18.1 under 3.6: the hashes-only path)."""
import base64
import hashlib
import http.server
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import zipfile
from unittest import mock

import support
from vdeploy_remote import apply_venv, protocol
from vdeploy_remote.apply_venv import Apply, Locked, StepFailed

XY = '%d.%d' % sys.version_info[:2]


def write(path, text, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)


def fake_venv(path, packages=()):
    """A venv tree as venv_facts reads it: pyvenv.cfg and a dist-info per (name, version)."""
    write(os.path.join(path, 'pyvenv.cfg'), 'home = /usr/bin\nversion = %s.0\n' % XY)
    site = os.path.join(path, 'lib', 'python' + XY, 'site-packages')
    os.makedirs(site, exist_ok=True)
    for name, version in packages:
        write(os.path.join(site, '%s-%s.dist-info' % (name, version), 'METADATA'),
              'Metadata-Version: 2.1\nName: %s\nVersion: %s\n\n' % (name, version))
    return path


def request(venv, **over):
    base = {
        'v': protocol.PROTOCOL, 'venv': venv, 'create': None, 'lockWaitSeconds': 0,
        'holder': {'user': 'test', 'host': 'here', 'pid': 1, 'startedAt': '2026-01-01T00:00:00.000Z'},
        'install': None, 'uninstall': [], 'uninstallKeys': [], 'expect': {}, 'migrate': None, 'unmigrate': [],
        'reload': None, 'healthcheck': None, 'history': {'time': '2026-01-01T00:00:00.000Z', 'action': 'deploy'},
    }
    base.update(over)
    return base


def build_wheel(directory, name, version):
    """A minimal valid pure-Python wheel; (filename, sha256)."""
    dist = '%s-%s.dist-info' % (name, version)
    files = {
        name + '/__init__.py': '__version__ = %r\n' % version,
        dist + '/METADATA': 'Metadata-Version: 2.1\nName: %s\nVersion: %s\n' % (name, version),
        dist + '/WHEEL': 'Wheel-Version: 1.0\nGenerator: vdeploy-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n',
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()
        record.append('%s,sha256=%s,%d' % (path, digest, len(text.encode())))
    files[dist + '/RECORD'] = '\n'.join(record + [dist + '/RECORD,,']) + '\n'
    filename = '%s-%s-py3-none-any.whl' % (name, version)
    path = os.path.join(directory, filename)
    with zipfile.ZipFile(path, 'w') as z:
        for name_in_zip, text in files.items():
            z.writestr(name_in_zip, text)
    return filename, apply_venv.sha256_of(path)


class TempDir(unittest.TestCase):
    def setUp(self):
        self.root = os.path.realpath(tempfile.mkdtemp(prefix='vdeploy-test-apply-'))
        self.addCleanup(shutil.rmtree, self.root, True)
        self.progress = []
        patcher = mock.patch.object(protocol, 'progress', self.progress.append)
        patcher.start()
        self.addCleanup(patcher.stop)

    def context(self, venv, **over):
        ctx = Apply(request(venv, **over), sleep=lambda s: None)
        self.addCleanup(ctx.close)
        return ctx


class LockStep(TempDir):
    def test_takes_the_lock_and_writes_the_holder(self):
        ctx = self.context(os.path.join(self.root, 'new', 'venv'))
        apply_venv.lock(ctx)
        with open(os.path.join(ctx.meta, 'lock'), encoding='utf-8') as f:
            self.assertEqual(json.load(f)['user'], 'test')

    def test_held_by_another_process_is_locked_naming_the_holder(self):
        venv = fake_venv(os.path.join(self.root, 'v'))
        os.makedirs(os.path.join(venv, '.vdeploy'))
        holder = subprocess.Popen([sys.executable, '-c', (
            'import fcntl, sys\n'
            'f = open(sys.argv[1], "a+")\n'
            'fcntl.flock(f, fcntl.LOCK_EX)\n'
            'f.write(\'{"user": "alice", "host": "ci", "pid": 42, "startedAt": "then"}\'); f.flush()\n'
            'print("held", flush=True)\n'
            'sys.stdin.read()\n'), os.path.join(venv, '.vdeploy', 'lock')],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.addCleanup(holder.wait)
        self.addCleanup(holder.stdin.close)
        self.assertEqual(holder.stdout.readline(), b'held\n')
        ctx = self.context(venv)
        with self.assertRaises(Locked) as caught:
            apply_venv.lock(ctx)
        self.assertEqual(caught.exception.holder, {'user': 'alice', 'host': 'ci', 'pid': 42, 'startedAt': 'then'})
        answer = apply_venv.apply(ctx)
        self.assertEqual(answer, {'outcome': 'locked', 'failedStep': 'lock', 'steps': [], 'heldBy': caught.exception.holder})
        support.check_contract('apply_venv.answer', dict(answer, v=1))
        # Waiting: the holder lets go, the wait ends with the lock.
        waiting = Apply(request(venv, lockWaitSeconds=10))
        self.addCleanup(waiting.close)
        holder.stdin.close()
        apply_venv.lock(waiting)
        self.assertIsNotNone(waiting.lock_file)

    def test_a_file_in_the_way_and_a_directory_that_is_not_a_venv_fail(self):
        path = os.path.join(self.root, 'file')
        write(path, 'x')
        with self.assertRaises(StepFailed) as caught:
            apply_venv.lock(self.context(path))
        self.assertEqual((caught.exception.step, caught.exception.error), ('lock', '%s exists and is not a directory' % path))
        busy = os.path.join(self.root, 'busy')
        write(os.path.join(busy, 'notes.txt'), 'x')
        answer = apply_venv.apply(self.context(busy, create={'python': sys.executable}))
        self.assertEqual(answer['error'], '%s exists and is not a venv (it holds notes.txt)' % busy)
        self.assertEqual(answer['failedStep'], 'lock')
        support.check_contract('apply_venv.answer', dict(answer, v=1))


class CreateStep(TempDir):
    def test_runs_the_configured_python_and_skips_an_existing_venv(self):
        stub = os.path.join(self.root, 'python-stub')
        write(stub, '#!/bin/sh\n[ "$1 $2" = "-m venv" ] && mkdir -p "$3" && echo "home = /x" > "$3/pyvenv.cfg"\n', 0o755)
        ctx = self.context(os.path.join(self.root, 'v'), create={'python': stub})
        apply_venv.create(ctx)
        self.assertTrue(os.path.isfile(os.path.join(ctx.venv, 'pyvenv.cfg')))
        self.assertEqual([(s['name'], s['ok']) for s in ctx.steps], [('create', True)])
        # Marked until the apply succeeds; then a whole venv, which a second create leaves alone.
        self.assertTrue(apply_venv.venv_facts.half_made(ctx.venv))
        apply_venv.settle_created(ctx, 'deployed')
        self.assertFalse(apply_venv.venv_facts.half_made(ctx.venv))
        apply_venv.create(ctx)
        self.assertEqual(len(ctx.steps), 1)

    def test_a_half_made_venv_is_emptied_and_made_anew(self):
        # What a disk that filled up mid-create leaves: a venv with a truncated file in pip, still marked.
        venv = fake_venv(os.path.join(self.root, 'v'), [('pip', '23.0')])
        write(os.path.join(venv, 'lib', 'python' + XY, 'site-packages', 'pip', '__init__.pyc'), '')
        write(os.path.join(venv, '.vdeploy', 'creating'), '{}')
        write(os.path.join(venv, '.vdeploy', 'history.jsonl'), '{"outcome": "failed"}\n')
        os.symlink('/nowhere', os.path.join(venv, 'lib64'))
        stub = os.path.join(self.root, 'python-stub')
        write(stub, '#!/bin/sh\nls -A "$3" > "%s/seen"; echo "home = /x" > "$3/pyvenv.cfg"\n' % self.root, 0o755)
        ctx = self.context(venv, create={'python': stub})
        apply_venv.lock(ctx)
        apply_venv.create(ctx)
        with open(os.path.join(self.root, 'seen'), encoding='utf-8') as f:
            self.assertEqual(f.read().split(), ['.vdeploy'])
        self.assertEqual(sorted(os.listdir(ctx.meta)), ['creating', 'history.jsonl', 'lock'])

    def test_a_marked_venv_without_pyvenv_cfg_is_not_refused_by_the_lock(self):
        venv = os.path.join(self.root, 'v')
        write(os.path.join(venv, 'bin', 'python3'), '')
        write(os.path.join(venv, '.vdeploy', 'creating'), '{}')
        apply_venv.lock(self.context(venv, create={'python': sys.executable}))

    def test_a_failed_first_apply_removes_the_venv_but_keeps_its_history(self):
        stub = os.path.join(self.root, 'python-stub')
        write(stub, '#!/bin/sh\nmkdir -p "$3/bin"; echo "home = /x" > "$3/pyvenv.cfg"\n'
                    'echo "OSError: [Errno 28] No space left on device" >&2; exit 1\n', 0o755)
        venv = os.path.join(self.root, 'v')
        answer = apply_venv.apply(self.context(venv, create={'python': stub}))
        self.assertEqual((answer['outcome'], answer['failedStep']), ('failed', 'create'))
        self.assertIn('[Errno 28] No space left on device', answer['steps'][0]['stderrTail'])
        self.assertEqual(answer['installed'], {})
        self.assertEqual(os.listdir(venv), ['.vdeploy'])
        self.assertTrue(apply_venv.venv_facts.half_made(venv))
        self.assertEqual(apply_venv.venv_facts.read_history(venv)[0]['failedStep'], 'create')
        support.check_contract('apply_venv.answer', dict(answer, v=1))

    def test_an_interrupted_create_stays_for_the_next_run_to_make_anew(self):
        stub = os.path.join(self.root, 'python-stub')
        write(stub, '#!/bin/sh\nmkdir -p "$3/bin"; echo "home = /x" > "$3/pyvenv.cfg"\n', 0o755)
        venv = os.path.join(self.root, 'v')
        ctx = self.context(venv, create={'python': stub})
        ctx.interrupted.append(15)
        self.assertEqual(apply_venv.apply(ctx)['outcome'], 'interrupted')
        self.assertTrue(os.path.isfile(os.path.join(venv, 'pyvenv.cfg')))
        self.assertTrue(apply_venv.venv_facts.half_made(venv))

    def test_ensurepip_failing_inside_venv_is_run_again_to_say_why(self):
        venv = os.path.join(self.root, 'v')
        pip = os.path.join(self.root, 'pip-stub')
        write(pip, '#!/bin/sh\necho "Processing /tmp/pip.whl"\n'
                   'echo "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device"\n'
                   'echo "Traceback (most recent call last):"; exit 1\n', 0o755)
        stub = os.path.join(self.root, 'python-stub')
        write(stub, "#!/bin/sh\nmkdir -p \"$3/bin\"; cp %s \"$3/bin/python\"\n"
                    "echo \"Error: Command '['$3/bin/python', '-m', 'ensurepip', '--upgrade', "
                    "'--default-pip']' returned non-zero exit status 1.\" >&2; exit 1\n" % pip, 0o755)
        ctx = self.context(venv, create={'python': stub})
        with self.assertRaises(StepFailed):
            apply_venv.create(ctx)
        self.assertEqual(ctx.steps[0]['stderrTail'].splitlines()[-1],
                         'ensurepip: ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device')

    def test_a_python_that_is_not_there_fails_create_with_exit_127(self):
        ctx = self.context(os.path.join(self.root, 'v'), create={'python': os.path.join(self.root, 'nope')})
        with self.assertRaises(StepFailed) as caught:
            apply_venv.create(ctx)
        self.assertEqual(caught.exception.step, 'create')
        self.assertEqual(ctx.steps[0]['exitCode'], 127)
        self.assertIn('nope', ctx.steps[0]['stderrTail'])


class PipDecisions(unittest.TestCase):
    def test_pip_release(self):
        self.assertEqual(apply_venv.pip_release('23.0.1'), (23, 0, 1))
        self.assertEqual(apply_venv.pip_release('22.2b1'), (22, 2))
        self.assertEqual(apply_venv.pip_release('junk'), ())

    def test_report_from_22_2(self):
        self.assertFalse(apply_venv.has_report('18.1'))
        self.assertFalse(apply_venv.has_report('22.1.2'))
        self.assertTrue(apply_venv.has_report('22.2'))
        self.assertTrue(apply_venv.has_report('24.2'))

    def test_the_install_needs_pip_8_and_prune_pip_6(self):
        self.assertIsNone(apply_venv.pip_too_old('8.0', 'install', '/srv/v'))
        self.assertIsNone(apply_venv.pip_too_old('18.1', 'install', '/srv/v'))
        self.assertEqual(apply_venv.pip_too_old('7.1.2', 'install', '/srv/v'),
                         'pip 7.1.2 in /srv/v is older than 8.0, which --require-hashes needs: upgrade that pip by hand '
                         '(/srv/v/bin/python -m pip install pip-VERSION-py3-none-any.whl) or recreate the venv with a newer Python')
        self.assertIsNone(apply_venv.pip_too_old('7.1.2', 'prune', '/srv/v'))
        self.assertIn('older than 6.0, which --isolated needs', apply_venv.pip_too_old('1.5.6', 'prune', '/srv/v'))

    def test_install_argv(self):
        base = ['py', '-m', 'pip', 'install', '--isolated', '--no-index', '--find-links', '/c', '--require-hashes',
                '--disable-pip-version-check', '--no-input']
        self.assertEqual(apply_venv.install_argv('py', '/c', '/r.txt'), base + ['-r', '/r.txt'])
        self.assertEqual(apply_venv.install_argv('py', '/c', '/r.txt', '/rep.json'), base + ['--report', '/rep.json', '-r', '/r.txt'])

    def test_every_option_the_install_passes_is_in_the_table(self):
        table = set(option for option, _, _ in apply_venv.PIP_MINIMUMS)
        used = [a for a in apply_venv.install_argv('py', '/c', '/r', '/rep') if a in table]
        self.assertEqual(sorted(used), sorted(table))


class InstallStep(TempDir):
    def test_a_damaged_or_missing_cached_wheel_is_removed_and_fails_install_before_pip(self):
        cache = os.path.join(self.root, 'cache')
        os.makedirs(cache)
        good, good_sha = build_wheel(cache, 'good', '1.0')
        write(os.path.join(cache, 'bad-1.0-py3-none-any.whl'), 'damaged')
        ctx = self.context(fake_venv(os.path.join(self.root, 'v'), [('pip', '23.0')]), install={
            'requirements': 'good==1.0\n', 'cacheDir': cache,
            'wheels': [{'filename': good, 'sha256': good_sha}, {'filename': 'bad-1.0-py3-none-any.whl', 'sha256': '0' * 64},
                       {'filename': 'gone-1.0-py3-none-any.whl', 'sha256': '0' * 64}]})
        os.makedirs(ctx.meta)
        with self.assertRaises(StepFailed) as caught:
            apply_venv.install(ctx)
        self.assertEqual(caught.exception.step, 'install')
        self.assertEqual(ctx.steps[0]['stderrTail'], 'wheel cache entries were damaged or missing and have been removed: '
                         'bad-1.0-py3-none-any.whl, gone-1.0-py3-none-any.whl (missing); run the deploy again to push them anew')
        self.assertEqual(sorted(os.listdir(cache)), [good])

    def test_a_cache_the_owner_may_not_read_fails_install_naming_the_directory_and_the_fix(self):
        cache = os.path.join(self.root, 'home', 'deploy', 'wheels')
        os.makedirs(cache)
        good, good_sha = build_wheel(cache, 'good', '1.0')
        ctx = self.context(fake_venv(os.path.join(self.root, 'v'), [('pip', '23.0')]), install={
            'requirements': 'good==1.0\n', 'cacheDir': cache, 'wheels': [{'filename': good, 'sha256': good_sha}]})
        os.makedirs(ctx.meta)
        home = os.path.join(self.root, 'home', 'deploy')
        # The tests run as root, who may read anything: the owner's view is simulated.
        denied = OSError(13, 'Permission denied')
        with mock.patch.object(apply_venv, 'sha256_of', side_effect=PermissionError(*denied.args)), \
                mock.patch.object(apply_venv.os, 'access', side_effect=lambda p, mode: p != home):
            with self.assertRaises(StepFailed):
                apply_venv.install(ctx)
        message = ctx.steps[0]['stderrTail']
        self.assertTrue(message.startswith('%s cannot read the wheel cache %s: %s is not searchable by ' % (
            __import__('pwd').getpwuid(os.getuid()).pw_name, cache, home)), message)
        self.assertIn("or set this host's wheelCache in the deployfile", message)
        self.assertEqual(os.listdir(cache), [good])

    def test_a_damaged_wheel_that_cannot_be_removed_is_named_so(self):
        cache = os.path.join(self.root, 'cache')
        write(os.path.join(cache, 'bad-1.0-py3-none-any.whl'), 'damaged')
        with mock.patch.object(apply_venv.os, 'unlink', side_effect=PermissionError(13, 'Permission denied')):
            corrupt = apply_venv.check_cache(cache, [{'filename': 'bad-1.0-py3-none-any.whl', 'sha256': '0' * 64}])
        self.assertEqual(corrupt, ['bad-1.0-py3-none-any.whl (damaged; removing it failed: Permission denied)'])

    def test_a_pip_too_old_fails_install_saying_what_to_do(self):
        ctx = self.context(fake_venv(os.path.join(self.root, 'v'), [('pip', '7.1.2')]),
                           install={'requirements': '', 'cacheDir': self.root, 'wheels': []})
        os.makedirs(ctx.meta)
        with self.assertRaises(StepFailed):
            apply_venv.install(ctx)
        self.assertEqual(ctx.steps[0]['name'], 'install')
        self.assertTrue(ctx.steps[0]['stderrTail'].startswith('pip 7.1.2 in %s is older than 8.0, which --require-hashes needs' % ctx.venv))

    def test_a_venv_without_pip_fails_install_clearly(self):
        ctx = self.context(fake_venv(os.path.join(self.root, 'v')),
                           install={'requirements': '', 'cacheDir': self.root, 'wheels': []})
        os.makedirs(ctx.meta)
        with self.assertRaises(StepFailed):
            apply_venv.install(ctx)
        self.assertTrue(ctx.steps[0]['stderrTail'].startswith('%s has no pip (' % ctx.venv), ctx.steps[0]['stderrTail'])

    def test_report_names_what_came_from_outside_the_cache(self):
        cache = os.path.join(self.root, 'cache')
        os.makedirs(cache)
        report = os.path.join(self.root, 'report.json')
        spaced = os.path.join(self.root, 'a cache')
        os.makedirs(spaced)
        write(report, json.dumps({'install': [
            {'download_info': {'url': 'file://%s/a-1.0-py3-none-any.whl' % cache}},
            {'download_info': {'url': 'https://pypi.example/b-1.0-py3-none-any.whl'}},
            {'download_info': {'url': 'file://%s/sub/c-1.0-py3-none-any.whl' % cache}},
            {}]}))
        self.assertEqual(apply_venv.foreign_downloads(report, cache), [
            'https://pypi.example/b-1.0-py3-none-any.whl', 'file://%s/sub/c-1.0-py3-none-any.whl' % cache, '?'])
        self.assertTrue(apply_venv.in_cache('file://%s/a%%20cache/d-1.0-py3-none-any.whl' % self.root, spaced))
        write(report, 'not json')
        self.assertTrue(apply_venv.foreign_downloads(report, cache)[0].startswith('(pip report unreadable: '))


class VerifyStep(TempDir):
    def test_differences_compare_as_pep_440(self):
        self.assertEqual(apply_venv.differences({'a': '1.0.0', 'b': '2.0'}, {'a': '1.0', 'b': '2'}, []), [])
        self.assertEqual(apply_venv.differences({'a': '1.0.1', 'old': '3'}, {'a': '1.0', 'new': '1'}, ['old']),
                         ['a 1.0.1 (expected 1.0)', 'new missing (expected 1)', 'old 3 (expected removed)'])

    def test_verify_reads_the_venv(self):
        venv = fake_venv(os.path.join(self.root, 'v'), [('Django', '5.2.0'), ('sqlparse', '0.6.0')])
        apply_venv.verify(self.context(venv, expect={'django': '5.2', 'sqlparse': '0.6.0'}))
        ctx = self.context(venv, expect={'django': '5.1'})
        with self.assertRaises(StepFailed) as caught:
            apply_venv.verify(ctx)
        self.assertEqual(caught.exception.step, 'verify')
        self.assertEqual(ctx.steps[0]['stderrTail'], 'installed set differs from the plan: django 5.2.0 (expected 5.1)')


MANAGE = r'''import sys
args = sys.argv[1:]
if args[:2] == ["showmigrations", "--plan"]:
    print("[X]  auth.0001_initial\n[X]  shop.0001_initial\n[ ]  shop.0002_price")
elif args[:1] == ["migrate"] and len(args) == 2:
    print("Operations to perform:\n  Apply all migrations: auth, shop\nRunning migrations:\n  Applying shop.0002_price... OK")
    sys.exit(int(__import__("os").environ.get("FAIL", "0")))
elif args[:1] == ["migrate"]:
    open(sys.argv[0] + ".unmigrated", "a").write(" ".join(args[1:]) + "\n")
    print("Operations to perform:\n  Target specific migration: ...\nRunning migrations:\n  Unapplying %s.0002_price... OK" % args[1])
'''


class MigrateSteps(TempDir):
    def manage(self, **env):
        path = os.path.join(self.root, 'manage.py')
        write(path, MANAGE)
        return {'argv': [sys.executable, path], 'cwd': self.root, 'env': env, 'run': True}

    def test_parse_applied_and_migrated(self):
        state = apply_venv.parse_applied('[X]  a.0001_x\n[X] b.0001_y\n[ ]  a.0002_z\n[X]  a.0003_w\n')
        self.assertEqual(state, {'a': ['0001_x', '0003_w'], 'b': ['0001_y']})
        after = apply_venv.parse_migrated(state, '  Applying a.0002_z... OK\n  Applying c.0001_n...\n  Applying a.0001_x... OK\n')
        self.assertEqual(after, {'a': ['0001_x', '0003_w', '0002_z'], 'b': ['0001_y'], 'c': ['0001_n']})
        self.assertEqual(state['a'], ['0001_x', '0003_w'])

    def test_migrate_records_before_and_after(self):
        ctx = self.context(self.root, migrate=self.manage())
        apply_venv.migrate(ctx)
        self.assertEqual([s['name'] for s in ctx.steps], ['showmigrations', 'migrate'])
        self.assertEqual(ctx.history['migrationsBefore'], {'auth': ['0001_initial'], 'shop': ['0001_initial']})
        self.assertEqual(ctx.history['migrationsAfter'], {'auth': ['0001_initial'], 'shop': ['0001_initial', '0002_price']})
        # What migrate was about to apply (known after install, before applying), and what it applied.
        self.assertEqual(ctx.steps[0]['pending'], ['shop.0002_price'])
        self.assertEqual(ctx.migrations, {'applied': ['shop.0002_price'], 'unapplied': []})

    def test_parse_pending_and_ran(self):
        self.assertEqual(apply_venv.parse_pending('[X]  a.0001_x\n[ ]  a.0002_z\n [ ] b.0001_y\n'), ['a.0002_z', 'b.0001_y'])
        out = 'Running migrations:\n  Unapplying a.0002_z... OK\n  Unapplying a.0001_x...\n  Applying b.0001_y... OK\n'
        self.assertEqual(apply_venv.parse_ran(out, 'Unapplying'), ['a.0002_z', 'a.0001_x'])
        self.assertEqual(apply_venv.parse_ran(out, 'Applying'), ['b.0001_y'])

    def test_a_failed_migrate_still_records_what_it_applied(self):
        ctx = self.context(self.root, migrate=self.manage(FAIL='1'))
        with self.assertRaises(StepFailed) as caught:
            apply_venv.migrate(ctx)
        self.assertEqual(caught.exception.step, 'migrate')
        self.assertEqual(ctx.history['migrationsAfter']['shop'], ['0001_initial', '0002_price'])

    def test_migrate_off_runs_nothing_and_unmigrate_runs_each_target(self):
        mig = dict(self.manage(), run=False)
        ctx = self.context(self.root, migrate=mig, unmigrate=[{'app': 'shop', 'to': '0001_initial'}, {'app': 'auth', 'to': 'zero'}])
        apply_venv.migrate(ctx)
        self.assertEqual(ctx.steps, [])
        apply_venv.unmigrate(ctx)
        with open(os.path.join(self.root, 'manage.py.unmigrated')) as f:
            self.assertEqual(f.read(), 'shop 0001_initial --noinput\nauth zero --noinput\n')
        self.assertEqual(ctx.migrations['unapplied'], ['shop.0002_price', 'auth.0002_price'])


class Health(TempDir):
    def hc(self, **over):
        hc = {'expectStatus': 200, 'timeout': 5, 'retries': 2, 'interval': 0.5}
        hc.update(over)
        return hc

    def test_a_command_is_retried_until_it_passes(self):
        counter = os.path.join(self.root, 'n')
        command = 'echo x >> n; [ $(wc -l < n) -ge 3 ]'
        slept = []
        self.assertEqual(apply_venv.probe_health(self.hc(command=command), self.root, slept.append)[:2], (True, 3))
        self.assertEqual(slept, [0.5, 0.5])
        os.unlink(counter)
        ok, attempts, last = apply_venv.probe_health(self.hc(command=command, retries=1), self.root, slept.append)
        self.assertEqual((ok, attempts, last), (False, 2, 'exit 1: '))

    def test_the_step_says_how_often_it_failed(self):
        ctx = self.context(self.root, healthcheck=self.hc(command='echo down >&2; exit 3', retries=1))
        with self.assertRaises(StepFailed):
            apply_venv.healthcheck(ctx)
        self.assertEqual(ctx.steps[0]['stderrTail'], 'failed 2 times: exit 3: down')
        self.assertEqual(ctx.steps[0]['exitCode'], 1)

    def test_a_command_that_hangs_times_out(self):
        self.assertEqual(apply_venv.check_command('sleep 5', self.root, 0.2), (False, 'timed out after 0.2s'))

    def test_a_url_must_answer_the_expected_status(self):
        url = self.serve([(500, ''), (200, '')])
        self.assertEqual(apply_venv.check_url(url, 200, 5), (False, '%s answered 500 (expected 200)' % url))
        self.assertEqual(apply_venv.probe_health(self.hc(url=url), self.root, lambda s: None)[:2], (True, 1))
        ok, last = apply_venv.check_url('http://127.0.0.1:1/', 200, 5)
        self.assertFalse(ok)
        self.assertTrue(last.startswith('http://127.0.0.1:1/: '))

    def serve(self, answers):
        """A local server answering each GET with the next (status, body) of `answers` (the last one repeats)."""
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                status, body = answers.pop(0) if len(answers) > 1 else answers[0]
                self.send_response(status)
                self.end_headers()
                self.wfile.write(body.encode('utf-8'))

            def log_message(self, *args):
                pass

        server = http.server.HTTPServer(('127.0.0.1', 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return 'http://127.0.0.1:%d/health' % server.server_address[1]

    def test_an_expected_body_is_polled_for_until_the_new_code_answers(self):
        # The old worker answers first (200, old version): that must not pass.
        url = self.serve([(200, 'app 1.0'), (200, 'app 1.0'), (200, 'app 1.1')])
        slept = []
        hc = self.hc(url=url, expectBody='app 1.1', retries=5, settle=1.5)
        ok, attempts, last = apply_venv.probe_health(hc, self.root, slept.append)
        self.assertEqual((ok, attempts), (True, 3))
        self.assertEqual(slept, [1.5, 0.5, 0.5])
        self.assertEqual(last, "%s answered 200 with 'app 1.1'" % url)

    def test_a_body_without_the_expected_text_fails_and_says_what_it_began_with(self):
        url = self.serve([(200, 'app 1.0')])
        self.assertEqual(apply_venv.check_url(url, 200, 5, 'app 1.1'),
                         (False, "%s answered 200 without 'app 1.1' in its body (it began 'app 1.0')" % url))
        # The status comes first: a 500 naming the new version is still a failure.
        url = self.serve([(500, 'app 1.1')])
        self.assertEqual(apply_venv.check_url(url, 200, 5, 'app 1.1'), (False, '%s answered 500 (expected 200)' % url))
        # An error status may be what is expected, body and all.
        self.assertEqual(apply_venv.check_url(url, 500, 5, 'app 1.1')[0], True)


class Stashes(TempDir):
    def test_pips_stash_folders_are_removed_and_recorded(self):
        venv = fake_venv(os.path.join(self.root, 'v'), [('Django', '5.0')])
        site = os.path.join(venv, 'lib', 'python' + XY, 'site-packages')
        write(os.path.join(site, '~jango', '__init__.py'), '')
        write(os.path.join(site, '~jango-5.0.dist-info', 'METADATA'), 'Name: Django\nVersion: 4.0\n\n')
        answer = apply_venv.apply(self.context(venv, expect={'django': '5.0'}))
        self.assertEqual(answer['outcome'], 'deployed')
        self.assertEqual(sorted(os.listdir(site)), ['Django-5.0.dist-info'])
        self.assertEqual(apply_venv.venv_facts.read_history(venv)[0]['removedStashes'],
                         [os.path.join(site, '~jango'), os.path.join(site, '~jango-5.0.dist-info')])


class WholeApply(TempDir):
    def test_steps_in_order_then_the_record(self):
        venv = fake_venv(os.path.join(self.root, 'v'), [('tiny', '1.0.0')])
        marker = os.path.join(self.root, 'reloaded')
        ctx = self.context(venv, expect={'tiny': '1.0'}, reload='touch %s' % marker,
                           healthcheck={'command': 'test -f %s' % marker, 'expectStatus': 200, 'timeout': 5, 'retries': 0, 'interval': 0})
        answer = apply_venv.apply(ctx)
        self.assertEqual((answer['outcome'], answer['failedStep']), ('deployed', None))
        self.assertEqual([s['name'] for s in answer['steps']], ['reload', 'healthcheck'])
        self.assertEqual(answer['before'], {'tiny': '1.0.0'})
        self.assertEqual(answer['installed'], {'tiny': '1.0.0'})
        support.check_contract('apply_venv.answer', dict(answer, v=1))
        with open(os.path.join(venv, '.vdeploy', 'history.jsonl'), encoding='utf-8') as f:
            record = json.loads(f.read())
        self.assertEqual(record['action'], 'deploy')
        self.assertEqual(record['outcome'], 'deployed')
        self.assertEqual(record['after'], {'tiny': '1.0.0'})
        self.assertEqual(len(record['steps']), 2)
        self.assertRegex(record['finishedAt'], r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')

    def test_the_first_failed_step_stops_the_apply_and_is_recorded(self):
        venv = fake_venv(os.path.join(self.root, 'v'))
        marker = os.path.join(self.root, 'reloaded')
        answer = apply_venv.apply(self.context(venv, expect={'tiny': '1.0'}, reload='touch %s' % marker))
        self.assertEqual((answer['outcome'], answer['failedStep']), ('failed', 'verify'))
        self.assertFalse(os.path.exists(marker))
        self.assertEqual(len(apply_venv.venv_facts.read_history(venv)), 1)

    def test_a_stop_ends_the_apply_after_the_running_step(self):
        venv = fake_venv(os.path.join(self.root, 'v'))
        ctx = self.context(venv, reload='true')

        def stopped(ctx):
            ctx.interrupted.append(15)

        answer = apply_venv.apply(ctx, steps=((stopped, True), (apply_venv.reload, False)))
        self.assertEqual((answer['outcome'], answer['failedStep'], answer['steps']), ('interrupted', None, []))
        self.assertEqual(apply_venv.venv_facts.read_history(venv)[0]['outcome'], 'interrupted')


def run_main(req, extra_input=b''):
    argv, prefix = protocol.child_command('apply_venv')
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(prefix + (json.dumps(req).encode() if req is not None else b'') + extra_input)
    return proc.returncode, out.decode(), err.decode()


def run_checked(test, req):
    """run_main with both sides of the contract checked and exit 0 asserted; the answer, parsed."""
    support.check_contract('apply_venv.request', req)
    code, out, err = run_main(req)
    test.assertEqual(code, 0, err)
    answer = json.loads(out)
    support.check_contract('apply_venv.answer', answer)
    return answer


class Hold(TempDir):
    """holdBeforeReload: apply_venv (main, in a child, as host_apply starts it) reads its request as the
    first line of stdin, says it holds right before its reload, and waits for "go" (or stdin's end)."""

    def start(self, req):
        argv, prefix = protocol.child_command('apply_venv')
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.stdout.close)
        self.addCleanup(proc.stderr.close)
        self.addCleanup(proc.stdin.close)  # (first) a test that failed while it holds: its end means go
        support.check_contract('apply_venv.request', req)
        proc.stdin.write(prefix + json.dumps(req).encode() + b'\n')
        proc.stdin.flush()
        return proc

    def held(self, proc, seconds=60):
        """Reads stderr (unbuffered: select must see what is left) up to the hold line, failing after `seconds`."""
        deadline, text = time.time() + seconds, b''
        while time.time() < deadline:
            if select.select([proc.stderr], [], [], 1)[0]:
                chunk = os.read(proc.stderr.fileno(), 65536)
                self.assertTrue(chunk, 'stderr ended before the hold: %r' % text)
                text += chunk
                for line in text.decode().splitlines():
                    if line.startswith('@vdeploy ') and json.loads(line[len('@vdeploy '):]).get('phase') == 'hold':
                        progress = json.loads(line[len('@vdeploy '):])
                        support.check_contract('host_apply.progress', dict(progress, venv=0))
                        return progress
        self.fail('no hold line in %ds: %r' % (seconds, text))

    def held_request(self, log):
        venv = fake_venv(os.path.join(self.root, 'v'))
        hc = {'command': 'grep -q reload %s' % log, 'expectStatus': 200, 'timeout': 10, 'retries': 0, 'interval': 0, 'settle': 0}
        return request(venv, reload='echo reload >> %s' % log, healthcheck=hc, holdBeforeReload=True)

    def finish(self, proc):
        out = proc.stdout.read().decode()
        self.assertEqual(proc.wait(), 0)
        answer = json.loads(out)
        support.check_contract('apply_venv.answer', answer)
        return answer

    def test_holds_before_the_reload_until_go(self):
        log = os.path.join(self.root, 'log')
        proc = self.start(self.held_request(log))
        self.assertEqual(self.held(proc), {'step': 'reload', 'phase': 'hold'})
        time.sleep(0.2)  # a moment in which it must not go on by itself
        self.assertEqual((proc.poll(), os.path.exists(log)), (None, False))
        write(log, 'files\n')  # what host_apply's files would do meanwhile
        proc.stdin.write(b'go\n')
        proc.stdin.flush()
        answer = self.finish(proc)
        proc.stdin.close()
        self.assertEqual((answer['outcome'], [s['name'] for s in answer['steps']]), ('deployed', ['reload', 'healthcheck']), answer)
        with open(log) as f:
            self.assertEqual(f.read(), 'files\nreload\n')
        self.assertEqual(apply_venv.venv_facts.read_history(os.path.join(self.root, 'v'))[-1]['outcome'], 'deployed')

    def test_the_end_of_stdin_means_go(self):
        log = os.path.join(self.root, 'log')
        proc = self.start(self.held_request(log))
        self.held(proc)
        proc.stdin.close()
        answer = self.finish(proc)
        self.assertEqual(answer['outcome'], 'deployed', answer)
        self.assertTrue(os.path.exists(log))

    def test_a_failure_before_the_hold_never_holds(self):
        venv = fake_venv(os.path.join(self.root, 'v'))
        code, out, err = run_main(request(venv, expect={'tiny': '1.0'}, reload='true', holdBeforeReload=True))
        self.assertEqual((code, json.loads(out)['failedStep']), (0, 'verify'))
        self.assertNotIn('"hold"', err)

    def test_without_the_flag_nothing_holds(self):
        venv = fake_venv(os.path.join(self.root, 'v'))
        code, out, err = run_main(request(venv, reload='true'))
        self.assertEqual((code, json.loads(out)['outcome']), (0, 'deployed'))
        self.assertNotIn('"hold"', err)

    def test_the_hold_comes_right_after_migrate_and_before_the_reload(self):
        names = [step.__name__ for step, _ in apply_venv.STEPS]
        self.assertEqual(names[names.index('migrate'):], ['migrate', 'hold', 'reload', 'healthcheck'])


class Main(TempDir):
    """main() in a child process, on a real venv this Python makes (with its own bundled pip)."""

    def test_create_install_prune_verify_record(self):
        cache = os.path.join(self.root, 'wheel cache')
        os.makedirs(cache)
        tiny, tiny_sha = build_wheel(cache, 'tiny', '1.0.0')
        venv = os.path.join(self.root, 'srv', 'venv')
        marker = os.path.join(self.root, 'reloaded')
        req = request(venv, create={'python': sys.executable}, install={
            'requirements': 'tiny==1.0 --hash=sha256:%s\n' % tiny_sha, 'cacheDir': cache,
            'wheels': [{'filename': tiny, 'sha256': tiny_sha}]}, expect={'tiny': '1.0'}, reload='touch "%s"' % marker)
        support.check_contract('apply_venv.request', req)
        code, out, err = run_main(req)
        self.assertEqual(code, 0, err)
        answer = json.loads(out)
        support.check_contract('apply_venv.answer', answer)
        self.assertEqual((answer['v'], answer['outcome'], answer['failedStep']), (1, 'deployed', None), answer)
        self.assertEqual([s['name'] for s in answer['steps']], ['create', 'install', 'reload'])
        self.assertEqual(answer['before'], {})
        self.assertEqual(answer['installed']['tiny'], '1.0.0')
        install = answer['steps'][1]
        pip = apply_venv.venv_facts.installed_versions(venv)['pip']
        self.assertEqual(install['pip'], pip)
        self.assertEqual(install['provenance'], 'report' if apply_venv.has_report(pip) else 'hashes')
        self.assertEqual(os.path.exists(os.path.join(venv, '.vdeploy', 'pip-report.json')), install['provenance'] == 'report')
        self.assertTrue(os.path.exists(marker))
        progress = [json.loads(line[len('@vdeploy '):]) for line in err.splitlines() if line.startswith('@vdeploy ')]
        self.assertEqual(progress[:2], [{'step': 'create', 'phase': 'start'}, {'step': 'create', 'phase': 'end'}])
        for p in progress:
            support.check_contract('host_apply.progress', dict(p, venv=0))

        # Again: a prune with the venv's real pip; the lock was released when the first apply ended.
        code, out, err = run_main(request(venv, uninstall=['tiny'], uninstallKeys=['tiny']))
        answer = json.loads(out)
        self.assertEqual((answer['outcome'], [s['name'] for s in answer['steps']]), ('deployed', ['prune']), err)
        self.assertNotIn('tiny', answer['installed'])
        self.assertEqual([h['outcome'] for h in apply_venv.venv_facts.read_history(venv)], ['deployed', 'deployed'])

    def test_a_request_of_another_protocol_is_answered_as_a_failure(self):
        code, out, _ = run_main(dict(request(os.path.join(self.root, 'v')), v=99))
        answer = json.loads(out)
        self.assertEqual(code, 0)
        self.assertEqual((answer['outcome'], answer['failedStep']), ('failed', 'request'))
        self.assertIn('protocol 99', answer['error'])
        support.check_contract('apply_venv.answer', answer)
        self.assertFalse(os.path.exists(os.path.join(self.root, 'v')))
