"""vdeploy_remote.artifact (issue 16: build once, ship): the manifest, full and delta tars, and the
checked receive — on small hand-made trees (every Python), then on real venvs through
release_steps in a child process, as host_apply starts it: a builder packs, a receiver at another
path receives the full release and then a delta, a corrupted tar fails the receive."""
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest

import support
from test_apply_venv import build_wheel, request, run_checked, write
from vdeploy_remote import apply_venv, artifact, releases, venv_facts
from vdeploy_remote.artifact import Mismatch

HOLDER = {'user': 'test', 'host': 'here', 'pid': 1, 'startedAt': '2026-01-01T00:00:00.000Z'}


def small_tree(root):
    """A release-like tree: a script, a read-only data file, an empty directory, symlinks in and out."""
    write(os.path.join(root, 'pyvenv.cfg'), 'home = /usr/bin\n')
    write(os.path.join(root, 'bin', 'tool'), '#!%s/bin/python\nprint(1)\n' % root, 0o755)
    write(os.path.join(root, 'lib', 'pkg', '__init__.py'), 'X = 1\n')
    write(os.path.join(root, 'lib', 'pkg', 'data.bin'), 'x' * 70000, 0o444)
    os.makedirs(os.path.join(root, 'lib', 'empty'))
    os.symlink('/usr/bin/python3', os.path.join(root, 'bin', 'python'))
    os.symlink('lib', os.path.join(root, 'lib64'))
    os.makedirs(os.path.join(root, '.vdeploy'))
    write(os.path.join(root, '.vdeploy', 'lock'), '{}')  # a release's lock: never shipped
    return root


def make_tar(path, heads, members):
    """A tar as the tests want it: heads [(name, obj)] as JSON, members [(TarInfo, bytes or None)]."""
    with tarfile.open(path, 'w', format=tarfile.PAX_FORMAT) as tar:
        for name, obj in heads:
            artifact.json_member(tar, name, obj)
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


def file_info(name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info


def manifest_of(files):
    return {'version': 1, 'sourcePath': '/b', 'fingerprint': 'fp', 'desired': [], 'files': files}


def sha(data):
    return hashlib.sha256(data).hexdigest()


class Temp(unittest.TestCase):
    def setUp(self):
        self.root = os.path.realpath(tempfile.mkdtemp(prefix='vdeploy-test-artifact-'))
        self.addCleanup(shutil.rmtree, self.root, True)

    def path(self, *parts):
        return os.path.join(self.root, *parts)


class Manifest(Temp):
    def test_manifest_is_sorted_complete_and_stable_and_skips_the_release_lock(self):
        tree = small_tree(self.path('a'))
        m1, inodes = artifact.build_manifest(tree, 'fp', ['b.whl', 'a.whl'])
        m2, _ = artifact.build_manifest(tree, 'fp', ['b.whl', 'a.whl'])
        self.assertEqual(artifact.digest_of(m1), artifact.digest_of(m2))
        self.assertEqual(len(artifact.digest_of(m1)), 64)
        rels = [e[0] for e in m1['files']]
        self.assertEqual(rels, sorted(rels))
        self.assertEqual(rels, ['bin', 'bin/python', 'bin/tool', 'lib', 'lib/empty', 'lib/pkg', 'lib/pkg/__init__.py',
                                'lib/pkg/data.bin', 'lib64', 'pyvenv.cfg'])
        by = dict((e[0], e) for e in m1['files'])
        self.assertEqual(by['lib/pkg/data.bin'], ['lib/pkg/data.bin', 'f', 0o444, 70000, sha(b'x' * 70000)])
        self.assertEqual(by['bin/python'], ['bin/python', 'l', '/usr/bin/python3'])
        self.assertEqual(by['lib'][1], 'd')
        self.assertEqual(set(inodes), set(r for r in rels if by[r][1] != 'd'))
        self.assertEqual((m1['sourcePath'], m1['fingerprint'], m1['desired']), (tree, 'fp', ['b.whl', 'a.whl']))
        # The digest is over the canonical JSON: any change of content, mode or path changes it.
        os.chmod(os.path.join(tree, 'bin', 'tool'), 0o700)
        self.assertNotEqual(artifact.digest_of(artifact.build_manifest(tree, 'fp', ['b.whl', 'a.whl'])[0]), artifact.digest_of(m1))
        self.assertEqual(artifact.digest_of(m1), hashlib.sha256(json.dumps(m1, sort_keys=True, separators=(',', ':')).encode()).hexdigest())

    def test_artifact_of_reads_the_newest_history_line_naming_the_release(self):
        history = [{'release': 'r1', 'artifact': 'a1'}, {'release': 'r2'}, {'release': 'r1'}, {'release': 'r2', 'artifact': 'a2'}]
        self.assertEqual((artifact.artifact_of(history, 'r1'), artifact.artifact_of(history, 'r2')), ('a1', 'a2'))
        self.assertIsNone(artifact.artifact_of(history, 'r3'))


class FullRoundTrip(Temp):
    def pack(self, tree):
        return artifact.pack(tree, self.path('cache', 'artifacts'), 'fp', ['a.whl'])

    def test_pack_then_receive_elsewhere_gives_the_same_tree(self):
        tree = small_tree(self.path('a'))
        packed = self.pack(tree)
        self.assertEqual(packed['full']['path'], self.path('cache', 'artifacts', packed['digest'] + '.tar'))
        self.assertEqual(packed['full']['bytes'], os.path.getsize(packed['full']['path']))
        self.assertEqual(packed['full']['sha256'], apply_venv.sha256_of(packed['full']['path']))
        self.assertIsNone(packed['delta'])
        self.assertEqual(packed['files'], 10)
        self.assertEqual(os.listdir(self.path('cache', 'artifacts')), [packed['digest'] + '.tar'])
        dest = self.path('b')
        manifest, written = artifact.receive_full(packed['full']['path'], dest, packed['digest'])
        self.assertEqual(len(written), 10)
        self.assertEqual(artifact.digest_of(manifest), packed['digest'])
        again = artifact.build_manifest(dest, 'fp', ['a.whl'])[0]
        self.assertEqual(again['files'], manifest['files'])
        self.assertFalse(os.path.exists(os.path.join(dest, '.vdeploy')))
        # mtimes travel (pip's bytecode is checked against its source's mtime).
        for rel in ('bin/tool', 'lib/pkg/__init__.py'):
            self.assertEqual(int(os.stat(os.path.join(dest, rel)).st_mtime), int(os.stat(os.path.join(tree, rel)).st_mtime))

    def test_a_flipped_byte_fails_naming_the_file(self):
        tree = small_tree(self.path('a'))
        packed = self.pack(tree)
        with open(packed['full']['path'], 'r+b') as f:
            data = f.read()
            at = data.index(b'x' * 1000) + 500
            f.seek(at)
            f.write(b'y')
        with self.assertRaises(Mismatch) as caught:
            artifact.receive_full(packed['full']['path'], self.path('b'), packed['digest'])
        self.assertRegex(str(caught.exception), r'^lib/pkg/data\.bin: sha256 mismatch \(manifest [0-9a-f]{64}, got [0-9a-f]{64}\)$')

    def test_a_wrong_digest_or_a_tar_that_is_no_artifact_fails(self):
        packed = self.pack(small_tree(self.path('a')))
        with self.assertRaises(Mismatch) as caught:
            artifact.receive_full(packed['full']['path'], self.path('b'), '0' * 64)
        self.assertIn('vdeploy-manifest.json: digest mismatch', str(caught.exception))
        plain = self.path('plain.tar')
        make_tar(plain, [], [(file_info('files/x', b'x'), b'x')])
        with self.assertRaises(Mismatch) as caught:
            artifact.receive_full(plain, self.path('c'), '0' * 64)
        self.assertIn('is not a vdeploy artifact', str(caught.exception))
        with open(self.path('junk.tar'), 'wb') as f:
            f.write(b'junk' * 1000)
        with self.assertRaises(Mismatch):
            artifact.receive_full(self.path('junk.tar'), self.path('d'), '0' * 64)

    def crafted(self, files, members):
        manifest = manifest_of(files)
        tar = self.path('crafted-%d.tar' % len(os.listdir(self.root)))
        make_tar(tar, [(artifact.MANIFEST, manifest)], members)
        dest = self.path('dest-%d' % len(os.listdir(self.root)))
        with self.assertRaises(Mismatch) as caught:
            artifact.receive_full(tar, dest, artifact.digest_of(manifest))
        return str(caught.exception)

    def test_extra_missing_unsafe_and_wrong_kind_members_fail(self):
        a = ['a', 'f', 0o644, 1, sha(b'a')]
        self.assertEqual(self.crafted([a], [(file_info('files/a', b'a'), b'a'), (file_info('files/b', b'b'), b'b')]),
                         'b: in the tar but not in the manifest')
        self.assertEqual(self.crafted([a, ['b', 'f', 0o644, 1, sha(b'b')], ['c', 'd', 0o755]], [(file_info('files/a', b'a'), b'a')]),
                         'b: in the manifest but not in the tar (and 1 more)')
        self.assertEqual(self.crafted([a], [(file_info('files/../a', b'a'), b'a')]), 'files/../a: unsafe name in the tar')
        self.assertEqual(self.crafted([a], [(file_info('/abs', b'a'), b'a')]), '/abs: unsafe name in the tar')
        self.assertEqual(self.crafted([a], [(file_info('files/a', b'a', 0o755), b'a')]), 'a: mode 755 in the tar, 644 in the manifest')
        self.assertEqual(self.crafted([a], [(file_info('files/a', b'ab'), b'ab')]), 'a: 2 bytes in the tar, 1 in the manifest')
        self.assertEqual(self.crafted([a], [(file_info('files/a', b'a'), b'a'), (file_info('files/a', b'a'), b'a')]), 'a: twice in the tar')
        link = tarfile.TarInfo('files/a')
        link.type, link.linkname = tarfile.SYMTYPE, 'elsewhere'
        self.assertEqual(self.crafted([a], [(link, None)]), 'a: a symlink in the tar, a file in the manifest')
        hard = tarfile.TarInfo('files/a')
        hard.type, hard.linkname = tarfile.LNKTYPE, 'files/b'
        self.assertEqual(self.crafted([a], [(hard, None)]), 'a: a special file in the tar, a file in the manifest')
        # A manifest with a path outside the release is refused before anything is written.
        self.assertEqual(self.crafted([['../x', 'f', 0o644, 1, sha(b'a')]], []), '../x: unsafe path in the manifest')
        self.assertEqual(self.crafted([['.vdeploy/lock', 'f', 0o644, 1, sha(b'a')]], []), '.vdeploy/lock: unsafe path in the manifest')

    def test_a_symlink_is_created_as_the_manifest_says_and_never_written_through(self):
        outside = self.path('outside')
        os.makedirs(outside)
        link = tarfile.TarInfo('files/evil')
        link.type, link.linkname = tarfile.SYMTYPE, outside
        files = [['evil', 'l', outside], ['evil/x', 'f', 0o644, 1, sha(b'x')]]
        message = self.crafted(files, [(link, None), (file_info('files/evil/x', b'x'), b'x')])
        self.assertEqual(message, 'evil/x: its directory is not a directory of the release (a symlink or missing)')
        self.assertEqual(os.listdir(outside), [])
        other = tarfile.TarInfo('files/evil')
        other.type, other.linkname = tarfile.SYMTYPE, '/etc'
        self.assertEqual(self.crafted(files[:1], [(other, None)]), 'evil: symlink to /etc in the tar, to %s in the manifest' % outside)


class Delta(Temp):
    """A delta on small trees: the clone of the live release, relocated by hand, then changed."""

    def test_the_delta_holds_only_what_changed_and_rebuilds_the_release_on_another_host(self):
        live = small_tree(self.path('b', 'releases', 'r1'))
        base = artifact.pack(live, self.path('bc'), 'fp', [])
        new = self.path('b', 'releases', 'r2')
        self.assertTrue(releases.clone(live, new, True)[0])
        shutil.rmtree(os.path.join(new, '.vdeploy'))
        # "relocate": the script is replaced (a new inode), before the snapshot.
        write(os.path.join(new, 'bin', 'tool'), '#!%s/bin/python\nprint(1)\n' % new, 0o755)
        os.replace(os.path.join(new, 'bin', 'tool'), os.path.join(new, 'bin', 'tool'))
        snap = artifact.snapshot(new)
        # "pip": a new package, a changed file, a removed directory, a directory that became a file.
        write(os.path.join(new, 'lib', 'new', '__init__.py'), 'Y = 2\n')
        os.unlink(os.path.join(new, 'lib', 'pkg', '__init__.py'))
        write(os.path.join(new, 'lib', 'pkg', '__init__.py'), 'X = 2\n')
        os.rmdir(os.path.join(new, 'lib', 'empty'))
        os.unlink(os.path.join(new, 'lib64'))
        write(os.path.join(new, 'lib64'), 'now a file\n')
        packed = artifact.pack(new, self.path('bc'), 'fp', [], (live, base['digest'], snap))
        delta = packed['delta']
        self.assertEqual(os.path.basename(delta['path']), '%s.from-%s.tar' % (packed['digest'], base['digest'][:16]))
        self.assertEqual(delta['base'], base['digest'])
        with tarfile.open(delta['path']) as tar:
            names = tar.getnames()
            removed = json.loads(tar.extractfile(artifact.DELTA).read().decode())['removed']
        self.assertEqual(names, [artifact.MANIFEST, artifact.DELTA, 'files/lib/new', 'files/lib/new/__init__.py',
                                 'files/lib/pkg/__init__.py', 'files/lib64'])
        self.assertEqual(removed, ['lib/empty', 'lib64'])
        self.assertLess(delta['bytes'], packed['full']['bytes'] / 3)

        # Another host: its live release r1 came from the base artifact; it clones it and applies the delta.
        host = self.path('h', 'releases')
        os.makedirs(host)
        artifact.receive_full(base['full']['path'], os.path.join(host, 'r1'), base['digest'])
        clone = os.path.join(host, 'r2')
        self.assertTrue(releases.clone(os.path.join(host, 'r1'), clone, True)[0])
        write(os.path.join(clone, 'lib', 'pkg', '__pycache__', 'x.cpython-311.pyc'), 'bytecode written at run time')
        manifest, written = artifact.receive_delta(delta['path'], clone, packed['digest'], base['digest'])
        self.assertEqual(written, ['lib/new', 'lib/new/__init__.py', 'lib/pkg/__init__.py', 'lib64'])
        artifact.check_tree(clone, manifest)
        self.assertFalse(os.path.exists(os.path.join(clone, 'lib', 'pkg', '__pycache__')))
        files = dict((e[0], e) for e in artifact.build_manifest(clone, 'fp', [])[0]['files'])
        self.assertEqual(set(files), set(e[0] for e in manifest['files']))
        self.assertEqual(files['lib/pkg/__init__.py'][4], sha(b'X = 2\n'))
        # The live release of that host is untouched (the clone's hardlinks were replaced, not written into).
        with open(os.path.join(host, 'r1', 'lib', 'pkg', '__init__.py')) as f:
            self.assertEqual(f.read(), 'X = 1\n')
        self.assertTrue(os.path.islink(os.path.join(host, 'r1', 'lib64')))
        # A delta from another base, and a release whose paths drifted, are refused.
        with self.assertRaises(Mismatch):
            artifact.receive_delta(delta['path'], clone, packed['digest'], '1' * 64)
        write(os.path.join(clone, 'stray'), 'x')
        with self.assertRaises(Mismatch) as caught:
            artifact.check_tree(clone, manifest)
        self.assertEqual(str(caught.exception), 'stray: in the release but not in the manifest')


    def test_a_delta_never_writes_through_a_symlink_that_replaced_a_directory(self):
        dest, outside = self.path('clone'), self.path('outside')
        write(os.path.join(dest, 'a', 'y'), 'y')
        os.makedirs(outside)
        manifest = manifest_of([['a', 'l', outside], ['a/x', 'f', 0o644, 1, sha(b'x')]])
        link = tarfile.TarInfo('files/a')
        link.type, link.linkname = tarfile.SYMTYPE, outside
        tar = self.path('delta.tar')
        make_tar(tar, [(artifact.MANIFEST, manifest), (artifact.DELTA, {'base': 'b', 'removed': ['a', 'a/y']})],
                 [(link, None), (file_info('files/a/x', b'x'), b'x')])
        with self.assertRaises(Mismatch) as caught:
            artifact.receive_delta(tar, dest, artifact.digest_of(manifest), 'b')
        self.assertEqual(str(caught.exception), 'a/x: its directory is not a directory of the release (a symlink or missing)')
        self.assertEqual(os.listdir(outside), [])


class Housekeeping(Temp):
    def test_prune_keeps_the_four_newest_tars_and_what_is_in_use(self):
        d = self.path('artifacts')
        os.makedirs(d)
        now = time.time()
        for n in range(7):
            write(os.path.join(d, '%d.tar' % n), 'x')
            os.utime(os.path.join(d, '%d.tar' % n), (now - 100 * n, now - 100 * n))
        write(os.path.join(d, artifact.TEMP_PREFIX + '1-old.tar'), 'x')
        os.utime(os.path.join(d, artifact.TEMP_PREFIX + '1-old.tar'), (now - 7200, now - 7200))
        write(os.path.join(d, artifact.TEMP_PREFIX + '2-new.tar'), 'x')
        write(os.path.join(d, 'notes.txt'), 'x')
        removed = artifact.prune_tars(d, protect=[os.path.join(d, '6.tar')], now=now)
        self.assertEqual(sorted(removed), sorted(['4.tar', '5.tar', artifact.TEMP_PREFIX + '1-old.tar']))
        self.assertEqual(sorted(os.listdir(d)), sorted(['0.tar', '1.tar', '2.tar', '3.tar', '6.tar', artifact.TEMP_PREFIX + '2-new.tar', 'notes.txt']))

    def test_release_ids_adopt_the_builders_when_free_and_newest(self):
        root = self.path('app')
        os.makedirs(releases.release_path(root, '20261203T100000Z-0004'))
        self.assertEqual(releases.next_id(root, 2, '20261203T110000Z-0007'), '20261203T110000Z-0007')
        # Not newer than a release here, or than the history: a new id, numbered after both.
        self.assertEqual(releases.number(releases.next_id(root, 2, '20261203T110000Z-0003')), 5)
        self.assertEqual(releases.number(releases.next_id(root, 9, '20261203T110000Z-0007')), 10)
        self.assertEqual(releases.number(releases.next_id(root, 9, 'not-an-id')), 10)
        self.assertEqual(releases.number(releases.next_id(root, 2, None)), 5)
        self.assertEqual(releases.next_id(root, 2, '20261203T100000Z-0004')[-4:], '0005')


class PackStep(Temp):
    def test_a_pack_that_fails_is_recorded_but_does_not_fail_the_deploy(self):
        from vdeploy_remote import release_steps
        write(self.path('cache'), 'a file where the cache directory should be')
        spec = {'cacheDir': self.path('cache'), 'group': 'g', 'fingerprint': 'fp', 'desired': [], 'delta': False}
        ctx = release_steps.ReleaseApply(request(self.path('app'), releases={'keep': 5, 'switchTo': None, 'switchBack': True, 'pack': spec}))
        self.addCleanup(ctx.close)
        ctx.built, ctx.release = True, '20261203T100000Z-0001'
        ctx.use(small_tree(self.path('app', 'releases', ctx.release)))
        release_steps.pack(ctx)
        step = ctx.steps[-1]
        self.assertEqual((step['name'], step['ok'], ctx.artifact), ('pack', False, None))
        self.assertIn('cannot pack the release: ', step['stderrTail'])
        self.assertNotIn('artifact', ctx.history)


# Real venvs (ensurepip: seconds apiece) only where test_releases runs them: 3.6, 3.8, 3.13 and
# /usr/bin/python3 (VDEPLOY_ALL_PYTHONS=1 for all nine).
REPRESENTATIVE = sys.version_info[:2] in ((3, 6), (3, 8), (3, 13)) or os.path.realpath(sys.executable).startswith('/usr/bin/')
SHARED = os.environ.get('VDEPLOY_SHARED_WHEELS') or os.path.join(support.ROOT, '..', 'shared', 'wheels')
REAL = {'sqlparse': 'sqlparse-0.6.0-py3-none-any.whl', 'asgiref': 'asgiref-3.12.1-py3-none-any.whl'}  # Requires-Python >= 3.10


@unittest.skipUnless(REPRESENTATIVE or os.environ.get('VDEPLOY_ALL_PYTHONS'), 'real venvs under 3.6, 3.8, 3.13 and /usr/bin/python3 only')
class Shipping(Temp):
    """A builder app root and receivers at other paths, through apply_venv.main in a child process."""

    def setUp(self):
        Temp.setUp(self)
        self.cache = self.path('wheel cache')
        os.makedirs(self.cache)
        self.host_cache = self.path('home', 'deploy', '.cache', 'vdeploy')

    def wheel(self, name):
        """(requirement line, expect key, version, wheel filename): the real wheel where this Python
        can install it, else a tiny one of the same name."""
        real = os.path.join(SHARED, REAL[name])
        if sys.version_info >= (3, 10) and os.path.isfile(real):
            shutil.copy(real, self.cache)
            filename, version = REAL[name], REAL[name].split('-')[1]
            digest = apply_venv.sha256_of(os.path.join(self.cache, filename))
        else:
            version = '1.0'
            filename, digest = build_wheel(self.cache, name, version)
        return {'filename': filename, 'sha256': digest, 'name': name, 'version': version}

    def apply(self, root, wheels, releases_over=None, create=False, **over):
        req = request(root, history={'time': '2026-01-01T00:00:00.000Z', 'action': 'deploy'},
                      releases=dict({'keep': 5, 'switchTo': None, 'switchBack': True}, **(releases_over or {})))
        if create:
            req['create'] = {'python': sys.executable}
        req['expect'] = dict((w['name'], w['version']) for w in wheels)
        if not (releases_over or {}).get('ship'):
            req['install'] = {'requirements': ''.join('%s==%s --hash=sha256:%s\n' % (w['name'], w['version'], w['sha256']) for w in wheels),
                              'cacheDir': self.cache, 'wheels': [{'filename': w['filename'], 'sha256': w['sha256']} for w in wheels]}
        req.update(over)
        return run_checked(self, req)

    def pack_spec(self, wheels, delta):
        return {'cacheDir': self.host_cache, 'group': 'g' * 16, 'fingerprint': 'fp', 'desired': [w['filename'] for w in wheels], 'delta': delta}

    def ship(self, built, kind):
        art = built['release']['artifact']
        tar = art['full'] if kind == 'full' else art['delta']
        return {'tar': tar['path'], 'kind': kind, 'digest': art['digest'], 'base': tar.get('base'),
                'releaseId': built['release']['id'], 'sourcePath': releases.release_path(self.builder, built['release']['id'])}

    def run_in(self, root, code):
        p = subprocess.Popen([os.path.join(root, 'current', 'bin', 'python'), '-c', code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return p.communicate()[0].decode().strip()

    def test_build_once_ship_full_then_delta_and_a_corrupted_tar_fails(self):
        self.builder, receiver = self.path('b', 'srv', 'app'), self.path('r', 'srv', 'app')
        first, second = self.wheel('sqlparse'), self.wheel('asgiref')
        # The builder: a fresh release with pip, packed after verify.
        b1 = self.apply(self.builder, [first], create=True, releases_over={'pack': self.pack_spec([first], True)})
        self.assertEqual((b1['outcome'], [s['name'] for s in b1['steps']]), ('deployed', ['create', 'install', 'pack', 'switch']), b1)
        art1 = b1['release']['artifact']
        self.assertIsNone(art1['delta'])  # a fresh build has no base
        self.assertEqual(venv_facts.read_history(self.builder)[-1]['artifact'], art1['digest'])

        # A receiver at another path: the full tar, the builder's release id, relocated; no pip at all.
        r1 = self.apply(receiver, [first], releases_over={'ship': self.ship(b1, 'full')})
        self.assertEqual((r1['outcome'], [s['name'] for s in r1['steps']]), ('deployed', ['receive', 'switch']), r1)
        got = r1['release']['received']
        self.assertEqual((r1['release']['id'], got['kind'], got['files'], got['relocated'], got['digest']),
                         (b1['release']['id'], 'full', art1['files'], True, art1['digest']))
        self.assertEqual(self.run_in(receiver, 'import %s; print(%s.__file__)' % (first['name'], first['name'])).split('/site-packages/')[1],
                         first['name'] + '/__init__.py')
        with open(os.path.join(receiver, 'current', 'bin', 'pip')) as f:
            self.assertTrue(f.readline().startswith('#!%s/bin/python' % releases.release_path(receiver, r1['release']['id'])))
        line = venv_facts.read_history(receiver)[-1]
        self.assertEqual((line['artifact'], line['received']), (art1['digest'], {'kind': 'full'}))

        # The builder upgrades (clone + pip): the delta holds the new package, not the venv.
        b2 = self.apply(self.builder, [first, second], releases_over={'pack': self.pack_spec([first, second], True)})
        self.assertEqual([s['name'] for s in b2['steps']], ['clone', 'relocate', 'install', 'pack', 'switch'], b2)
        art2 = b2['release']['artifact']
        self.assertEqual(art2['delta']['base'], art1['digest'])
        self.assertLess(art2['delta']['bytes'] * 3, art2['full']['bytes'])
        with tarfile.open(art2['delta']['path']) as tar:
            names = [n[len(artifact.PREFIX):] for n in tar.getnames() if n.startswith(artifact.PREFIX)]
        site = [n for n in names if '/site-packages/' in n]
        others = [n for n in site if not n.split('/site-packages/')[1].startswith(second['name'])]
        self.assertTrue(site and not others, names)
        self.assertTrue(all('/site-packages' in n or n.startswith('bin/') for n in names), names)

        # The receiver applies the delta to a clone of its live release.
        r2 = self.apply(receiver, [first, second], releases_over={'ship': self.ship(b2, 'delta')})
        self.assertEqual((r2['outcome'], [s['name'] for s in r2['steps']]), ('deployed', ['receive', 'switch']), r2)
        self.assertEqual((r2['release']['received']['kind'], r2['release']['received']['files']), ('delta', len(names)))
        self.assertEqual(self.run_in(receiver, 'import %s, %s; print("ok")' % (first['name'], second['name'])), 'ok')
        manifest = artifact.build_manifest(releases.release_path(receiver, r2['release']['id']), 'fp', [])[0]
        self.assertEqual(len(manifest['files']), art2['files'])

        # A delta whose base is not the live release's artifact, and a flipped byte: the receive fails,
        # the release is removed, `current` stays.
        wrong = self.apply(self.path('x', 'app'), [first, second], releases_over={'ship': self.ship(b2, 'delta')})
        self.assertEqual((wrong['outcome'], wrong['failedStep']), ('failed', 'receive'))
        self.assertIn("is not the delta's base", wrong['steps'][0]['stderrTail'])
        bad = self.path('bad.tar')
        shutil.copy(art2['full']['path'], bad)
        with tarfile.open(bad) as tar:
            victim = [m for m in tar.getmembers() if m.name.endswith('/%s/__init__.py' % second['name'])][0]
        with open(bad, 'r+b') as f:
            f.seek(victim.offset_data + victim.size // 2)
            byte = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([byte[0] ^ 0xff]))
        failed = self.apply(receiver, [first, second], releases_over={'ship': dict(self.ship(b2, 'full'), tar=bad)})
        self.assertEqual((failed['outcome'], failed['failedStep']), ('failed', 'receive'), failed)
        self.assertRegex(failed['steps'][0]['stderrTail'], r'^%s: sha256 mismatch \(manifest [0-9a-f]{64}, got [0-9a-f]{64}\)$'
                         % victim.name[len(artifact.PREFIX):].replace('.', '\\.'))
        self.assertEqual([r['why'] for r in failed['release']['removed']], ['failed'])
        self.assertEqual(releases.live(receiver), r2['release']['id'])


if __name__ == '__main__':
    unittest.main()
