"""vdeploy_remote.files (issue 17): the facts of fixture trees (missing / file / other, content only when
it differs and is small, mode and owner names, the record), and apply: create, update, metadata, removal,
a failed validate that changes nothing, handlers that fail or are stopped staying pending for the next
run, an unusable record; main() in a child process with both sides of the contract checked."""
import base64
import grp
import hashlib
import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

import support
from vdeploy_remote import files, files_record, protocol

ROOT = os.geteuid() == 0


write, read = support.write, support.read


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def write_spec(path, data, mode=0o644, **over):
    spec = {'path': path, 'content': base64.b64encode(data).decode('ascii'), 'sha256': sha256(data), 'mode': mode}
    spec.update(over)
    return spec


def me():
    return pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name


class TempDir(unittest.TestCase):
    def setUp(self):
        self.root = os.path.realpath(tempfile.mkdtemp(prefix='vdeploy-test-files-'))
        self.addCleanup(shutil.rmtree, self.root, True)
        self.state = os.path.join(self.root, 'state')
        self.etc = os.path.join(self.root, 'etc')

    def p(self, *parts):
        return os.path.join(self.etc, *parts)

    def record(self):
        with open(os.path.join(self.state, 'files.json'), encoding='utf-8') as f:
            return json.load(f)

    def set_record(self, managed=None, pending=None):
        write(os.path.join(self.state, 'files.json'),
              json.dumps({'v': 1, 'host': 'h', 'managed': managed or {}, 'pending': pending or []}))

    def request(self, **over):
        req = {'op': 'apply', 'stateDir': self.state, 'host': 'h', 'write': [], 'meta': [], 'remove': [],
               'handlers': [], 'managed': {}}
        req.update(over)
        return req

    def leftovers(self):
        """Temp files anywhere under the tree (none may survive an apply)."""
        found = []
        for top, dirs, names in os.walk(self.root):
            found += [os.path.join(top, n) for n in names if '.vdeploy-' in n]
        return found


class Facts(TempDir):
    def facts(self, asked, **over):
        req = {'op': 'facts', 'stateDir': self.state, 'host': 'h', 'files': asked}
        req.update(over)
        return files.facts(req)

    def test_missing_file_and_other(self):
        write(self.p('a.conf'), b'hello\n', 0o640)
        os.makedirs(self.p('dir'))
        os.symlink(self.p('a.conf'), self.p('link'))
        write(self.p('plain'), b'x')
        asked = [{'path': self.p(n), 'sha256': '0' * 64, 'content': False}
                 for n in ('a.conf', 'nothing', 'dir', 'link', os.path.join('plain', 'under-a-file'))]
        got = self.facts(asked)
        owner, group = me()
        self.assertEqual(got['files'][0], {'path': self.p('a.conf'), 'state': 'file', 'sha256': sha256(b'hello\n'),
                                           'size': 6, 'mode': 0o640, 'owner': owner, 'group': group})
        self.assertEqual(got['files'][1], {'path': self.p('nothing'), 'state': 'missing'})
        self.assertEqual([f['state'] for f in got['files'][2:]], ['other', 'other', 'missing'])
        self.assertEqual(got['files'][2]['mode'], stat.S_IMODE(os.stat(self.p('dir')).st_mode))
        self.assertEqual((got['managed'], got['pending'], got['user']), ({}, [], owner))

    def test_content_only_when_asked_differing_and_small(self):
        small, big = b'workers = 2\n', b'x' * (files.CONTENT_LIMIT + 1)
        write(self.p('small'), small)
        write(self.p('big'), big)
        write(self.p('same'), small)
        write(self.p('secret'), small)
        got = self.facts([{'path': self.p('small'), 'sha256': sha256(b'workers = 4\n'), 'content': True},
                          {'path': self.p('big'), 'sha256': sha256(b'other'), 'content': True},
                          {'path': self.p('same'), 'sha256': sha256(small), 'content': True},
                          {'path': self.p('secret'), 'sha256': sha256(b'other'), 'content': False}])['files']
        self.assertEqual(base64.b64decode(got[0]['content']), small)
        self.assertEqual((got[1]['sha256'], got[1]['size']), (sha256(big), len(big)))
        self.assertEqual(['content' in f for f in got], [True, False, False, False])

    def test_exactly_the_limit_is_still_sent(self):
        data = b'y' * files.CONTENT_LIMIT
        write(self.p('edge'), data)
        got = self.facts([{'path': self.p('edge'), 'sha256': sha256(b''), 'content': True}])['files'][0]
        self.assertEqual(base64.b64decode(got['content']), data)

    def test_the_record_gives_managed_and_pending(self):
        self.set_record({'/etc/a': 'ab' * 32}, ['supervisorctl update'])
        got = self.facts([])
        self.assertEqual((got['managed'], got['pending']), ({'/etc/a': 'ab' * 32}, ['supervisorctl update']))

    def test_an_unusable_record_is_an_error_naming_it(self):
        path = os.path.join(self.state, 'files.json')
        for text, why in (('{"v": 1, "managed"', 'not valid JSON'), ('[]', 'not a vdeploy record'),
                          ('{"v": 1, "managed": {}, "pending": "x"}', '"pending" is not a list')):
            write(path, text)
            with self.assertRaises(files_record.FilesError) as caught:
                self.facts([])
            self.assertIn(path, str(caught.exception))
            self.assertIn(why, str(caught.exception))
            self.assertIn('fix or remove', caught.exception.hint)

    def test_the_default_state_dir(self):
        self.assertEqual(files_record.default_state_dir() == '/var/lib/vdeploy', ROOT)
        nobody = pwd.getpwnam('nobody')
        with mock.patch.object(os, 'geteuid', lambda: nobody.pw_uid):
            self.assertEqual(files_record.default_state_dir(), os.path.join(nobody.pw_dir, '.local', 'state', 'vdeploy'))

    def test_names_fall_back_to_numbers(self):
        self.assertEqual(files.user_name(4242424), '4242424')
        self.assertEqual(files.group_name(4242424), '4242424')


class Apply(TempDir):
    def apply(self, stop=None, **over):
        result = files.apply(self.request(**over), stop if stop is not None else [])
        result['v'] = protocol.PROTOCOL
        support.check_contract('files.result', result)
        self.assertEqual(self.leftovers(), [])
        return result

    def test_create_in_missing_directories(self):
        path = self.p('supervisor', 'conf.d', 'app.conf')
        result = self.apply(write=[write_spec(path, b'[program:app]\n', 0o640)], managed={path: sha256(b'[program:app]\n')})
        self.assertEqual((result['ok'], result['written'], result['failed']), (True, [path], None))
        self.assertEqual(read(path), b'[program:app]\n')
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o640)
        for d in (self.etc, self.p('supervisor'), self.p('supervisor', 'conf.d')):
            self.assertEqual(stat.S_IMODE(os.stat(d).st_mode), 0o755, d)
        self.assertEqual(self.record(), {'v': 1, 'host': 'h', 'managed': {path: sha256(b'[program:app]\n')}, 'pending': []})

    def test_update_replaces_by_rename_and_sets_the_mode(self):
        path = self.p('app.conf')
        write(path, b'old\n', 0o600)
        before = os.stat(path).st_ino
        reader = open(path, 'rb')
        self.addCleanup(reader.close)
        result = self.apply(write=[write_spec(path, b'new\n', 0o644)])
        self.assertEqual(result['written'], [path])
        self.assertEqual(read(path), b'new\n')
        self.assertNotEqual(os.stat(path).st_ino, before)
        self.assertEqual(reader.read(), b'old\n')  # a reader holding the old file keeps it whole
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o644)

    def test_meta_and_remove(self):
        write(self.p('secret.env'), b'K=1\n', 0o644)
        write(self.p('old.conf'), b'gone\n')
        os.makedirs(self.p('a-dir'))
        result = self.apply(meta=[{'path': self.p('secret.env'), 'mode': 0o600}],
                            remove=[self.p('old.conf'), self.p('never-there')])
        self.assertEqual((result['ok'], result['meta'], result['removed']), (True, [self.p('secret.env')], [self.p('old.conf')]))
        self.assertEqual(stat.S_IMODE(os.stat(self.p('secret.env')).st_mode), 0o600)
        self.assertFalse(os.path.exists(self.p('old.conf')))
        refused = self.apply(remove=[self.p('a-dir')])
        self.assertEqual((refused['ok'], refused['failed']['stage'], refused['failed']['path']), (False, 'remove', self.p('a-dir')))
        self.assertTrue(os.path.isdir(self.p('a-dir')))

    def test_owner_and_group_by_name(self):
        owner, group = me()
        path = self.p('mine')
        self.apply(write=[write_spec(path, b'x', owner=owner, group=group)])
        self.assertEqual((os.stat(path).st_uid, os.stat(path).st_gid), (os.geteuid(), os.getegid()))
        unknown = self.apply(write=[write_spec(self.p('other'), b'x', owner='no-such-user-vdeploy')])
        self.assertEqual((unknown['failed']['stage'], unknown['failed']['path']), ('chown', self.p('other')))
        self.assertIn("no user 'no-such-user-vdeploy'", unknown['failed']['message'])
        self.assertFalse(os.path.exists(self.p('other')))

    @unittest.skipUnless(ROOT, 'giving a file to another user needs root')
    def test_a_file_given_to_another_user_with_mode_0600(self):
        nobody = pwd.getpwnam('nobody')
        path = self.p('app', 'secret.env')
        self.apply(write=[write_spec(path, b'K=1\n', 0o600, owner='nobody', group=grp.getgrgid(nobody.pw_gid).gr_name)])
        st = os.stat(path)
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (nobody.pw_uid, nobody.pw_gid, 0o600))
        fact = files.file_fact(path, '', False)
        self.assertEqual((fact['owner'], fact['mode']), ('nobody', 0o600))
        # An update that leaves the owner unmanaged keeps the one the file has.
        self.apply(write=[write_spec(path, b'K=2\n', 0o600)])
        self.assertEqual(os.stat(path).st_uid, nobody.pw_uid)

    @unittest.skipIf(ROOT, 'root may chown to anyone')
    def test_a_chown_that_is_not_allowed_fails_before_anything_changes(self):
        result = self.apply(write=[write_spec(self.p('x'), b'x', owner='root')])
        self.assertEqual(result['failed']['stage'], 'chown')
        self.assertFalse(os.path.exists(self.p('x')))

    def test_validate_sees_the_temp_file_quoted(self):
        path = self.p("it's a config.json")
        seen = os.path.join(self.root, 'seen')
        check = '%s -c "import json,sys; json.load(open(sys.argv[1])); open(sys.argv[2], \'w\').write(sys.argv[1])" {path} %s' % (
            sys.executable, seen)
        result = self.apply(write=[write_spec(path, b'{"a": 1}\n', validate=check)])
        self.assertTrue(result['ok'], result)
        validated = read(seen).decode()
        self.assertEqual(os.path.dirname(validated), self.etc)
        self.assertTrue(os.path.basename(validated).startswith(".it's a config.json.vdeploy-%d-" % os.getpid()), validated)

    def test_a_failed_validate_changes_nothing(self):
        good, bad = self.p('good.json'), self.p('new', 'dir', 'bad.json')
        write(good, b'{"old": true}\n')
        self.set_record({good: sha256(b'{"old": true}\n')}, ['earlier handler'])
        before = read(os.path.join(self.state, 'files.json'))
        validate = '%s -m json.tool {path}' % sys.executable
        result = self.apply(write=[write_spec(good, b'{"new": true}\n', validate=validate),
                                   write_spec(bad, b'{"broken": \n', validate=validate)],
                            meta=[{'path': good, 'mode': 0o600}], handlers=['supervisorctl update'],
                            managed={good: 'x', bad: 'y'})
        self.assertEqual((result['ok'], result['written'], result['handlers']), (False, [], []))
        failed = result['failed']
        self.assertEqual((failed['stage'], failed['path']), ('validate', bad))
        self.assertIn('json.tool {path}` exited with 1', failed['message'])
        self.assertIn('Expecting', failed['output'])
        self.assertEqual(read(good), b'{"old": true}\n')
        self.assertNotEqual(stat.S_IMODE(os.stat(good).st_mode), 0o600)
        self.assertFalse(os.path.exists(self.p('new')))  # the directories it made are gone too
        self.assertEqual(read(os.path.join(self.state, 'files.json')), before)
        self.assertEqual(result['pending'], ['earlier handler'])

    def test_content_that_does_not_match_its_sha256_is_refused(self):
        spec = write_spec(self.p('x'), b'right')
        spec['sha256'] = sha256(b'wrong')
        result = self.apply(write=[spec])
        self.assertEqual((result['ok'], result['failed']['stage']), (False, 'checksum'))
        self.assertFalse(os.path.exists(self.p('x')))

    def test_never_writes_over_a_directory_or_through_a_symlink(self):
        os.makedirs(self.p('d'))
        write(self.p('target'), b't')
        os.symlink(self.p('target'), self.p('link'))
        for path in (self.p('d'), self.p('link')):
            result = self.apply(write=[write_spec(path, b'x')])
            self.assertEqual((result['failed']['stage'], result['failed']['path']), ('write', path))
        self.assertEqual(read(self.p('target')), b't')

    def test_handlers_are_pending_before_the_first_rename(self):
        seen = []
        real = os.replace

        def replace(src, dst):
            if dst == self.p('a'):
                seen.append(self.record()['pending'])
            return real(src, dst)

        with mock.patch.object(os, 'replace', replace):
            self.apply(stop=[signal.SIGTERM], write=[write_spec(self.p('a'), b'a')], handlers=['h1', 'h2'])
        self.assertEqual(seen, [['h1', 'h2']])

    def test_handlers_run_in_order_each_leaving_the_record_when_done(self):
        log = os.path.join(self.root, 'log')
        snapshot = os.path.join(self.root, 'record-during-two')
        record = os.path.join(self.state, 'files.json')
        two = 'cp %s %s; echo two >> %s; echo said' % (record, snapshot, log)
        result = self.apply(write=[write_spec(self.p('a'), b'a')], handlers=['echo one >> %s' % log, two])
        self.assertEqual(read(log), b'one\ntwo\n')
        self.assertEqual([(h['command'][:8], h['ok'], h['exitCode'], h['tail']) for h in result['handlers']],
                         [('echo one', True, 0, ''), (two[:8], True, 0, 'said')])
        self.assertEqual(json.loads(read(snapshot).decode())['pending'], [two])
        self.assertEqual((result['ok'], result['pending'], self.record()['pending']), (True, [], []))

    def test_a_failed_handler_leaves_it_and_the_rest_pending_and_the_next_run_runs_them(self):
        log = os.path.join(self.root, 'log')
        flag = os.path.join(self.root, 'broken')
        write(flag, b'')
        handlers = ['echo one >> %s' % log, 'test ! -e %s || { echo it is broken; exit 4; }; echo two >> %s' % (flag, log),
                    'echo three >> %s' % log]
        result = self.apply(write=[write_spec(self.p('a'), b'a')], handlers=handlers, managed={self.p('a'): sha256(b'a')})
        self.assertEqual((result['ok'], result['written']), (False, [self.p('a')]))
        self.assertEqual([(h['ok'], h['exitCode']) for h in result['handlers']], [(True, 0), (False, 4)])
        self.assertEqual(result['failed'], {'stage': 'handler', 'message': '`%s` exited with 4' % handlers[1], 'output': 'it is broken'})
        self.assertEqual(result['pending'], handlers[1:])
        self.assertEqual(self.record(), {'v': 1, 'host': 'h', 'managed': {self.p('a'): sha256(b'a')}, 'pending': handlers[1:]})
        # The next run: the file no longer differs, but the facts say what is pending and vdeploy sends it.
        os.unlink(flag)
        pending = files.facts({'op': 'facts', 'stateDir': self.state, 'host': 'h', 'files': []})['pending']
        again = self.apply(handlers=pending, managed={self.p('a'): sha256(b'a')})
        self.assertEqual((again['ok'], again['written'], [h['ok'] for h in again['handlers']]), (True, [], [True, True]))
        self.assertEqual(read(log), b'one\ntwo\nthree\n')
        self.assertEqual((again['pending'], self.record()['pending']), ([], []))

    def test_pending_handlers_are_kept_once_and_in_order(self):
        self.set_record({}, ['b', 'a'])
        self.apply(stop=[signal.SIGTERM], handlers=['a', 'c', 'c'])
        self.assertEqual(self.record()['pending'], ['b', 'a', 'c'])

    def test_a_stop_before_the_handlers_writes_the_files_and_runs_none(self):
        log = os.path.join(self.root, 'log')
        result = self.apply(stop=[signal.SIGTERM], write=[write_spec(self.p('a'), b'a')], handlers=['echo x >> %s' % log])
        self.assertEqual((result['ok'], result['stopped'], result['failed'], result['written']), (False, True, None, [self.p('a')]))
        self.assertEqual((result['handlers'], result['pending']), ([], ['echo x >> %s' % log]))
        self.assertFalse(os.path.exists(log))

    def test_an_unreadable_record_changes_nothing(self):
        write(os.path.join(self.state, 'files.json'), b'\x00garbage')
        result = self.apply(write=[write_spec(self.p('a'), b'a')], handlers=['true'])
        self.assertEqual((result['ok'], result['failed']['stage'], result['written']), (False, 'record', []))
        self.assertIn(os.path.join(self.state, 'files.json'), result['failed']['message'])
        self.assertIn('not valid JSON', result['failed']['message'])
        self.assertFalse(os.path.exists(self.p('a')))

    def test_a_record_that_cannot_be_written_changes_nothing(self):
        write(self.state, b'a file where the state directory should be')
        self.state = os.path.join(self.state, 'sub')
        result = self.apply(write=[write_spec(self.p('a', 'b'), b'a')], handlers=['true'])
        self.assertEqual((result['ok'], result['failed']['stage'], result['written'], result['handlers']), (False, 'record', [], []))
        self.assertIn('cannot be written', result['failed']['message'])
        self.assertFalse(os.path.exists(self.p('a')))


def run_main(req):
    argv, prefix = protocol.child_command('files')
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(prefix + json.dumps(req).encode())
    return proc.returncode, out.decode(), err.decode()


def run_checked(test, req, answer_contract, code=0):
    """run_main with both sides of the contract checked and the exit code asserted; the answer, parsed."""
    support.check_contract('files.request', req)
    got, out, err = run_main(req)
    test.assertEqual(got, code, err)
    answer = json.loads(out)
    support.check_contract(answer_contract, answer)
    return answer, err


class Main(TempDir):
    def test_facts_then_apply_then_facts(self):
        path = self.p('app.conf')
        write(path, b'workers = 2\n')
        desired = b'workers = 4\n'
        asked = {'v': 1, 'op': 'facts', 'stateDir': self.state, 'host': 'h', 'files': [{'path': path, 'sha256': sha256(desired), 'content': True}]}
        facts, _ = run_checked(self, asked, 'files.facts')
        self.assertEqual(base64.b64decode(facts['files'][0]['content']), b'workers = 2\n')
        marker = os.path.join(self.root, 'handled')
        result, _ = run_checked(self, dict(self.request(write=[write_spec(path, desired)], handlers=['touch %s' % marker],
                                                        managed={path: sha256(desired)}), v=1), 'files.result')
        self.assertEqual((result['ok'], result['written']), (True, [path]))
        self.assertTrue(os.path.exists(marker))
        facts, _ = run_checked(self, asked, 'files.facts')
        self.assertEqual((facts['files'][0]['sha256'], 'content' in facts['files'][0]), (sha256(desired), False))
        self.assertEqual((facts['managed'], facts['pending']), ({path: sha256(desired)}, []))

    def test_a_failure_exits_1_with_one_line_on_stderr(self):
        req = dict(self.request(handlers=['echo nope; exit 2']), v=1)
        result, err = run_checked(self, req, 'files.result', code=1)
        self.assertEqual(result['pending'], ['echo nope; exit 2'])
        self.assertEqual(err, 'vdeploy files: `echo nope; exit 2` exited with 2\n')

    def test_an_unusable_record_exits_3_naming_it(self):
        write(os.path.join(self.state, 'files.json'), b'{')
        asked = {'v': 1, 'op': 'facts', 'stateDir': self.state, 'host': 'h', 'files': []}
        answer, err = run_checked(self, asked, 'files.facts', code=3)
        self.assertIn(os.path.join(self.state, 'files.json'), answer['error'])
        self.assertIn('fix or remove', answer['hint'])
        self.assertEqual(len(err.splitlines()), 1)

    def test_bad_requests_exit_3(self):
        for req, why in (({'v': 1, 'op': 'nap'}, "unknown op 'nap'"), ({'v': 1, 'op': 'apply', 'host': 'h'}, 'lacks write'),
                         ({'v': 1, 'op': 'facts', 'host': 'h', 'files': [{'path': 'rel', 'sha256': '', 'content': False}]}, 'not absolute'),
                         ({'v': 2, 'op': 'facts'}, 'protocol 2'),
                         (dict(self.request(write=[{'path': '/x'}]), v=1), '"write" must list objects with path, content, sha256, mode'),
                         (dict(self.request(remove=['x']), v=1), "'x' is not absolute")):
            code, out, err = run_main(req)
            self.assertEqual(code, 3, err)
            answer = json.loads(out)
            support.check_contract('files.facts', answer)
            self.assertIn(why, answer['error'])

    def test_a_stop_between_handlers_runs_no_further_handler(self):
        log = os.path.join(self.root, 'log')
        # The first handler is what a Ctrl-C reaching the host looks like: a SIGTERM to the script.
        handlers = ['kill -TERM $PPID; echo one >> %s' % log, 'echo two >> %s' % log]
        req = dict(self.request(write=[write_spec(self.p('a'), b'a')], handlers=handlers), v=1)
        result, _ = run_checked(self, req, 'files.result', code=1)
        self.assertEqual((result['stopped'], result['ok'], result['written']), (True, False, [self.p('a')]))
        self.assertEqual(([h['ok'] for h in result['handlers']], result['pending']), ([True], handlers[1:]))
        self.assertEqual(read(log), b'one\n')
        self.assertEqual(self.record()['pending'], handlers[1:])


if __name__ == '__main__':
    unittest.main()
