"""probe: end to end as vdeploy starts it (bootstrap + payload on stdin, protocol.child_command) on trees
in temporary directories, and its parts in process."""
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

import support
import vdeploy_remote
from vdeploy_remote import interpreter_facts, probe, protocol


def write(path, data=''):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(data)
    return path


def run_probe(request):
    """(exit code, the answer or None, stderr) of the probe started as vdeploy starts it."""
    argv, prefix = protocol.child_command('probe')
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd='/')
    out, err = process.communicate(prefix + json.dumps(request).encode('utf-8') + b'\n', timeout=120)
    lines = [line for line in out.decode('utf-8').splitlines() if line.strip()]
    return process.returncode, json.loads(lines[-1]) if lines else None, err.decode('utf-8', 'replace')


class ProbeTreeTest(unittest.TestCase):
    """One host's worth of paths: two venvs of this python, a missing one, things that are not venvs, a wheel cache."""

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix='vdeploy-probe-')
        cls.real = os.path.realpath(sys.executable)
        for name in ('a', 'b'):
            venv = os.path.join(cls.root, name)
            subprocess.check_call([sys.executable, '-m', 'venv', '--without-pip', venv])
        site = os.path.join(cls.root, 'a', 'lib', 'python%d.%d' % sys.version_info[:2], 'site-packages')
        write(os.path.join(site, 'six-1.16.0.dist-info', 'METADATA'), 'Name: six\nVersion: 1.16.0\n')
        write(os.path.join(cls.root, 'a', '.vdeploy', 'history.jsonl'), '{"at":"2026-01-01"}\n{"torn\n')
        write(os.path.join(cls.root, 'file'), 'x')
        cache = os.path.join(cls.root, 'wheels')
        for name in ('a-1.0-py3-none-any.whl', '.b-1.0-py3-none-any.whl', 'notes.txt'):
            write(os.path.join(cache, name), 'x')
        os.makedirs(os.path.join(cache, 'dir-1.0-py3-none-any.whl'))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root)

    def request(self, **over):
        request = {
            'v': 1,
            'cacheDir': os.path.join(self.root, 'wheels'),
            'venvs': [
                {'path': os.path.join(self.root, 'a'), 'python': 'python3'},
                {'path': os.path.join(self.root, 'b'), 'python': 'python3'},
                {'path': os.path.join(self.root, 'new'), 'python': sys.executable},
                {'path': os.path.join(self.root, 'new2'), 'python': 'no-such-python-vdeploy'},
                {'path': os.path.join(self.root, 'file'), 'python': 'python3'},
            ],
            'interpreters': True,
        }
        request.update(over)
        return request

    def probe(self, request):
        code, answer, err = run_probe(request)
        self.assertEqual(code, 0, err)
        return answer

    def test_a_fresh_probe(self):
        answer = self.probe(self.request(known=[]))
        self.assertEqual(answer['v'], 1)
        self.assertEqual(answer['cacheDir'], os.path.join(self.root, 'wheels'))
        self.assertEqual(answer['cachedWheels'], ['a-1.0-py3-none-any.whl'])
        self.assertEqual(answer['interpretersRun'], 1)
        # One interpreter, shared by both venvs and the missing one: they have one realpath.
        [facts] = answer['interpreters']
        self.assertEqual(facts['python'], self.real)
        self.assertTrue(facts['supportedTags'])
        self.assertEqual(len(facts['fingerprint']), 32)
        self.assertEqual(facts['quick'][0], self.real)
        a, b, new, new2, not_a_venv = answer['venvs']
        self.assertEqual(a['installed'], [{'name': 'six', 'version': '1.16.0'}])
        self.assertEqual(a['history'], [{'at': '2026-01-01'}])
        self.assertEqual([a['interpreter'], b['interpreter'], new['interpreter']], [0, 0, 0])
        self.assertEqual(new['state'], 'missing')
        self.assertEqual(new2, {'path': os.path.join(self.root, 'new2'), 'state': 'missing', 'interpreter': None,
                                'interpreterError': "no-such-python-vdeploy not found on the login user's PATH"})
        self.assertEqual(not_a_venv['detail'], 'is a file, not a venv directory')
        self.assertIsInstance(answer['probeMs'], float)

    def test_a_fresh_probe_keeps_its_contract(self):
        support.check_contract('probe.answer', self.probe(self.request()))

    def test_known_interpreters_are_answered_by_fingerprint(self):
        facts = self.probe(self.request())['interpreters'][0]
        known = [{'python': facts['python'], 'fingerprint': facts['fingerprint'], 'files': facts['files']}]
        answer = self.probe(self.request(known=known))
        self.assertEqual(answer['interpretersRun'], 0)
        self.assertEqual(answer['interpreters'], [{'python': self.real, 'cached': facts['fingerprint'], 'quick': facts['quick']}])
        support.check_contract('probe.answer', answer)
        support.check_contract('probe.request', self.request(known=known))
        stale = [dict(known[0], fingerprint='0' * 32)]
        self.assertEqual(self.probe(self.request(known=stale))['interpretersRun'], 1)

    def test_installed_sets_only(self):
        answer = self.probe(self.request(cacheDir=None, interpreters=False))
        self.assertNotIn('cacheDir', answer)
        self.assertEqual([answer['interpreters'], answer['interpretersRun']], [[], 0])
        self.assertNotIn('interpreter', answer['venvs'][0])

    def test_a_cache_that_is_a_file_fails_the_whole_host(self):
        cache = os.path.join(self.root, 'file', 'wheels')
        answer = self.probe(self.request(cacheDir=cache))
        self.assertEqual(answer, {'v': 1, 'error': 'wheel cache %s: %s is not a directory' % (cache, os.path.join(self.root, 'file'))})
        support.check_contract('probe.answer', answer)

    def test_a_request_of_another_protocol_is_refused(self):
        code, answer, err = run_probe(self.request(v=2))
        self.assertEqual([code, answer], [2, None])
        self.assertIn('vdeploy probe: the request speaks protocol 2', err)


class InterpreterTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix='vdeploy-probe-unit-')
        self.addCleanup(shutil.rmtree, self.root)

    def script(self, name, body):
        path = write(os.path.join(self.root, name), '#!/bin/sh\n' + body)
        os.chmod(path, stat.S_IRWXU)
        return path

    def finish(self, executable):
        process, error = probe.start_interpreter(executable, 'pass')
        if process is None:
            return error
        return probe.finish_interpreter(executable, process)[1]

    def test_interpreters_that_give_no_facts(self):
        missing = os.path.join(self.root, 'nope')
        # (Python 3.6 adds the file name to strerror.)
        self.assertTrue(self.finish(missing).startswith('%s cannot run: No such file or directory' % missing))
        crash = self.script('crash', 'echo "Traceback" >&2\necho "boom" >&2\nexit 3\n')
        self.assertEqual(self.finish(crash), '%s failed (exit 3): boom' % crash)
        garbage = self.script('garbage', 'echo "not json"\n')
        self.assertEqual(self.finish(garbage), '%s printed no facts: not json' % garbage)
        error = self.script('error', 'echo \'{"error": "no packaging"}\'\n')
        self.assertEqual(self.finish(error), 'no packaging')

    def test_the_source_comes_from_the_payload_or_the_file(self):
        with open(interpreter_facts.__file__, encoding='utf-8') as f:
            self.assertEqual(probe.interpreter_source(), f.read())
        vdeploy_remote.PAYLOAD = {'modules': {'interpreter_facts': 'print(1)'}}
        try:
            self.assertEqual(probe.interpreter_source(), 'print(1)')
        finally:
            del vdeploy_remote.PAYLOAD

    def test_a_venv_with_pip_is_the_one_run(self):
        target = self.script('python3', 'exit 0\n')
        venvs = []
        for name in ('nopip', 'pip'):
            os.makedirs(os.path.join(self.root, name, 'bin'))
            os.symlink(target, os.path.join(self.root, name, 'bin', 'python'))
            venvs.append({'path': os.path.join(self.root, name), 'python': 'python3'})
        facts = [{'state': 'venv', 'installed': []}, {'state': 'venv', 'installed': [{'name': 'Pip', 'version': '24'}]}]
        [group] = probe.group_interpreters(venvs, facts)
        self.assertEqual(group['real'], target)
        self.assertEqual(group['run'], os.path.join(self.root, 'pip', 'bin', 'python'))
        self.assertEqual(group['members'], facts)

    def test_known_entries_with_malformed_files_are_ignored(self):
        request = {'known': [{'python': '/a', 'files': ['x']}, {'python': '/b', 'files': 'x'}, {'python': '/c', 'files': [1]}, 'x']}
        self.assertEqual(sorted(probe.known_interpreters(request)), ['/a'])

    def test_the_fingerprint_changes_with_the_file(self):
        path = write(os.path.join(self.root, 'f'), 'a')
        system = probe.system_identity()
        before = probe.fingerprint(path, [], system)
        self.assertEqual(probe.fingerprint(path, [], system), before)
        write(path, 'ab')
        self.assertNotEqual(probe.fingerprint(path, [], system), before)


if __name__ == '__main__':
    unittest.main()
