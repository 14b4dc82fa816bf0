"""vdeploy_remote.relocate: the planner's pure functions, a plan made on a small hand-built venv tree,
and main() once end to end (a child process started as vdeploy starts it) on a real venv.
(The TypeScript side runs the whole script on many cases: test/integration/relocate-script.test.ts.)"""
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

import support
from vdeploy_remote import protocol, relocate
from vdeploy_remote.relocate import Fatal

XY = '%d.%d' % sys.version_info[:2]


write, read = support.write, support.read


def new_result(dry=True):
    result = relocate.empty_result({'venv': '/x', 'dryRun': dry})
    return relocate.Run({'dryRun': dry}, result), result


class TempDir(unittest.TestCase):
    def setUp(self):
        self.root = os.path.realpath(tempfile.mkdtemp(prefix='vdeploy-test-relocate-'))
        self.addCleanup(shutil.rmtree, self.root, True)


class PathChecks(unittest.TestCase):
    def test_normpath_keeps_one_leading_slash(self):
        self.assertEqual(relocate.normpath('//srv/app'), '/srv/app')
        self.assertEqual(relocate.normpath('///srv//app/'), '/srv/app')
        self.assertEqual(relocate.normpath('/srv/./a/../app'), '/srv/app')

    def test_check_new_path_normalizes_and_allows_spaces(self):
        self.assertEqual(relocate.check_new_path('/srv//my app/./venv/'), '/srv/my app/venv')

    def test_check_new_path_refuses_what_cannot_be_quoted_everywhere(self):
        for bad in ['venv', './venv', "/srv/it's", '/srv/"q"', '/srv/$x', '/srv/`x`', '/srv/a\\b', '/srv/a\nb',
                    '/srv/a\x7fb', '/', '//', None, 3]:
            with self.assertRaises(Fatal) as caught:
                relocate.check_new_path(bad)
            self.assertEqual(caught.exception.kind, 'usage', repr(bad))
            self.assertTrue(caught.exception.hint)

    def test_check_old_path(self):
        self.assertEqual(relocate.check_old_path('/build//venv/'), '/build/venv')
        for bad in ['build/venv', '/', '//', None]:
            with self.assertRaises(Fatal):
                relocate.check_old_path(bad)


class Occurrences(unittest.TestCase):
    def test_whole_paths_only(self):
        data = b'/old/bin /old2/x /old-backup /old.d /old\n/old'
        self.assertEqual(relocate.occurrences(data, b'/old', None, True), [0, 36, 41])

    def test_in_text_the_byte_before_must_not_continue_a_name(self):
        data = b'x/old a/old /data/old file:///old "/old"'
        self.assertEqual(relocate.occurrences(data, b'/old', None, True), [29, 35])
        # In binary data any byte before is fine (a path is often preceded by a length or a NUL).
        self.assertEqual(relocate.occurrences(b'\x00a/old', b'/old', None, False), [2])

    def test_the_new_path_below_the_old_one_is_not_found_again(self):
        data = b'/srv/app/current/bin /srv/app/bin /srv/app/currently'
        found = relocate.occurrences(data, b'/srv/app', b'/srv/app/current', True)
        self.assertEqual(found, [21, 34])

    def test_empty_old_finds_nothing(self):
        self.assertEqual(relocate.occurrences(b'abc', b'', None, True), [])

    def test_splice_and_splice_marks(self):
        data = b'a /old b /old'
        self.assertEqual(relocate.splice(data, [2, 9], 4, lambda i: b'/new path'), b'a /new path b /new path')
        self.assertEqual(relocate.splice(data, [], 4, lambda i: b'x'), data)
        marks = [(0, b'/o', b'/n'), (6, b'%2F', b'/')]
        self.assertEqual(relocate.splice_marks(b'/o/x, %2Fy', marks), b'/n/x, /y')

    def test_is_text_and_line_of(self):
        self.assertTrue(relocate.is_text(b'plain\n'))
        self.assertFalse(relocate.is_text(b'\x7fELF\x00\x01'))
        self.assertTrue(relocate.is_text(b'x' * 8192 + b'\x00'))  # only the first 8 KiB are looked at
        self.assertEqual(relocate.line_of(b'a\nb\nc /old', 6), 3)

    def test_quoted_at(self):
        line = b'''A=/old B='/old' C="/old" D="a\\"/old" E=\\'/old # /old'''
        offsets = relocate.occurrences(line, b'/old', None, True)
        self.assertEqual([relocate.quoted_at(line, i) for i in offsets], [False, True, True, True, False, True])
        self.assertFalse(relocate.quoted_at(b'ok\nX=/old', 5))
        self.assertTrue(relocate.quoted_at(b'# /old', 2))
        self.assertFalse(relocate.quoted_at(b'a#b /old', 4))  # '#' inside a word starts no comment


class ScriptHeaders(unittest.TestCase):
    def test_plain_shebang_with_arguments(self):
        data = b'#!/old/bin/python -E\nimport sys\n'
        self.assertEqual(relocate.parse_script_header(data), (b'/old/bin/python', b' -E', 21, 'shebang'))

    def test_trampolines_quoted_and_bare(self):
        quoted = b'#!/bin/sh\n\'\'\'exec\' "/my old/bin/python3" "$0" "$@"\n\' \'\'\'\nimport sys\n'
        exe, args, body, form = relocate.parse_script_header(quoted)
        self.assertEqual((exe, args, form), (b'/my old/bin/python3', b'', 'trampoline'))
        self.assertEqual(quoted[body:], b'import sys\n')
        bare = b'#!/bin/sh\r\n\'\'\'exec\' /old/bin/python3 -E "$0" "$@"\r\n\' \'\'\'\r\nx\n'
        self.assertEqual(relocate.parse_script_header(bare)[:2], (b'/old/bin/python3', b' -E'))

    def test_not_a_script_header(self):
        for data in [b'', b'import sys\n', b'#!/old/bin/python', b'#!\n', b'#!/bin/sh\necho hi\n',
                     b'#!/bin/sh\n\'\'\'exec\' /p "$0" "$@"\nnot the end\n']:
            self.assertIsNone(relocate.parse_script_header(data), data)

    def test_build_header_as_pip_writes_it(self):
        self.assertEqual(relocate.build_header(b'/srv/venv/bin/python', b' -E'), (b'#!/srv/venv/bin/python -E\n', 'shebang'))
        spaced, form = relocate.build_header(b'/srv/my venv/bin/python', b'')
        self.assertEqual(form, 'trampoline')
        self.assertEqual(spaced, b'#!/bin/sh\n\'\'\'exec\' "/srv/my venv/bin/python" "$0" "$@"\n\' \'\'\'\n')
        long_exe = b'/' + b'x' * 130 + b'/bin/python'
        head, form = relocate.build_header(long_exe, b'')
        self.assertEqual(form, 'trampoline')
        self.assertIn(b"'''exec' " + long_exe + b' "$0"', head)  # unquoted: no space in it

    def test_build_then_parse_round_trips(self):
        for exe, args in [(b'/a/bin/python', b''), (b'/a b/bin/python3', b' -E'), (b'/' + b'y' * 200, b' -s')]:
            head, form = relocate.build_header(exe, args)
            self.assertEqual(relocate.parse_script_header(head + b'body\n'), (exe, args, len(head), form))


class Patterns(unittest.TestCase):
    def test_pyc_name(self):
        m = relocate.PYC_NAME.match('mod.cpython-311.pyc')
        self.assertEqual((m.group('mod'), m.group('tag'), m.group('ver'), m.group('opt')), ('mod', 'cpython-311', '311', None))
        self.assertEqual(relocate.PYC_NAME.match('__init__.cpython-36.opt-2.pyc').group('opt'), '2')
        for bad in ['mod.pyc', 'a.b.cpython-311.pyc', 'mod.cpython-311.py', 'mod.cpython.pyc']:
            self.assertIsNone(relocate.PYC_NAME.match(bad), bad)

    def test_trampoline(self):
        m = relocate.TRAMPOLINE.match(b'\'\'\'exec\' "/a b/python" -E "$0" "$@"')
        self.assertEqual(m.groups(), (b'"/a b/python"', b' -E'))
        self.assertIsNone(relocate.TRAMPOLINE.match(b"'''exec' /a/python \"$0\""))

    def test_activate_and_interpreter_names(self):
        for name in ['activate', 'activate.fish', 'activate.csh', 'activate.nu', 'Activate.ps1', 'activate_this.py']:
            self.assertTrue(relocate.ACTIVATE_NAME.match(name), name)
        self.assertFalse(relocate.ACTIVATE_NAME.match('activated'))
        for name in ['python', 'python3', 'python3.11']:
            self.assertTrue(relocate.INTERPRETER_NAME.match(name), name)
        for name in ['python-config', 'python3.11-config', 'pythonw']:
            self.assertFalse(relocate.INTERPRETER_NAME.match(name), name)


class ShellValues(unittest.TestCase):
    def test_one_absolute_path(self):
        cases = {
            "'/srv/my app/venv'": '/srv/my app/venv',
            '"/srv/venv"': '/srv/venv',
            '/srv/venv  # set by venv': '/srv/venv',
            "r#'/srv/venv'#": '/srv/venv',
            '/srv//venv/;': '/srv/venv',
        }
        for value, expected in cases.items():
            self.assertEqual(relocate.shell_value(value), expected, value)

    def test_anything_else_is_none(self):
        for value in ['', 'venv', '/a /b', '"/unbalanced', '/', '"$HOME/venv"x y']:
            self.assertIsNone(relocate.shell_value(value), value)


class PyvenvCfg(TempDir):
    def test_read_cfg_keeps_the_first_key_and_any_bytes(self):
        write(os.path.join(self.root, 'pyvenv.cfg'), b'home = /usr/bin\nHome = /other\ncommand = /p -m venv /b\xe9\nno equals\n')
        data, cfg = relocate.read_cfg(self.root)
        self.assertEqual(cfg['home'], '/usr/bin')
        self.assertEqual(os.fsencode(cfg['command']), b'/p -m venv /b\xe9')
        self.assertEqual(data, read(os.path.join(self.root, 'pyvenv.cfg')))

    def test_venv_xy(self):
        self.assertEqual(relocate.venv_xy(self.root, {'version': '3.11.2'}), ('3.11', 'pyvenv.cfg version = 3.11.2'))
        self.assertEqual(relocate.venv_xy(self.root, {'version_info': '3.12.1.final.0'})[0], '3.12')
        os.makedirs(os.path.join(self.root, 'lib', 'python3.9'))
        self.assertEqual(relocate.venv_xy(self.root, {}), ('3.9', 'lib/python3.9'))
        os.makedirs(os.path.join(self.root, 'lib', 'python3.10'))
        with self.assertRaises(Fatal):
            relocate.venv_xy(self.root, {})

    def test_rewrite_cfg_in_place_with_line_endings_and_appends_what_is_missing(self):
        data = b'Home = /opt/py\r\nversion = 3.11.1\ninclude-system-site-packages = false'
        updates = {'home': '/usr/bin', 'version': '3.11.2', 'executable': '/usr/bin/python3.11'}
        out = relocate.rewrite_cfg(data, updates)
        self.assertEqual(out, b'Home = /usr/bin\r\nversion = 3.11.2\ninclude-system-site-packages = false\n'
                              b'executable = /usr/bin/python3.11\n')
        self.assertEqual(len(updates), 3)  # the caller's dict is left alone

    def test_describe_holder(self):
        holder = json.dumps({'user': 'ci', 'host': 'web1', 'pid': 7, 'startedAt': 'T'})
        self.assertEqual(relocate.describe_holder(holder), 'ci@web1 (pid 7, deploy since T)')
        self.assertEqual(relocate.describe_holder('pid 7'), 'pid 7')
        self.assertEqual(relocate.describe_holder('[1]'), '[1]')


class DetectOld(TempDir):
    def test_each_marker_in_turn(self):
        venv = self.root
        write(os.path.join(venv, 'pyvenv.cfg'), 'home = /usr/bin\ncommand = /usr/bin/python3 -m venv --prompt="my app" --copies /b/cfg venv\n')
        write(os.path.join(venv, 'bin', 'tool'), '#!/b/shebang/bin/python\n')
        write(os.path.join(venv, 'bin', 'other'), '#!/b/shebang/bin/python3 -E\n')
        write(os.path.join(venv, 'bin', 'odd'), '#!/b/odd/bin/python\n')
        self.assertEqual(relocate.detect_old(venv), ('/b/cfg venv', 'pyvenv.cfg command'))
        write(os.path.join(venv, 'bin', 'activate.fish'), "set -gx VIRTUAL_ENV '/b/fish'\n")
        self.assertEqual(relocate.detect_old(venv), ('/b/fish', 'bin/activate.fish'))
        write(os.path.join(venv, 'bin', 'activate'), '# x\nexport VIRTUAL_ENV="/b/sh"\n')
        self.assertEqual(relocate.detect_old(venv), ('/b/sh', 'bin/activate'))
        for name in ['activate', 'activate.fish']:
            os.unlink(os.path.join(venv, 'bin', name))
        write(os.path.join(venv, 'pyvenv.cfg'), 'home = /usr/bin\n')
        self.assertEqual(relocate.detect_old(venv), ('/b/shebang', 'bin/ script shebangs'))

    def test_nothing_found(self):
        write(os.path.join(self.root, 'pyvenv.cfg'), 'home = /usr/bin\n')
        self.assertEqual(relocate.detect_old(self.root), (None, None))
        run, result = new_result()
        with self.assertRaises(Fatal) as caught:
            relocate.find_old(run, self.root, None)
        self.assertIn('--old-path', caught.exception.hint)
        self.assertEqual(relocate.find_old(run, self.root, '/given'), '/given')


class MakePlan(TempDir):
    """A hand-built venv tree "built at" /build/venv (nothing in it runs), planned for /srv/my venv."""
    OLD = '/build/venv'
    NEW = '/srv/my venv'

    def build(self):
        venv = os.path.join(self.root, 'venv')
        site = os.path.join(venv, 'lib', 'python3.11', 'site-packages')
        old = self.OLD
        write(os.path.join(venv, 'pyvenv.cfg'), 'home = %s/bin\ncommand = /usr/bin/python3 -m venv %s\n' % (old, old))
        write(os.path.join(venv, 'bin', 'activate'), 'VIRTUAL_ENV=%s\nexport VIRTUAL_ENV\n' % old)
        write(os.path.join(venv, 'bin', 'activate.csh'), 'setenv VIRTUAL_ENV "%s"\n' % old)
        write(os.path.join(venv, 'bin', 'tool'), '#!%s/bin/python\nprint("%s")\n' % (old, old), 0o755)
        write(os.path.join(venv, 'bin', 'outside.sh'), '#!/bin/sh\necho %s/data\n' % old, 0o755)
        write(os.path.join(site, 'extra.pth'), '%s/src/extra\n/opt/lib\n' % old)
        write(os.path.join(site, 'demo-1.0.dist-info', 'direct_url.json'), '{"url": "file:///build/venv/src/demo"}')
        write(os.path.join(site, 'demo', '__init__.py'), 'x = 1\n')
        write(os.path.join(site, 'demo', '__pycache__', '__init__.cpython-311.opt-1.pyc'), b'\x00\x00' + old.encode() + b'\x00')
        write(os.path.join(site, 'demo', '__pycache__', 'gone.cpython-311.pyc'), b'\x00' + old.encode())
        write(os.path.join(site, 'demo', '__pycache__', 'clean.cpython-311.pyc'), b'\x00/elsewhere')
        write(os.path.join(venv, 'share', 'blob.bin'), b'\x00' + old.encode() + b'/lib\x00')
        write(os.path.join(venv, 'share', 'sibling.txt'), '%s2/data\n' % old)
        write(os.path.join(venv, 'bin', relocate.TEMP_PREFIX + 'abc'), 'stale')
        write(os.path.join(venv, relocate.META_DIR, 'history.jsonl'), '{"venv": "%s"}\n' % old)
        os.symlink(old + '/share/blob.bin', os.path.join(venv, 'share', 'inside'))
        os.symlink(old + '2/x', os.path.join(venv, 'share', 'sibling-link'))
        os.symlink('x:' + old + '/data', os.path.join(venv, 'share', 'not-ours'))
        return venv

    def test_plan(self):
        venv = self.build()
        run, result = new_result()
        plan = relocate.make_plan(run, venv, self.OLD, self.NEW)
        self.assertEqual(plan.temps, [os.path.join('bin', relocate.TEMP_PREFIX + 'abc')])
        self.assertEqual([(l[0], l[2]) for l in plan.links], [('share/inside', self.NEW + '/share/blob.bin')])
        self.assertEqual([s[0] for s in plan.scripts], ['bin/tool'])
        tool = plan.scripts[0][2]
        self.assertTrue(tool.startswith(b'#!/bin/sh\n\'\'\'exec\' "/srv/my venv/bin/python" "$0" "$@"\n'), tool)
        self.assertEqual(sorted((s[0], s[5]) for s in plan.site), [
            ('lib/python3.11/site-packages/demo-1.0.dist-info/direct_url.json', 'direct-url'),
            ('lib/python3.11/site-packages/extra.pth', 'pth'),
        ])
        site = dict((s[0], s[2]) for s in plan.site)
        self.assertEqual(site['lib/python3.11/site-packages/extra.pth'], b'/srv/my venv/src/extra\n/opt/lib\n')
        self.assertEqual([(b[0], b[3], b[4]) for b in plan.bytecode],
                         [('lib/python3.11/site-packages/demo/__pycache__/__init__.cpython-311.opt-1.pyc', 'cpython-311', '1')])
        # home names the old venv: not rewritten (only --reinitialize changes home), and reported.
        self.assertEqual(plan.cfg[2], ('home = %s/bin\ncommand = /usr/bin/python3 -m venv %s\n' % (self.OLD, self.NEW)).encode())
        self.assertEqual(plan.cfg[4], 'command names the old path')
        activate = dict((a[0], a[2]) for a in plan.activate)
        self.assertEqual(activate['bin/activate'], b"VIRTUAL_ENV='/srv/my venv'\nexport VIRTUAL_ENV\n")
        self.assertEqual(activate['bin/activate.csh'], b'setenv VIRTUAL_ENV "/srv/my venv"\n')
        leftovers = dict((l['path'], l['reason']) for l in result['leftovers'])
        self.assertEqual(sorted(leftovers), [
            'bin/outside.sh', 'lib/python3.11/site-packages/demo/__pycache__/gone.cpython-311.pyc',
            'pyvenv.cfg', 'share/blob.bin', 'share/not-ours'])
        self.assertEqual(leftovers['bin/outside.sh'], 'names the old path (line 2); a bin/ file whose interpreter is not in the old venv')
        self.assertEqual(leftovers['share/blob.bin'], 'binary file that names the old path (not rewritten)')
        self.assertIn('source file is missing', leftovers['lib/python3.11/site-packages/demo/__pycache__/gone.cpython-311.pyc'])

    def test_the_scan_visits_entries_in_os_walks_sorted_top_down_order(self):
        # Every name starts with the temporary prefix, so plan.temps lists each entry as it is visited.
        venv = os.path.join(self.root, 'venv')
        t = relocate.TEMP_PREFIX
        for rel in ['b/' + t + 'z', 'b/' + t + 'a', t + 'f', 'a/c/' + t + 'x', t + 'd/' + t + 'y', '.vdeploy/' + t + 'h',
                    'a/.vdeploy/' + t + 'h', 'A/' + t + 'q']:
            write(os.path.join(venv, rel), 'x')
        os.symlink('a', os.path.join(venv, t + 'dirlink'))
        os.symlink('/nowhere', os.path.join(venv, 'b', t + 'broken'))
        os.mkfifo(os.path.join(venv, 'a', t + 'fifo'))
        expected = []
        for root, dirs, files in os.walk(venv):  # what make_plan walked before it used scandir
            if root == venv:
                dirs.remove(relocate.META_DIR)
            dirs.sort()
            files.sort()
            names = [d for d in dirs if os.path.islink(os.path.join(root, d))] + files
            expected += [os.path.relpath(os.path.join(root, n), venv) for n in names]
        run, result = new_result()
        plan = relocate.make_plan(run, venv, self.OLD, self.NEW)
        self.assertEqual(plan.temps, expected)
        self.assertEqual(len(expected), 10)

    def test_report_orders_the_changes_and_a_dry_run_writes_nothing(self):
        venv = self.build()
        before = dict((p, read(p)) for p in walk_files(venv))
        run, result = new_result(dry=True)
        plan = relocate.make_plan(run, venv, self.OLD, self.NEW)
        relocate.apply_plan(run, venv, self.OLD, self.NEW, plan)
        kinds = [c['kind'] for c in result['changes']]
        self.assertEqual(kinds, ['temporary', 'symlink', 'script', 'pth', 'direct-url', 'bytecode', 'pyvenv.cfg', 'activate', 'activate'])
        self.assertEqual(result['changes'][-1]['path'], 'bin/activate')
        self.assertEqual(result['changes'][5]['files'], 1)
        # tool's body still names the old path: reported, not rewritten.
        self.assertIn('outside the part vdeploy rewrites', dict((l['path'], l['reason']) for l in result['leftovers'])['bin/tool'])
        self.assertEqual(dict((p, read(p)) for p in walk_files(venv)), before)
        self.assertFalse(os.path.exists(os.path.join(venv, relocate.META_DIR, 'lock')))

    def test_write_file_keeps_the_mode_and_leaves_no_temporary_file(self):
        path = os.path.join(self.root, 'bin', 'tool')
        write(path, 'old', 0o751)
        run, result = new_result(dry=False)
        run.write_file(path, b'new', os.stat(path))
        self.assertEqual(read(path), b'new')
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o751)
        run.write_link(os.path.join(self.root, 'bin', 'link'), '/target')
        self.assertEqual(os.readlink(os.path.join(self.root, 'bin', 'link')), '/target')
        self.assertEqual(sorted(os.listdir(os.path.join(self.root, 'bin'))), ['link', 'tool'])
        self.assertEqual(run.writes, 2)


def walk_files(top):
    for root, dirs, files in os.walk(top):
        for name in files:
            if not os.path.islink(os.path.join(root, name)):
                yield os.path.join(root, name)


MODULE = """\
import os
NAME = 'literal'


def boom():
    raise ValueError('boom')


class Outer(object):
    def method(self):
        def inner():
            return [x for x in (lambda: [1])()]
        return inner


def caller():
    return boom()
"""


def code_objects(code):
    yield code
    for c in code.co_consts:
        if isinstance(c, type(code)):
            for nested in code_objects(c):
                yield nested


def load_pyc(path):
    import marshal
    with open(path, 'rb') as f:
        data = f.read()
    return data[:16], marshal.loads(data[16:])


@unittest.skipIf(sys.version_info < (3, 8), 'the rewrite needs code.replace (Python 3.8+); older ones recompile')
class RewritePycs(TempDir):
    """rewrite_pycs: co_filename rewritten in place of a recompile, by the interpreter's own marshal."""
    OLD = '/build/old venv'

    def setUp(self):
        TempDir.setUp(self)
        self.new = os.path.join(self.root, 'new venv')
        self.pkg = os.path.join(self.new, 'lib', 'demo')

    def make(self, name, source=MODULE, dfile_root=None, **compile_args):
        """A module under the new venv whose .pyc was compiled as if it lived under OLD: (rel, pyc, source, tag, opt, st)."""
        import importlib.util
        import py_compile
        path = os.path.join(self.pkg, name + '.py')
        write(path, source)
        pyc = importlib.util.cache_from_source(path)
        dfile = (dfile_root or self.OLD) + path[len(self.new):]
        py_compile.compile(path, cfile=pyc, dfile=dfile, doraise=True, **compile_args)
        os.chmod(pyc, 0o640)
        return (os.path.relpath(pyc, self.new), pyc, path, sys.implementation.cache_tag, '0', os.stat(pyc))

    def rewrite(self, items, old=None, new=None):
        run, result = new_result(dry=False)
        rest = relocate.rewrite_pycs(run, old or self.OLD, new or self.new, sys.executable, items)
        self.assertEqual(run.writes, 1)
        return rest, result

    def test_every_nested_code_object_names_the_new_path_and_the_header_is_kept(self):
        item = self.make('mod')
        header, before = load_pyc(item[1])
        self.assertGreaterEqual(len(list(code_objects(before))), 6)  # module, boom, Outer, method, inner, lambda...
        rest, result = self.rewrite([item])
        self.assertEqual((rest, result['errors']), ([], []))
        header_after, code = load_pyc(item[1])
        self.assertEqual(header_after, header)
        names = set(c.co_filename for c in code_objects(code))
        self.assertEqual(names, {os.path.join(self.pkg, 'mod.py')})
        self.assertNotIn(self.OLD.encode(), read(item[1]))
        self.assertEqual(stat.S_IMODE(os.stat(item[1]).st_mode), 0o640)
        self.assertEqual(sorted(os.listdir(os.path.dirname(item[1]))), [os.path.basename(item[1])])
        # Nothing else changed: the same code objects but for co_filename.
        self.assertEqual([(c.co_name, c.co_code, c.co_firstlineno) for c in code_objects(code)],
                         [(c.co_name, c.co_code, c.co_firstlineno) for c in code_objects(before)])

    def test_the_rewritten_pyc_is_imported_as_it_is_and_tracebacks_name_the_new_path(self):
        item = self.make('mod')
        self.rewrite([item])
        st = os.stat(item[1])
        env = dict((k, v) for k, v in os.environ.items() if not k.startswith('PYTHON'))
        p = subprocess.run([sys.executable, '-v', '-c', 'import sys; sys.path.insert(0, sys.argv[1]); import mod; mod.Outer().method()(); mod.caller()',
                            self.pkg], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=120)
        err = p.stderr.decode('utf-8', 'replace')
        self.assertIn("code object from '%s'" % item[1], err)  # loaded from the .pyc, not compiled again
        self.assertIn('File "%s", line 6, in boom' % os.path.join(self.pkg, 'mod.py'), err)
        self.assertNotIn(self.OLD, err)
        after = os.stat(item[1])
        self.assertEqual((after.st_ino, after.st_mtime), (st.st_ino, st.st_mtime))

    def test_a_hash_based_pyc_keeps_its_header(self):
        import py_compile
        item = self.make('hashed', invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
        header, _ = load_pyc(item[1])
        self.assertEqual(header[4:8], b'\x03\x00\x00\x00')
        self.assertEqual(self.rewrite([item])[0], [])
        header_after, code = load_pyc(item[1])
        self.assertEqual((header_after, code.co_filename), (header, item[2]))

    def test_what_cannot_be_rewritten_is_left_to_recompile_untouched(self):
        import py_compile
        stale = self.make('stale')
        os.utime(stale[2], (1, 1))  # the source changed since: the header no longer matches it
        other_hash = self.make('edited', invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        write(other_hash[2], MODULE + '# edited\n')
        garbage = self.make('garbage')
        write(garbage[1], b'not bytecode ' + self.OLD.encode())
        literal = self.make('literal', source="WHERE = '%s/data'\n" % self.OLD)  # the old path in a constant too
        good = self.make('good')
        before = dict((i[1], read(i[1])) for i in (stale, other_hash, garbage))
        rest, result = self.rewrite([stale, other_hash, garbage, literal, good])
        self.assertEqual([r[1] for r in rest], [stale[1], other_hash[1], garbage[1], literal[1]])
        self.assertEqual(dict((i[1], read(i[1])) for i in (stale, other_hash, garbage)), before)
        self.assertEqual(load_pyc(good[1])[1].co_filename, good[2])
        self.assertEqual(result['errors'], [])

    def test_a_new_path_below_the_old_one_is_not_rewritten_twice(self):
        old = os.path.dirname(self.new)  # the venv moves into a directory below where it was built
        done = self.make('done', dfile_root=self.new)  # already names the new path (a second run)
        todo = self.make('todo', dfile_root=old)
        self.assertEqual(load_pyc(todo[1])[1].co_filename, old + '/lib/demo/todo.py')
        rest, _ = self.rewrite([done, todo], old=old)
        self.assertEqual(rest, [])
        self.assertEqual(load_pyc(done[1])[1].co_filename, done[2])
        self.assertEqual(load_pyc(todo[1])[1].co_filename, todo[2])

    def test_an_interpreter_that_fails_leaves_everything_to_recompile(self):
        item = self.make('mod')
        run, result = new_result(dry=False)
        self.assertEqual(relocate.rewrite_pycs(run, self.OLD, self.new, '/nonexistent/python', [item]), [item])


class Main(TempDir):
    """main() in a child process, started as vdeploy starts it: bootstrap, payload, request on stdin."""

    def run_main(self, request):
        argv, prefix = protocol.child_command('relocate')
        env = dict((k, v) for k, v in os.environ.items() if not k.startswith('PYTHON') and k != relocate.KILL_AFTER_ENV)
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        out, err = p.communicate(prefix + json.dumps(request).encode('utf-8') + b'\n', timeout=300)
        self.assertEqual(len(out.splitlines()), 1, err.decode('utf-8', 'replace'))
        answer = json.loads(out.decode('utf-8'))
        support.check_contract('relocate.answer', answer)
        return p.returncode, answer

    def request(self, **fields):
        request = {'v': protocol.PROTOCOL, 'newPath': 'auto', 'oldPath': None, 'reinitialize': False, 'dryRun': False,
                   'holder': {'user': 'ci', 'host': 'test', 'pid': os.getpid(), 'startedAt': 'now', 'command': 'relocate'}}
        request.update(fields)
        support.check_contract('relocate.request', request)
        return request

    def test_relocates_a_moved_venv(self):
        built = os.path.join(self.root, 'build', 'venv')
        subprocess.check_call([sys.executable, '-m', 'venv', '--without-pip', built])
        moved = os.path.join(self.root, 'moved here', 'venv')
        shutil.copytree(built, moved, symlinks=True)
        code, answer = self.run_main(self.request(venv=moved))
        self.assertEqual(code, 0, answer)
        self.assertEqual(answer['v'], protocol.PROTOCOL)
        self.assertIsNone(answer['fatal'])
        self.assertEqual((answer['oldPath'], answer['newPath'], answer['markerSource']), (built, moved, 'bin/activate'))
        self.assertTrue(answer['complete'])
        self.assertEqual(answer['changes'][-1]['path'], 'bin/activate')
        self.assertEqual(relocate.detect_old(moved), (moved, 'bin/activate'))
        self.assertNotIn(built.encode(), read(os.path.join(moved, 'bin', 'activate')))
        self.assertIn('"command": "relocate"', read(os.path.join(moved, relocate.META_DIR, 'lock')).decode())
        code, again = self.run_main(self.request(venv=moved))
        self.assertEqual((code, again['alreadyRelocated'], again['changes']), (0, True, []))

    def test_a_fatal_answer_exits_3(self):
        code, answer = self.run_main(self.request(venv=self.root))
        self.assertEqual(code, 3)
        self.assertEqual(answer['fatal']['message'], 'not a virtualenv: it has no pyvenv.cfg')
        self.assertEqual(answer['fatal']['kind'], 'failed')
        self.assertEqual(answer['venv'], self.root)

    def test_a_request_of_another_protocol_is_a_fatal_answer(self):
        request = self.request(venv=self.root)
        request['v'] = 99
        argv, prefix = protocol.child_command('relocate')
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = p.communicate(prefix + json.dumps(request).encode('utf-8'), timeout=120)
        answer = json.loads(out.decode('utf-8'))
        support.check_contract('relocate.answer', answer)
        self.assertEqual(p.returncode, 3)
        self.assertIn('protocol 99', answer['fatal']['message'])


class Fixtures(unittest.TestCase):
    def test_fixtures_satisfy_the_contracts(self):
        support.check_contract('relocate.request', support.contract_fixture('relocate.request'))
        support.check_contract('relocate.answer', support.contract_fixture('relocate.answer'))
        support.check_contract('relocate.answer', support.contract_fixture('relocate.answer.fatal'))


if __name__ == '__main__':
    unittest.main()
