"""interpreter_facts: run as the probe runs it (`PYTHON -I -c SOURCE`, standalone) on this interpreter
and on venvs made from it, and where `packaging.tags` is found, fallbacks included."""
import collections
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import support  # noqa: F401
from vdeploy_remote import interpreter_facts

MARKERS = {
    'implementation_name', 'implementation_version', 'os_name', 'platform_machine', 'platform_release',
    'platform_system', 'platform_version', 'python_full_version', 'platform_python_implementation',
    'python_version', 'sys_platform',
}
TAG = re.compile(r'^[^-\s]+-[^-\s]+-[^-\s]+$')


def source():
    with open(interpreter_facts.__file__, encoding='utf-8') as f:
        return f.read()


def run(argv):
    """(returncode, stdout, stderr) of a command, text."""
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True, cwd='/')
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def facts_of(python):
    """What the probe gets from `python -I -c SOURCE`: the last line of stdout, parsed."""
    code, out, err = run([python, '-I', '-c', source()])
    if code != 0:
        raise AssertionError('%s failed: %s' % (python, err))
    return json.loads([line for line in out.splitlines() if line.strip()][-1])


def call(function_code, *flags):
    """Runs `function_code` (which prints JSON) in a fresh `python -I FLAGS` with interpreter_facts imported as f."""
    code = 'import json, sys\nsys.path.insert(0, %r)\nfrom vdeploy_remote import interpreter_facts as f\n%s' % (
        support.PYTHON_DIR, function_code)
    returncode, out, err = run([sys.executable, '-I'] + list(flags) + ['-c', code])
    if returncode != 0:
        raise AssertionError(err)
    return json.loads(out.strip().splitlines()[-1])


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix='vdeploy-interpreter-facts-')
        self.addCleanup(shutil.rmtree, self.root)

    def write(self, relative, text=''):
        path = os.path.join(self.root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(text)
        return path


class RunningInterpreterTest(unittest.TestCase):
    def check_facts(self, facts):
        self.assertNotIn('error', facts)
        self.assertEqual(set(facts), {'version', 'markers', 'supportedTags', 'files'})
        self.assertEqual(set(facts['markers']), MARKERS)
        self.assertTrue(facts['supportedTags'])
        for tag in facts['supportedTags']:
            self.assertRegex(tag, TAG)
        for path in facts['files']:
            self.assertTrue(os.path.isabs(path) and os.path.exists(path), path)

    def test_this_interpreter_as_the_probe_runs_it(self):
        facts = facts_of(sys.executable)
        self.check_facts(facts)
        self.assertEqual(facts['version'], platform.python_version())
        self.assertEqual(facts['markers']['python_version'], '%d.%d' % sys.version_info[:2])
        self.assertIn('py3-none-any', facts['supportedTags'])
        self.assertIn('py%d%d-none-any' % sys.version_info[:2], facts['supportedTags'])

    def test_marker_environment_in_process(self):
        markers = interpreter_facts.marker_environment()
        self.assertEqual(set(markers), MARKERS)
        self.assertEqual(markers['python_full_version'], platform.python_version())
        self.assertEqual(markers['sys_platform'], sys.platform)
        self.assertEqual(markers['implementation_name'], sys.implementation.name)

    def test_full_version(self):
        info = collections.namedtuple('info', 'major minor micro releaselevel serial')
        self.assertEqual(interpreter_facts.full_version(info(3, 13, 0, 'final', 0)), '3.13.0')
        self.assertEqual(interpreter_facts.full_version(info(3, 14, 0, 'beta', 2)), '3.14.0b2')

    def test_pip_wheels_newest_first(self):
        versions = [re.match(r'pip-([0-9.]+)', os.path.basename(w)).group(1) for w in interpreter_facts.pip_wheels()]
        keys = [[int(p) for p in v.strip('.').split('.') if p] for v in versions]
        self.assertEqual(keys, sorted(keys, reverse=True))


class VenvTest(TempDirTest):
    def make_venv(self, *flags):
        venv = os.path.join(self.root, 'venv')
        code, _, err = run([sys.executable, '-m', 'venv'] + list(flags) + [venv])
        self.assertEqual(code, 0, err)
        return os.path.join(venv, 'bin', 'python')

    def test_a_venv_without_pip(self):
        facts = facts_of(self.make_venv('--without-pip'))
        self.assertNotIn('error', facts)
        self.assertTrue(facts['supportedTags'])
        self.assertEqual(facts['version'], platform.python_version())

    @unittest.skipUnless(sys.version_info[:2] == (3, 6), "python3.6's venv has pip 18.1, whose packaging has no tags")
    def test_a_python36_venv_with_its_own_old_pip(self):
        python = self.make_venv()
        facts = facts_of(python)
        self.assertNotIn('error', facts)
        self.assertTrue(facts['supportedTags'])
        self.assertFalse(any(f.startswith(self.root) for f in facts['files']), facts['files'])

    def test_base_site_packages_of_a_venv(self):
        python = self.make_venv('--without-pip')
        code = ('import sys\nsys.path.insert(0, %r)\nfrom vdeploy_remote import interpreter_facts as f\n'
                'import json\nprint(json.dumps([f.base_site_packages(), sys.base_prefix]))' % support.PYTHON_DIR)
        status, out, err = run([python, '-I', '-c', code])
        self.assertEqual(status, 0, err)
        found, base = json.loads(out)
        name = 'python%d.%d' % sys.version_info[:2]
        candidates = [os.path.join(base, lib, name, 'site-packages') for lib in ('lib64', 'lib')]
        expected = []
        for c in candidates:
            if os.path.isdir(c) and os.path.realpath(c) not in expected:
                expected.append(os.path.realpath(c))
        self.assertEqual(found, expected)


class ImportTagsTest(TempDirTest):
    """With -S nothing of site-packages is importable, so only the sources passed in count."""

    STUB = 'def sys_tags():\n    return iter(["py3-none-stub"])\n'

    def stub_pip(self, base):
        for package in ('pip', 'pip/_vendor', 'pip/_vendor/packaging'):
            self.write(os.path.join(base, package, '__init__.py'))
        return self.write(os.path.join(base, 'pip/_vendor/packaging/tags.py'), self.STUB)

    def test_the_base_site_packages_fallback_after_the_wheels(self):
        tags = self.stub_pip('base')
        result = call('t, src = f.import_tags([%r], [%r])\nprint(json.dumps([src, list(t.sys_tags())]))'
                      % (os.path.join(self.root, 'no-such.whl'), os.path.join(self.root, 'base')), '-S')
        self.assertEqual(result, [tags, ['py3-none-stub']])

    def test_a_plain_packaging_module_in_the_base(self):
        self.write('base/packaging/__init__.py')
        tags = self.write('base/packaging/tags.py', self.STUB)
        self.write('old/pip/__init__.py')  # an old pip: no pip._vendor.packaging.tags
        bases = [os.path.join(self.root, 'old'), os.path.join(self.root, 'base')]
        result = call('t, src = f.import_tags([], %r)\nprint(json.dumps([src, sys.path[0] == %r]))' % (bases, bases[1]), '-S')
        self.assertEqual(result, [tags, True])

    def test_nothing_found_is_an_error_answer(self):
        result = call('f.pip_wheels = lambda: []\nf.base_site_packages = lambda: []\nprint(json.dumps(f.facts()))', '-S')
        self.assertEqual(set(result), {'error'})
        self.assertIn('found none', result['error'])
        self.assertIn('install pip 19.3 or newer', result['error'])


if __name__ == '__main__':
    unittest.main()
