"""vdeploy_remote.host_apply: the control-line reader, upload finalization, the venv loop with a stand-in
apply, and main() end to end in a child process started as vdeploy starts it: two venvs (each applied
by apply_venv in its own child), "uploaded" and "stop" on stdin, the host reload."""
import base64
import hashlib
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from unittest import mock

import support
from vdeploy_remote import host_apply, protocol, venv_facts

XY = '%d.%d' % sys.version_info[:2]


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode('utf-8'))


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def apply_input(venv, **over):
    base = {
        'venv': venv, 'create': None, 'lockWaitSeconds': 0,
        'holder': {'user': 'test', 'host': 'here', 'pid': 1, 'startedAt': '2026-01-01T00:00:00.000Z'},
        'install': None, 'uninstall': [], 'uninstallKeys': [], 'expect': {}, 'migrate': None, 'unmigrate': [],
        'reload': None, 'healthcheck': None, 'history': {'time': '2026-01-01T00:00:00.000Z', 'action': 'deploy'},
    }
    base.update(over)
    return base


class TempDir(unittest.TestCase):
    def setUp(self):
        self.root = os.path.realpath(tempfile.mkdtemp(prefix='vdeploy-test-host-apply-'))
        self.addCleanup(shutil.rmtree, self.root, True)

    def venv(self, name):
        """A venv with nothing to do: apply_venv still takes the lock, checks the empty set, records."""
        path = os.path.join(self.root, name)
        write(os.path.join(path, 'pyvenv.cfg'), 'home = /usr/bin\nversion = %s.0\n' % XY)
        return path


class ControlLines(unittest.TestCase):
    def pipe(self):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        return host_apply.Control(r), w

    def test_lines_arrive_in_pieces_and_none_is_there_without_waiting(self):
        control, w = self.pipe()
        self.assertIsNone(control.read_line(False))
        os.write(w, b'{"v": 1}\nupl')
        self.assertEqual(control.read_line(True), '{"v": 1}')
        self.assertIsNone(control.read_line(False))
        os.write(w, b'oaded\n')
        self.assertEqual(control.read_line(False), 'uploaded')
        self.assertFalse(control.stopping())
        os.write(w, b'noise\nstop\n')
        self.assertTrue(control.stopping())
        os.close(w)

    def test_the_end_of_the_input_means_stop(self):
        control, w = self.pipe()
        os.close(w)
        self.assertTrue(control.stopping())
        self.assertIsNone(control.read_line(True))


class Uploads(TempDir):
    def test_good_uploads_move_into_place_and_bad_ones_are_deleted(self):
        good = {'tmp': os.path.join(self.root, '.g.tmp'), 'final': os.path.join(self.root, 'g.whl'), 'sha256': sha256(b'good')}
        bad = {'tmp': os.path.join(self.root, '.b.tmp'), 'final': os.path.join(self.root, 'b.whl'), 'sha256': sha256(b'x')}
        gone = {'tmp': os.path.join(self.root, '.n.tmp'), 'final': os.path.join(self.root, 'n.whl'), 'sha256': sha256(b'x')}
        write(good['tmp'], b'good')
        write(bad['tmp'], b'bad!')
        bad_list, total = host_apply.finalize([good, bad, gone])
        self.assertEqual(total, 8)
        self.assertEqual([b['final'] for b in bad_list], [bad['final'], gone['final']])
        self.assertEqual(bad_list[0]['got'], sha256(b'bad!'))
        self.assertEqual(sorted(os.listdir(self.root)), ['g.whl'])

    def test_a_good_upload_is_readable_by_everyone_whatever_the_umask(self):
        good = {'tmp': os.path.join(self.root, '.g.tmp'), 'final': os.path.join(self.root, 'g.whl'), 'sha256': sha256(b'good')}
        write(good['tmp'], b'good')
        os.chmod(good['tmp'], 0o600)
        host_apply.finalize([good])
        self.assertEqual(os.stat(good['final']).st_mode & 0o777, 0o644)

    def test_the_login_user_removes_a_damaged_wheel_before_a_venv_of_another_user_is_applied(self):
        cache = os.path.join(self.root, 'cache')
        write(os.path.join(cache, 'a-1.0-py3-none-any.whl'), b'damaged')
        write(os.path.join(cache, 'b-1.0-py3-none-any.whl'), b'good')
        wheels = [{'filename': 'a-1.0-py3-none-any.whl', 'sha256': sha256(b'a')},
                  {'filename': 'b-1.0-py3-none-any.whl', 'sha256': sha256(b'good')}]
        install = {'requirements': '', 'cacheDir': cache, 'wheels': wheels}
        # Under the login user's own name the child removes it itself: left alone here.
        host_apply.drop_damaged_wheels({'sudo': [], 'input': apply_input('/v', install=install)})
        self.assertEqual(sorted(os.listdir(cache)), ['a-1.0-py3-none-any.whl', 'b-1.0-py3-none-any.whl'])
        host_apply.drop_damaged_wheels({'sudo': ['sudo', '-n', '-u', 'app'], 'input': apply_input('/v', install=install)})
        self.assertEqual(sorted(os.listdir(cache)), ['b-1.0-py3-none-any.whl'])

    def test_the_childs_answer_is_its_last_json_line(self):
        self.assertEqual(host_apply.last_json_object(b'hello\n{"outcome": "deployed"}\n\n'), {'outcome': 'deployed'})
        self.assertIsNone(host_apply.last_json_object(b'{"outcome": "deployed"}\nTraceback\n'))
        self.assertIsNone(host_apply.last_json_object(b'[1]\n'))
        self.assertIsNone(host_apply.last_json_object(b''))


class Loop(TempDir):
    """run() with a stand-in for the per-venv child."""

    def setUp(self):
        TempDir.setUp(self)
        self.lines = []
        patcher = mock.patch.object(protocol, 'answer', self.lines.append)
        patcher.start()
        self.addCleanup(patcher.stop)
        patcher = mock.patch.object(protocol, 'progress', lambda obj: None)
        patcher.start()
        self.addCleanup(patcher.stop)
        r, self.w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(lambda: self.w is not None and os.close(self.w))
        self.control = host_apply.Control(r)

    def fake_apply(self, outcomes):
        def apply(index, venv):
            return {'venv': index, 'output': {'outcome': outcomes[index]}, 'exitCode': 0, 'ms': 1}
        return apply

    def test_halts_after_a_venv_that_did_not_deploy_and_skips_the_reload(self):
        marker = os.path.join(self.root, 'reloaded')
        request = {'venvs': [{}, {}, {}], 'reload': 'touch %s' % marker, 'reloadAnyway': True}
        done = host_apply.run(request, self.control, self.fake_apply(['deployed', 'failed', 'deployed']))
        self.assertEqual(done, {'started': 2, 'stoppedBy': 'halted'})
        self.assertEqual([line['venv'] for line in self.lines], [0, 1])
        self.assertFalse(os.path.exists(marker))

    def test_reloads_once_after_a_deploy(self):
        marker = os.path.join(self.root, 'reloaded')
        done = host_apply.run({'venvs': [{}, {}], 'reload': 'echo x >> %s; echo oops >&2; exit 3' % marker},
                              self.control, self.fake_apply(['deployed', 'deployed']))
        self.assertEqual(done, {'started': 2, 'stoppedBy': None})
        reload = self.lines[-1]['reload']
        self.assertEqual((reload['ok'], reload['exitCode'], reload['tail']), (False, 3, 'oops'))
        with open(marker) as f:
            self.assertEqual(f.read(), 'x\n')

    def test_stop_between_venvs(self):
        def apply(index, venv):
            os.write(self.w, b'stop\n')
            return {'venv': index, 'output': {'outcome': 'deployed'}, 'exitCode': 0, 'ms': 1}

        self.assertEqual(host_apply.run({'venvs': [{}, {}]}, self.control, apply), {'started': 1, 'stoppedBy': 'stop'})

    def fake_files(self, ok, calls=None):
        def files_apply(spec):
            (calls if calls is not None else []).append(spec)
            result = None if ok is None else {'ok': ok}
            return {'files': result, 'exitCode': 0 if ok else 1, 'ms': 1}
        return files_apply

    def test_files_after_the_venvs_and_before_the_reload(self):
        marker = os.path.join(self.root, 'reloaded')
        calls = []
        spec = {'sudo': False, 'request': {'op': 'apply'}}
        request = {'venvs': [{}, {}], 'reload': 'touch %s' % marker, 'files': spec}
        done = host_apply.run(request, self.control, self.fake_apply(['deployed', 'deployed']), self.fake_files(True, calls))
        self.assertEqual(done, {'started': 2, 'stoppedBy': None})
        self.assertEqual(calls, [spec])
        self.assertEqual([[k for k in ('venv', 'files', 'reload') if k in line] for line in self.lines],
                         [['venv'], ['venv'], ['files'], ['reload']])
        self.assertTrue(os.path.exists(marker))

    def test_files_alone_on_a_host(self):
        calls = []
        done = host_apply.run({'venvs': [], 'reload': None, 'files': {'sudo': True, 'request': {}}}, self.control,
                              self.fake_apply([]), self.fake_files(True, calls))
        self.assertEqual((done, len(calls), list(self.lines[0])), ({'started': 0, 'stoppedBy': None}, 1, ['files', 'exitCode', 'ms']))

    def test_files_that_failed_or_gave_no_answer_skip_the_reload(self):
        marker = os.path.join(self.root, 'reloaded')
        for ok in (False, None):
            del self.lines[:]
            request = {'venvs': [{}], 'reload': 'touch %s' % marker, 'reloadAnyway': True, 'files': {'sudo': False, 'request': {}}}
            done = host_apply.run(request, self.control, self.fake_apply(['deployed']), self.fake_files(ok))
            self.assertEqual(done, {'started': 1, 'stoppedBy': None})
            self.assertEqual([list(line)[0] for line in self.lines], ['venv', 'files'])
            self.assertFalse(os.path.exists(marker))

    def test_no_files_after_a_halted_venv_or_a_stop(self):
        calls = []
        request = {'venvs': [{}], 'reload': None, 'files': {'sudo': False, 'request': {}}}
        done = host_apply.run(request, self.control, self.fake_apply(['failed']), self.fake_files(True, calls))
        self.assertEqual((done['stoppedBy'], calls), ('halted', []))

        def apply(index, venv):
            os.write(self.w, b'stop\n')
            return {'venv': index, 'output': {'outcome': 'deployed'}, 'exitCode': 0, 'ms': 1}

        done = host_apply.run(request, self.control, apply, self.fake_files(True, calls))
        self.assertEqual((done, calls), ({'started': 1, 'stoppedBy': 'stop'}, []))

    def held_apply(self, events, outcomes, resumed=None):
        """A stand-in that holds (returns its resume) when told to, as apply_one does; outcomes[i]: the
        outcome of venv i (resumed[i]: after the hold, when it differs)."""
        def apply(index, venv):
            line = lambda outcome: {'venv': index, 'output': {'outcome': outcome}, 'exitCode': 0, 'ms': 1}
            if not venv['input'].get('holdBeforeReload'):
                events.append('apply %d' % index)
                return line(outcomes[index])
            events.append('hold %d' % index)

            def resume():
                events.append('go %d' % index)
                return line((resumed or {}).get(index, outcomes[index]))
            return resume
        return apply

    def recording_files(self, events, ok=True):
        def files_apply(spec):
            events.append('files')
            return {'files': {'ok': ok}, 'exitCode': 0 if ok else 1, 'ms': 1}
        return files_apply

    def kinds(self):
        return [next(('%s %s' % (k, line[k]) if k == 'venv' else k) for k in ('venv', 'files', 'reload') if k in line)
                for line in self.lines]

    def test_with_files_a_venv_with_a_reload_or_health_check_holds_until_the_files_are_applied(self):
        events = []
        venvs = [{'input': {'reload': 'r'}}, {'input': {}}, {'input': {'healthcheck': {'command': 'true'}}}]
        request = {'venvs': venvs, 'reload': 'true', 'files': {'sudo': False, 'request': {}}}
        done = host_apply.run(request, self.control, self.held_apply(events, ['deployed'] * 3), self.recording_files(events))
        self.assertEqual(done, {'started': 3, 'stoppedBy': None})
        self.assertEqual(events, ['hold 0', 'apply 1', 'hold 2', 'files', 'go 0', 'go 2'])
        # venv 1's line waited for venv 0's: the venv lines stay in venv order.
        self.assertEqual(self.kinds(), ['files', 'venv 0', 'venv 1', 'venv 2', 'reload'])
        self.assertNotIn('holdBeforeReload', venvs[0]['input'])  # the request is left as it came

    def test_without_files_nothing_holds(self):
        events = []
        request = {'venvs': [{'input': {'reload': 'r'}}], 'reload': None}
        host_apply.run(request, self.control, self.held_apply(events, ['deployed']))
        self.assertEqual(events, ['apply 0'])

    def test_a_venv_failing_before_its_hold_skips_the_files_and_lets_the_held_ones_go_first(self):
        events = []
        venvs = [{'input': {'reload': 'r'}}, {'input': {}}, {'input': {'reload': 'r'}}]
        marker = os.path.join(self.root, 'reloaded')
        request = {'venvs': venvs, 'reload': 'touch %s' % marker, 'reloadAnyway': True, 'files': {'sudo': False, 'request': {}}}
        done = host_apply.run(request, self.control, self.held_apply(events, ['deployed', 'failed', 'deployed']), self.recording_files(events))
        self.assertEqual(done, {'started': 2, 'stoppedBy': 'halted'})
        self.assertEqual(events, ['hold 0', 'apply 1', 'go 0'])
        self.assertEqual(self.kinds(), ['venv 0', 'venv 1'])
        self.assertFalse(os.path.exists(marker))

    def test_a_held_venv_that_fails_its_reload_does_not_keep_the_others_from_finishing(self):
        events = []
        venvs = [{'input': {'reload': 'r'}}, {'input': {'reload': 'r'}}]
        marker = os.path.join(self.root, 'reloaded')
        request = {'venvs': venvs, 'reload': 'touch %s' % marker, 'reloadAnyway': True, 'files': {'sudo': False, 'request': {}}}
        done = host_apply.run(request, self.control, self.held_apply(events, ['deployed', 'deployed'], {0: 'failed'}),
                              self.recording_files(events))
        self.assertEqual(done, {'started': 2, 'stoppedBy': 'halted'})
        self.assertEqual(events, ['hold 0', 'hold 1', 'files', 'go 0', 'go 1'])
        self.assertEqual(self.kinds(), ['files', 'venv 0', 'venv 1'])
        self.assertEqual([line['output']['outcome'] for line in self.lines[1:]], ['failed', 'deployed'])
        self.assertFalse(os.path.exists(marker))  # the host reload waits, as after any halted venv

    def test_a_stop_while_venvs_hold_skips_the_files_and_lets_them_go(self):
        events = []
        apply = self.held_apply(events, ['deployed', 'deployed'])

        def stopping(index, venv):
            os.write(self.w, b'stop\n')
            return apply(index, venv)

        request = {'venvs': [{'input': {'reload': 'r'}}, {'input': {'reload': 'r'}}], 'reload': None, 'files': {'sudo': False, 'request': {}}}
        done = host_apply.run(request, self.control, stopping, self.recording_files(events))
        self.assertEqual(done, {'started': 1, 'stoppedBy': 'stop'})
        self.assertEqual(events, ['hold 0', 'go 0'])
        self.assertEqual(self.kinds(), ['venv 0'])

    def test_a_failed_upload_applies_nothing(self):
        tmp = os.path.join(self.root, '.x.tmp')
        write(tmp, b'half')
        os.write(self.w, b'stop\n')
        request = {'uploads': [{'tmp': tmp, 'final': tmp + '.whl', 'sha256': sha256(b'x')}], 'waitForUploads': True, 'venvs': [{}]}
        self.assertEqual(host_apply.run(request, self.control, self.fake_apply(['deployed'])), {'started': 0, 'stoppedBy': 'push'})
        self.assertEqual(os.listdir(self.root), [])
        self.assertEqual(self.lines, [])


class Main(TempDir):
    """main() in a child process; each venv's apply in a grandchild, as on a host."""

    def start(self, request):
        argv, prefix = protocol.child_command('host_apply')
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.stdout.close)
        self.addCleanup(proc.stderr.close)
        proc.stdin.write(prefix + json.dumps(dict(request, v=protocol.PROTOCOL)).encode() + b'\n')
        proc.stdin.flush()
        return proc

    def finish(self, proc):
        """Its lines and progress once it ends (stdin stays open till then: its end would mean "stop")."""
        proc.stdin.flush()
        lines = [json.loads(line) for line in proc.stdout.read().decode().splitlines()]
        proc.stdin.close()
        err = proc.stderr.read().decode()
        self.assertEqual(proc.wait(), 0, err)
        for line in lines:
            support.check_contract('host_apply.line', line)
            self.assertEqual(line['v'], 1)
        progress = [json.loads(l[len('@vdeploy '):]) for l in err.splitlines() if l.startswith('@vdeploy ')]
        for p in progress:
            support.check_contract('host_apply.progress', p)
        return lines, progress

    def wait_for(self, stream, text, seconds=30):
        """Reads stderr lines until one contains text (what it read is returned)."""
        seen, deadline = [], time.time() + seconds
        while time.time() < deadline:
            if select.select([stream], [], [], 1)[0]:
                line = stream.readline().decode()
                seen.append(line)
                if text in line:
                    return seen
        self.fail('no %r on stderr: %r' % (text, seen))

    def test_uploads_then_two_venvs_then_the_reload(self):
        a, b = self.venv('a'), self.venv('b')
        cache = os.path.join(self.root, 'cache')
        tmp = os.path.join(cache, '.w.whl.tmp')
        marker = os.path.join(self.root, 'reloaded')
        request = {'uploads': [{'tmp': tmp, 'final': os.path.join(cache, 'w.whl'), 'sha256': sha256(b'wheel')}],
                   'waitForUploads': True, 'venvs': [{'sudo': [], 'input': apply_input(a)}, {'sudo': [], 'input': apply_input(b, reload='true')}],
                   'reload': 'echo x >> "%s"' % marker, 'reloadAnyway': False}
        support.check_contract('host_apply.request', dict(request, v=1))
        proc = self.start(request)
        time.sleep(0.3)
        self.assertEqual(proc.poll(), None)  # waiting for "uploaded"
        write(tmp, b'wheel')
        proc.stdin.write(b'uploaded\n')
        lines, progress = self.finish(proc)
        kinds = [[k for k in ('push', 'venv', 'reload', 'done') if k in line] for line in lines]
        self.assertEqual(kinds, [['push'], ['venv'], ['venv'], ['reload'], ['done']])
        self.assertEqual(lines[0]['push']['bad'], [])
        self.assertEqual([(l['venv'], l['output']['outcome'], l['output']['v']) for l in lines[1:3]], [(0, 'deployed', 1), (1, 'deployed', 1)])
        self.assertEqual(lines[2]['output']['steps'][0]['name'], 'reload')
        self.assertEqual(lines[-1]['done'], {'started': 2, 'stoppedBy': None})
        self.assertEqual([p for p in progress if p.get('phase') == 'venv-start'], [{'venv': 0, 'phase': 'venv-start'}, {'venv': 1, 'phase': 'venv-start'}])
        self.assertIn({'venv': 1, 'step': 'reload', 'phase': 'end'}, progress)
        self.assertEqual(progress[-1], {'reload': 'start'})
        with open(marker) as f:
            self.assertEqual(f.read(), 'x\n')
        self.assertEqual([len(venv_facts.read_history(v)) for v in (a, b)], [1, 1])

    def test_stop_while_a_venv_applies_lets_it_finish_and_starts_no_other(self):
        a, b = self.venv('a'), self.venv('b')
        request = {'uploads': [], 'waitForUploads': False, 'reload': None, 'reloadAnyway': False,
                   'venvs': [{'sudo': [], 'input': apply_input(a, reload='sleep 0.5')}, {'sudo': [], 'input': apply_input(b)}]}
        proc = self.start(request)
        self.wait_for(proc.stderr, '"venv-start"')
        proc.stdin.write(b'stop\n')
        proc.stdin.flush()
        lines, _ = self.finish(proc)
        self.assertEqual(lines[0]['output']['outcome'], 'deployed')
        self.assertEqual(lines[-1]['done'], {'started': 1, 'stoppedBy': 'stop'})
        self.assertEqual([len(venv_facts.read_history(v)) for v in (a, b)], [1, 0])

    def test_a_venv_whose_child_cannot_start_halts_with_its_stderr(self):
        request = {'uploads': [], 'waitForUploads': False, 'reload': None, 'reloadAnyway': False,
                   'venvs': [{'sudo': ['sh', '-c', 'echo "sudo: a password is required" >&2; exit 1', 'sudo'],
                              'input': apply_input(self.venv('a'))}, {'sudo': [], 'input': apply_input(self.venv('b'))}]}
        lines, _ = self.finish(self.start(request))
        self.assertEqual(lines[0]['output'], None)
        self.assertEqual((lines[0]['exitCode'], lines[0]['stderrTail']), (1, 'sudo: a password is required'))
        self.assertEqual(lines[-1]['done'], {'started': 1, 'stoppedBy': 'halted'})

    def poll(self, condition, what, seconds=60):
        deadline = time.time() + seconds
        while not condition():
            if time.time() > deadline:
                self.fail('waited %ds for %s' % (seconds, what))
            time.sleep(0.05)

    def files_request(self, handlers, path):
        return {'sudo': False, 'request': {
            'op': 'apply', 'stateDir': os.path.join(self.root, 'state'), 'host': 'h', 'meta': [], 'remove': [],
            'write': [{'path': path, 'content': base64.b64encode(b'new').decode(), 'sha256': sha256(b'new'), 'mode': 0o644}],
            'handlers': handlers, 'managed': {path: sha256(b'new')}}}

    def test_files_in_a_child_after_the_venv_and_before_the_reload(self):
        log = os.path.join(self.root, 'log')
        conf = os.path.join(self.root, 'etc', 'app.conf')
        request = {'uploads': [], 'waitForUploads': False, 'reloadAnyway': False,
                   'venvs': [{'sudo': [], 'input': apply_input(self.venv('a'))}],
                   'files': self.files_request(['cat %s >> %s' % (conf, log)], conf),
                   'reload': 'echo reload >> %s' % log}
        support.check_contract('host_apply.request', dict(request, v=1))
        lines, progress = self.finish(self.start(request))
        self.assertEqual([[k for k in ('venv', 'files', 'reload', 'done') if k in line] for line in lines],
                         [['venv'], ['files'], ['reload'], ['done']])
        result = lines[1]['files']
        self.assertEqual((result['ok'], result['written'], lines[1]['exitCode']), (True, [conf], 0))
        self.assertNotIn('stderrTail', lines[1])
        with open(log) as f:
            self.assertEqual(f.read(), 'newreload\n')  # the handler saw the new file, then the reload ran
        self.assertEqual(progress[-2:], [{'files': 'start'}, {'reload': 'start'}])

    def test_venvs_hold_in_their_children_and_reload_after_the_files(self):
        log = os.path.join(self.root, 'log')
        conf = os.path.join(self.root, 'etc', 'app.conf')
        hc = {'command': 'grep -q new %s' % log, 'expectStatus': 200, 'timeout': 10, 'retries': 0, 'interval': 0, 'settle': 0}
        request = {'uploads': [], 'waitForUploads': False, 'reloadAnyway': False,
                   'venvs': [{'sudo': [], 'input': apply_input(self.venv('a'), reload='echo reload-a >> %s' % log, healthcheck=hc)},
                             {'sudo': [], 'input': apply_input(self.venv('b'))},
                             {'sudo': [], 'input': apply_input(self.venv('c'), reload='echo reload-c >> %s' % log)}],
                   'files': self.files_request(['cat %s >> %s; echo >> %s' % (conf, log, log)], conf),
                   'reload': 'echo host >> %s' % log}
        lines, progress = self.finish(self.start(request))
        self.assertEqual([[k for k in ('venv', 'files', 'reload', 'done') if k in line] for line in lines],
                         [['files'], ['venv'], ['venv'], ['venv'], ['reload'], ['done']])
        self.assertEqual([(l['venv'], l['output']['outcome']) for l in lines[1:4]], [(0, 'deployed'), (1, 'deployed'), (2, 'deployed')])
        self.assertEqual([s['name'] for s in lines[1]['output']['steps']], ['reload', 'healthcheck'])
        with open(log) as f:
            self.assertEqual(f.read(), 'new\nreload-a\nreload-c\nhost\n')
        holds = [p for p in progress if p.get('phase') == 'hold']
        self.assertEqual(holds, [{'venv': 0, 'step': 'reload', 'phase': 'hold'}, {'venv': 2, 'step': 'reload', 'phase': 'hold'}])
        self.assertEqual(lines[-1]['done'], {'started': 3, 'stoppedBy': None})

    def test_a_stop_reaches_the_files_child_which_runs_no_further_handler(self):
        started, go = os.path.join(self.root, 'first-started'), os.path.join(self.root, 'go')
        conf = os.path.join(self.root, 'etc', 'app.conf')
        log = os.path.join(self.root, 'log')
        # The first handler runs until the test says go (bounded, should the test fail first).
        handlers = ['touch %s; n=0; while [ ! -e %s ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done; echo one >> %s'
                    % (started, go, log), 'echo two >> %s' % log]
        request = {'uploads': [], 'waitForUploads': False, 'reloadAnyway': True, 'venvs': [],
                   'files': self.files_request(handlers, conf), 'reload': 'echo reload >> %s' % log}
        proc = self.start(request)
        self.poll(lambda: os.path.exists(started), 'the first handler to start')
        # host_apply's thread that forwards a stop ends once it has sent the SIGTERM.
        tasks = '/proc/%d/task' % proc.pid
        threads = len(os.listdir(tasks))
        proc.stdin.write(b'stop\n')
        proc.stdin.flush()
        self.poll(lambda: len(os.listdir(tasks)) < threads, 'the stop to be forwarded')
        write(go, b'')
        lines, _ = self.finish(proc)
        result = lines[0]['files']
        self.assertEqual((result['ok'], result['stopped'], result['pending']), (False, True, handlers[1:]))
        self.assertEqual(lines[0]['exitCode'], 1)
        with open(log) as f:
            self.assertEqual(f.read(), 'one\n')  # no second handler, no reload
        self.assertEqual(lines[-1]['done'], {'started': 0, 'stoppedBy': 'stop'})

    def test_an_unreadable_request_exits_2_saying_why(self):
        argv, prefix = protocol.child_command('host_apply')
        proc = subprocess.run(argv, input=prefix + b'{"v": 7}\n', stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(proc.returncode, 2)
        self.assertEqual(proc.stdout, b'')
        self.assertIn(b'unreadable request: the request speaks protocol 7', proc.stderr)
