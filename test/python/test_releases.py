"""vdeploy_remote.releases (the releases layout's pure helpers, on temporary directories) and
release_steps end to end: main() in a child process, as host_apply starts it, on an app root whose
releases are real venvs made by this Python — a fresh release, an upgrade (hardlink clone +
relocate + install from a local wheel directory with pinned hashes), migrate only, a rollback by
switch, and the failures before and after the switch."""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest
from unittest import mock

import support
from test_apply_venv import build_wheel, request, run_checked, write
from vdeploy_remote import host_apply, protocol, release_steps, releases, venv_facts

ID1, ID2, ID3 = '20261203T100000Z-0001', '20261203T100100Z-0002', '20261203T100200Z-0003'


def fake_release(root, release_id):
    """A release directory as the helpers see it (a venv's pyvenv.cfg and bin/)."""
    path = releases.release_path(root, release_id)
    write(os.path.join(path, 'pyvenv.cfg'), 'home = /usr/bin\n')
    write(os.path.join(path, 'bin', 'python'), '#!/bin/sh\n', 0o755)
    return path


def deployed(release_id, previous=None, **over):
    entry = {'action': 'deploy', 'outcome': 'deployed', 'release': release_id, 'previousRelease': previous}
    entry.update(over)
    return entry


class Temp(unittest.TestCase):
    def setUp(self):
        self.root = os.path.realpath(tempfile.mkdtemp(prefix='vdeploy-test-releases-'))
        self.addCleanup(shutil.rmtree, self.root, True)


class Ids(unittest.TestCase):
    def test_new_id_is_the_utc_time_and_the_next_history_number(self):
        self.assertEqual(releases.new_id(6, 0), '19700101T000000Z-0007')
        self.assertTrue(releases.ID.match(releases.new_id(0)))

    def test_ids_made_in_one_second_are_unique_and_in_deploy_order(self):
        ids = [releases.new_id(n, 1764756000) for n in range(12)]
        self.assertEqual(len(set(ids)), 12)
        self.assertEqual([releases.number(i) for i in ids], list(range(1, 13)))
        self.assertEqual(releases.number('not-an-id'), 0)


class Listing(Temp):
    def test_no_releases_directory_is_an_empty_list(self):
        self.assertEqual(releases.list_releases(self.root), [])

    def test_ordered_by_number_not_by_time_or_text(self):
        # A host clock that went back, and numbers past four digits, still sort in deploy order.
        names = ['20261203T100000Z-0002', '20261203T090000Z-0003', '20261201T000000Z-10000', '20261203T110000Z-0001',
                 '20261203T100000Z-9999']
        for n in names:
            fake_release(self.root, n)
        os.makedirs(os.path.join(releases.releases_dir(self.root), 'not-a-release'))
        write(os.path.join(releases.releases_dir(self.root), '20261203T100000Z-0005'), 'a file, not a release')
        self.assertEqual(releases.list_releases(self.root), [
            '20261203T110000Z-0001', '20261203T100000Z-0002', '20261203T090000Z-0003', '20261203T100000Z-9999',
            '20261201T000000Z-10000'])


class Live(Temp):
    def test_a_relative_link_to_a_release_is_live(self):
        self.assertIsNone(releases.live(self.root))
        fake_release(self.root, ID1)
        os.symlink('releases/' + ID1, releases.current_link(self.root))
        self.assertEqual(releases.live(self.root), ID1)

    def test_absolute_foreign_and_dangling_links_are_not(self):
        link = releases.current_link(self.root)
        absolute = fake_release(self.root, ID1)
        for target in (absolute, '/usr', 'releases/' + ID2, 'releases/not-an-id', 'elsewhere/' + ID1):
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(target, link)
            self.assertIsNone(releases.live(self.root), target)


class History(unittest.TestCase):
    def test_successful_is_what_a_deployed_line_named(self):
        history = [deployed(ID1), dict(deployed(ID2), outcome='failed'), {'outcome': 'deployed'}, deployed(ID3, ID1)]
        self.assertEqual(releases.successful(history), set([ID1, ID3]))

    def test_rollback_release_is_the_one_before_the_newest_deploy_no_rollback_undid(self):
        self.assertIsNone(releases.rollback_release([]))
        history = [deployed(ID1), deployed(ID2, ID1)]
        self.assertEqual(releases.rollback_release(history), ID1)
        history.append(dict(deployed(ID2, ID1), outcome='failed'))  # a failed deploy changes nothing
        self.assertEqual(releases.rollback_release(history), ID1)
        # deploy, deploy, rollback (undoing #2): a further rollback would undo #1, to what was before it.
        undo = dict(deployed(ID1, ID2), action='rollback', undoes=2)
        self.assertIsNone(releases.rollback_release(history + [undo]))
        three = [deployed(ID1), deployed(ID2, ID1), deployed(ID3, ID2), dict(deployed(ID2, ID3), action='rollback', undoes=3)]
        self.assertEqual(releases.rollback_release(three), ID1)
        # A rollback that failed undid nothing.
        self.assertEqual(releases.rollback_release(three[:3] + [dict(three[3], outcome='failed')]), ID2)


class Switch(Temp):
    def test_switch_replaces_the_link_and_leaves_no_temporary_link(self):
        for r in (ID1, ID2):
            fake_release(self.root, r)
        releases.switch(self.root, ID1)
        self.assertEqual(os.readlink(releases.current_link(self.root)), 'releases/' + ID1)
        releases.switch(self.root, ID2)
        self.assertEqual(os.readlink(releases.current_link(self.root)), 'releases/' + ID2)
        self.assertEqual(sorted(os.listdir(self.root)), ['current', 'releases'])

    def test_a_stale_temporary_link_of_this_pid_is_replaced_and_others_are_swept(self):
        fake_release(self.root, ID1)
        mine = os.path.join(self.root, '.current.%d.tmp' % os.getpid())
        other = os.path.join(self.root, '.current.99999999.tmp')
        os.symlink('nowhere', mine)
        os.symlink('nowhere', other)
        releases.switch(self.root, ID1)
        self.assertFalse(os.path.lexists(mine))
        self.assertEqual(releases.live(self.root), ID1)
        releases.remove_stale_links(self.root)
        self.assertEqual(sorted(os.listdir(self.root)), ['current', 'releases'])

    def test_a_failed_rename_removes_the_temporary_link_and_keeps_current(self):
        for r in (ID1, ID2):
            fake_release(self.root, r)
        releases.switch(self.root, ID1)
        with mock.patch.object(releases.os, 'replace', side_effect=OSError(28, 'No space left on device')):
            with self.assertRaises(OSError):
                releases.switch(self.root, ID2)
        self.assertEqual(releases.live(self.root), ID1)
        self.assertEqual(sorted(os.listdir(self.root)), ['current', 'releases'])

    def test_no_moment_without_current_while_switching(self):
        # A reader in another thread (os calls release the GIL) never finds `current` missing.
        for r in (ID1, ID2):
            fake_release(self.root, r)
        releases.switch(self.root, ID1)
        cfg = os.path.join(releases.current_link(self.root), 'pyvenv.cfg')
        done, seen = [], {'reads': 0, 'missing': 0}

        def read():
            while not done:
                try:
                    with open(cfg) as f:
                        f.read()
                    os.stat(os.path.join(releases.current_link(self.root), 'bin', 'python'))
                except OSError:
                    seen['missing'] += 1
                seen['reads'] += 1

        reader = threading.Thread(target=read)
        reader.start()
        try:
            for i in range(400):
                releases.switch(self.root, (ID1, ID2)[i % 2])
        finally:
            done.append(True)
            reader.join()
        self.assertGreater(seen['reads'], 0)
        self.assertEqual(seen['missing'], 0)


class SweepAndCleanUp(Temp):
    def test_sweep_removes_unfinished_releases_but_never_the_live_one(self):
        for r in (ID1, ID2, ID3, '20261203T100300Z-0004'):
            fake_release(self.root, r)
        history = [deployed(ID1), dict(deployed(ID2, ID1), outcome='failed')]
        # ID3 is live though no history line names it (a switch whose record was lost): kept.
        removed = releases.sweep(self.root, history, ID3)
        self.assertEqual([(r['id'], r['why']) for r in removed], [(ID2, 'unfinished'), ('20261203T100300Z-0004', 'unfinished')])
        self.assertTrue(all(isinstance(r['bytes'], int) and r['bytes'] > 0 for r in removed))
        self.assertEqual(releases.list_releases(self.root), [ID1, ID3])

    def test_clean_up_keeps_the_newest_successful_the_live_and_the_rollback_target(self):
        ids = ['20261203T1000%02dZ-%04d' % (n, n) for n in range(1, 9)]
        for r in ids:
            fake_release(self.root, r)
        # 1..6 deployed; a rollback (#7) made 3 live again, undoing #6 (so a further rollback goes
        # to what #5 replaced: 4); 8 is unfinished (sweep's, never clean_up's).
        history = [deployed(ids[n], ids[n - 1] if n else None) for n in range(6)]
        history.append(dict(deployed(ids[2], ids[5]), action='rollback', undoes=6))
        self.assertEqual(releases.rollback_release(history), ids[3])
        removed = releases.clean_up(self.root, history, ids[2], 2)
        self.assertEqual([(r['id'], r['why']) for r in removed], [(ids[0], 'beyond keep'), (ids[1], 'beyond keep')])
        self.assertEqual(releases.list_releases(self.root), ids[2:])
        self.assertEqual(releases.clean_up(self.root, history, ids[2], 2), [])


class SizesAndClones(Temp):
    def tree(self):
        src = os.path.join(self.root, 'a')
        write(os.path.join(src, 'bin', 'script'), '#!/bin/sh\n', 0o755)
        with open(os.path.join(src, 'big'), 'wb') as f:
            f.write(os.urandom(200000))
        os.symlink('big', os.path.join(src, 'link'))
        return src

    def test_tree_bytes_counts_each_inode_once_and_own_excludes_shared_files(self):
        src = self.tree()
        total, own = releases.tree_bytes(src)
        self.assertGreaterEqual(total, 200000)
        self.assertEqual(own, total)
        os.link(os.path.join(src, 'big'), os.path.join(src, 'big2'))  # twice in one tree: counted once
        self.assertEqual(releases.tree_bytes(src)[0], total)
        self.assertLess(releases.tree_bytes(src)[1], 200000)  # a file with two links is not counted as own
        os.unlink(os.path.join(src, 'big2'))
        ok, out = releases.clone(src, os.path.join(self.root, 'releases', 'b'), True)
        self.assertTrue(ok, out)
        total_b, own_b = releases.tree_bytes(os.path.join(self.root, 'releases', 'b'))
        self.assertEqual(total_b, total)
        self.assertLess(own_b, 200000)
        self.assertLess(releases.tree_bytes(src)[1], 200000)
        removed = releases.remove(self.root, 'b', 'beyond keep')
        self.assertEqual(removed, {'id': 'b', 'bytes': own_b, 'why': 'beyond keep'})
        self.assertEqual(releases.tree_bytes(src), (total, total))

    def test_clone_by_hardlinks_shares_inodes_and_a_copy_does_not(self):
        src = self.tree()
        linked, copied = os.path.join(self.root, 'r', 'linked'), os.path.join(self.root, 'r', 'copied')
        self.assertTrue(releases.clone(src, linked, True)[0])
        self.assertTrue(releases.clone(src, copied, False)[0])
        ino = lambda p, name: os.lstat(os.path.join(p, name)).st_ino
        self.assertEqual(ino(linked, 'big'), ino(src, 'big'))
        self.assertNotEqual(ino(copied, 'big'), ino(src, 'big'))
        for target in (linked, copied):
            self.assertEqual(os.readlink(os.path.join(target, 'link')), 'big')
            self.assertTrue(os.access(os.path.join(target, 'bin', 'script'), os.X_OK))
            with open(os.path.join(target, 'big'), 'rb') as a, open(os.path.join(src, 'big'), 'rb') as b:
                self.assertEqual(a.read(), b.read())

    def test_a_failed_clone_says_why_and_leaves_nothing(self):
        target = os.path.join(self.root, 'r', 'x')
        ok, out = releases.clone(os.path.join(self.root, 'missing'), target, True)
        self.assertFalse(ok)
        self.assertIn('missing', out)
        self.assertFalse(os.path.lexists(target))


class Stop(Temp):
    """A stop (Ctrl-C, a vdeploy gone) during a release's build: the apply ends before its switch."""

    def test_host_apply_forwards_a_stop_to_a_releases_apply_as_sigterm(self):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        child = subprocess.Popen([sys.executable, '-c', 'import signal, sys, time\n'
                                  'signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n'
                                  'print("ready", flush=True)\ntime.sleep(60)\n'], stdout=subprocess.PIPE)
        self.addCleanup(child.stdout.close)
        self.assertEqual(child.stdout.readline(), b'ready\n')
        ended = threading.Event()
        forwarder = threading.Thread(target=host_apply.forward_stop, args=(child, host_apply.Control(r), ended))
        forwarder.start()
        os.write(w, b'stop\n')
        self.assertEqual(child.wait(60), 7)
        ended.set()
        forwarder.join()
        # An apply that ends by itself is left alone, and the forwarder ends with it.
        quiet = threading.Thread(target=host_apply.forward_stop, args=(child, host_apply.Control(r), ended))
        quiet.start()
        quiet.join(5)
        self.assertFalse(quiet.is_alive())

    def stopped_during(self, name, **over):
        """A fresh release's apply (a stub Python) that gets its stop while step `name` runs; the answer."""
        stub = os.path.join(self.root, 'python-stub')
        write(stub, '#!/bin/sh\nmkdir -p "$3/bin"; echo "home = /x" > "$3/pyvenv.cfg"\n', 0o755)
        app = os.path.join(self.root, 'app')
        ctx = release_steps.ReleaseApply(request(app, create={'python': stub}, releases={'keep': 5, 'switchTo': None, 'switchBack': True},
                                                 **over), sleep=lambda s: None)
        self.addCleanup(ctx.close)

        def stop_during(step):
            def run(ctx):
                step(ctx)
                ctx.interrupted.append(15)  # the SIGTERM forward_stop sends
            return run

        steps = tuple((stop_during(step) if step.__name__ == name else step, may_stop) for step, may_stop in release_steps.STEPS)
        with mock.patch.object(release_steps, 'STEPS', steps), mock.patch.object(protocol, 'progress', lambda obj: None):
            return release_steps.apply(ctx)

    def test_once_migrate_or_unmigrate_ran_a_stop_lets_the_release_go_live(self):
        manage = os.path.join(self.root, 'manage.py')
        manage_script(manage, os.path.join(self.root, 'manage.log'))
        migrate = {'argv': [sys.executable, manage], 'cwd': self.root, 'env': {}, 'run': True}
        answer = self.stopped_during('migrate', migrate=migrate)
        self.assertEqual(answer['outcome'], 'deployed')
        self.assertEqual(answer['release']['live'], answer['release']['id'])
        shutil.rmtree(os.path.join(self.root, 'app'))
        answer = self.stopped_during('unmigrate', migrate=dict(migrate, run=False), unmigrate=[{'app': 'shop', 'to': 'zero'}])
        self.assertEqual(answer['outcome'], 'deployed')
        self.assertEqual([s['name'] for s in answer['steps']], ['unmigrate', 'create', 'switch'])

    def test_an_interrupted_build_removes_its_release_as_unfinished_and_never_switches(self):
        app = os.path.join(self.root, 'app')
        answer = self.stopped_during('build')
        self.assertEqual((answer['outcome'], [s['name'] for s in answer['steps']]), ('interrupted', ['create']))
        self.assertEqual([r['why'] for r in answer['release']['removed']], ['unfinished'])
        self.assertEqual((answer['release']['live'], releases.list_releases(app)), (None, []))
        self.assertFalse(os.path.lexists(releases.current_link(app)))
        self.assertEqual(venv_facts.read_history(app)[-1]['outcome'], 'interrupted')
        support.check_contract('apply_venv.answer', dict(answer, v=1))


class Hold(Temp):
    """holdBeforeReload in the releases layout: the hold comes after the switch, before the reload."""

    def test_the_hold_is_after_the_switch_and_before_the_reload_then_the_apply_goes_on(self):
        stub = os.path.join(self.root, 'python-stub')
        write(stub, '#!/bin/sh\nmkdir -p "$3/bin"; echo "home = /x" > "$3/pyvenv.cfg"\n', 0o755)
        app, log = os.path.join(self.root, 'app'), os.path.join(self.root, 'log')
        hc = {'command': 'grep -q reload %s' % log, 'expectStatus': 200, 'timeout': 10, 'retries': 0, 'interval': 0, 'settle': 0}
        ctx = release_steps.ReleaseApply(request(app, create={'python': stub}, releases={'keep': 5, 'switchTo': None, 'switchBack': True},
                                                 reload='echo reload >> %s' % log, healthcheck=hc, holdBeforeReload=True),
                                         sleep=lambda s: None)
        self.addCleanup(ctx.close)
        seen, progress = [], []

        class Go(object):
            def read_line(self, wait):
                # What the host's files would see while the venv waits: the new release live, no reload yet.
                seen.append((releases.live(app), os.path.exists(log)))
                write(log, 'files\n')
                return 'go'

        ctx.control = Go()
        with mock.patch.object(protocol, 'progress', progress.append):
            answer = release_steps.apply(ctx)
        self.assertEqual((answer['outcome'], [s['name'] for s in answer['steps']]), ('deployed', ['create', 'switch', 'reload', 'healthcheck']), answer)
        self.assertEqual(seen, [(answer['release']['id'], False)])
        self.assertIn({'step': 'reload', 'phase': 'hold'}, progress)
        with open(log) as f:
            self.assertEqual(f.read(), 'files\nreload\n')
        names = [step.__name__ for step, _ in release_steps.STEPS]
        self.assertEqual(names[names.index('switch'):], ['switch', 'hold', 'reload_current', 'healthcheck'])


def manage_script(path, log):
    """A stand-in for manage.py: records which Python ran it (sys.prefix) and answers like Django."""
    write(path, 'import sys\nopen(%r, "a").write(sys.prefix + " " + " ".join(sys.argv[1:]) + "\\n")\n'
                'print("[X]  shop.0001_initial")\n' % log)


# Each Main test makes real venvs (ensurepip: seconds apiece) and relocates clones: run where the
# code paths differ (3.6: pip 18.1 and compileall's bytecode; 3.8: the first .pyc rewrite; the newest;
# Debian's python3, the test hosts' own), not under all nine; the rest of this file runs under all.
REPRESENTATIVE = sys.version_info[:2] in ((3, 6), (3, 8), (3, 13)) or os.path.realpath(sys.executable).startswith('/usr/bin/')


@unittest.skipUnless(REPRESENTATIVE or os.environ.get('VDEPLOY_ALL_PYTHONS'), 'end to end under 3.6, 3.8, 3.13 and /usr/bin/python3 only')
class Main(Temp):
    """release_steps through apply_venv.main in a child process, on real venvs this Python makes."""

    def setUp(self):
        Temp.setUp(self)
        self.app = os.path.join(self.root, 'srv', 'app')
        self.cache = os.path.join(self.root, 'wheel cache')
        os.makedirs(self.cache)
        self.wheels = {}

    def wheel(self, version):
        if version not in self.wheels:
            self.wheels[version] = build_wheel(self.cache, 'tiny', version)
        return self.wheels[version]

    def apply(self, version=None, create=False, releases_over=None, **over):
        req = request(self.app, history={'time': '2026-01-01T00:00:00.000Z', 'action': 'deploy'},
                      releases=dict({'keep': 5, 'switchTo': None, 'switchBack': True}, **(releases_over or {})))
        if create:
            req['create'] = {'python': sys.executable}
        if version:
            name, sha = self.wheel(version)
            req.update(install={'requirements': 'tiny==%s --hash=sha256:%s\n' % (version, sha), 'cacheDir': self.cache,
                                'wheels': [{'filename': name, 'sha256': sha}]}, expect={'tiny': version})
        req.update(over)
        return run_checked(self, req)

    def tiny_through_current(self):
        p = subprocess.Popen([os.path.join(self.app, 'current', 'bin', 'python'), '-c', 'import tiny; print(tiny.__version__)'],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return p.communicate()[0].decode().strip()

    def history(self):
        return venv_facts.read_history(self.app)

    def test_fresh_upgrade_migrate_only_and_rollback_by_switch(self):
        first = self.apply('1.0', create=True)
        self.assertEqual((first['outcome'], [s['name'] for s in first['steps']]), ('deployed', ['create', 'install', 'switch']), first)
        r1 = first['release']['id']
        self.assertEqual((first['release']['live'], first['release']['previous'], first['release']['removed']), (r1, None, []))
        self.assertEqual(releases.live(self.app), r1)
        self.assertEqual(self.tiny_through_current(), '1.0')

        # The upgrade: a clone of the live release beside it, relocated, the difference installed; the
        # migration runs with the NEW release's Python though its argv names `current`.
        log = os.path.join(self.root, 'manage.log')
        manage_script(os.path.join(self.root, 'manage.py'), log)
        migrate = {'argv': [os.path.join(self.app, 'current', 'bin', 'python'), os.path.join(self.root, 'manage.py')],
                   'cwd': self.root, 'env': {}, 'run': True}
        second = self.apply('1.1', migrate=migrate)
        steps = [s['name'] for s in second['steps']]
        self.assertEqual((second['outcome'], steps), ('deployed', ['clone', 'relocate', 'install', 'showmigrations', 'migrate', 'switch']), second)
        self.assertEqual(second['steps'][0]['how'], 'hardlinks')
        r2 = second['release']['id']
        self.assertEqual((second['release']['live'], second['release']['previous']), (r2, r1))
        self.assertGreater(releases.number(r2), releases.number(r1))
        self.assertEqual(releases.list_releases(self.app), [r1, r2])
        self.assertEqual(self.tiny_through_current(), '1.1')
        self.assertEqual(venv_facts.installed_versions(releases.release_path(self.app, r1))['tiny'], '1.0')
        with open(log) as f:
            prefixes = set(line.split()[0] for line in f)
        self.assertEqual(prefixes, set([releases.release_path(self.app, r2)]))
        # The clone carries the new path, not the live release's, in its scripts and pyvenv.cfg.
        pip_script = os.path.join(releases.release_path(self.app, r2), 'bin', 'pip')
        with open(pip_script) as f:
            self.assertIn(releases.release_path(self.app, r2), f.readline())
        self.assertLess(second['release']['ownBytes'], second['release']['bytes'])
        self.assertEqual(self.history()[-1]['release'], r2)
        self.assertEqual(self.history()[-1]['previousRelease'], r1)

        # Migrate only: nothing built; the live release is the one migrated.
        os.unlink(log)
        third = self.apply(migrate=migrate)
        self.assertEqual((third['outcome'], [s['name'] for s in third['steps']]), ('deployed', ['showmigrations', 'migrate']), third)
        self.assertEqual((third['release']['id'], third['release']['live']), (r2, r2))
        self.assertEqual(releases.list_releases(self.app), [r1, r2])
        with open(log) as f:
            self.assertEqual(set(line.split()[0] for line in f), set([releases.release_path(self.app, r2)]))

        # A rollback by switch: no pip at all, and both releases stay.
        fourth = self.apply(expect={'tiny': '1.0'}, releases_over={'switchTo': r1},
                            history={'time': '2026-01-01T00:00:00.000Z', 'action': 'rollback', 'undoes': 2})
        self.assertEqual((fourth['outcome'], [s['name'] for s in fourth['steps']]), ('deployed', ['switch']), fourth)
        self.assertEqual((fourth['release']['id'], fourth['release']['live'], fourth['release']['previous']), (r1, r1, r2))
        self.assertEqual(self.tiny_through_current(), '1.0')
        self.assertEqual(releases.list_releases(self.app), [r1, r2])
        self.assertEqual(self.history()[-1]['after'], {k: v for k, v in first['installed'].items()})

    def test_failures_before_and_after_the_switch(self):
        r1 = self.apply('1.0', create=True)['release']['id']
        # Before the switch (verify): the new release is removed, `current` never moved.
        bad = self.apply('1.1', expect={'tiny': '9.9'})
        self.assertEqual((bad['outcome'], bad['failedStep']), ('failed', 'verify'))
        self.assertNotIn('switch', [s['name'] for s in bad['steps']])
        self.assertEqual([r['why'] for r in bad['release']['removed']], ['failed'])
        self.assertEqual((bad['release']['live'], releases.list_releases(self.app)), (r1, [r1]))
        self.assertEqual(self.tiny_through_current(), '1.0')

        # After the switch (health check): switched back, reloaded again, the new release removed.
        marker = os.path.join(self.root, 'reloads')
        hc = {'command': 'bin/python -c "import tiny, sys; sys.exit(tiny.__version__ == \'1.1\')"',
              'expectStatus': 200, 'timeout': 30, 'retries': 0, 'interval': 0, 'settle': 0}
        back = self.apply('1.1', healthcheck=hc, reload="echo x >> '%s'" % marker)
        self.assertEqual((back['outcome'], back['failedStep']), ('failed', 'healthcheck'), back)
        self.assertEqual([s['name'] for s in back['steps']][-4:], ['reload', 'healthcheck', 'switch-back', 'reload'])
        self.assertEqual(back['release']['switchedBack'], {'ok': True})
        self.assertEqual([r['why'] for r in back['release']['removed']], ['failed'])
        self.assertEqual((back['release']['live'], releases.list_releases(self.app)), (r1, [r1]))
        with open(marker) as f:
            self.assertEqual(len(f.read().split()), 2)
        self.assertEqual(self.history()[-1]['switchedBack'], True)
        self.assertEqual(self.tiny_through_current(), '1.0')

        # switchBack false (--no-rollback): the failed release stays live.
        kept = self.apply('1.1', healthcheck=hc, releases_over={'switchBack': False})
        self.assertEqual((kept['outcome'], kept['failedStep']), ('failed', 'healthcheck'))
        self.assertNotIn('switchedBack', kept['release'])
        r3 = kept['release']['id']
        self.assertEqual((kept['release']['live'], releases.list_releases(self.app)), (r3, [r1, r3]))
        self.assertEqual(self.tiny_through_current(), '1.1')

        # The next apply: the failed-but-live release is live, so sweep keeps it; a switch to r1 runs no pip.
        to_r1 = self.apply(expect={'tiny': '1.0'}, releases_over={'switchTo': r1})
        self.assertEqual(([s['name'] for s in to_r1['steps']], to_r1['release']['live']), (['switch'], r1))
        self.assertEqual(to_r1['release']['removed'], [])
        # r3 is neither live nor successful now: the next apply sweeps it as unfinished.
        again = self.apply(expect={'tiny': '1.0'}, releases_over={'switchTo': r1})
        self.assertEqual([(r['id'], r['why']) for r in again['release']['removed']], [(r3, 'unfinished')])
        self.assertEqual(releases.list_releases(self.app), [r1])


if __name__ == '__main__':
    unittest.main()
