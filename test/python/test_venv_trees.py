"""The shared corpus of venv trees (test/fixtures/venv-trees/<case>/): venv_facts reads each exactly as
its expected.json says. The TypeScript side (test/integration/venv-trees.test.ts) holds the SFTP
reader and the probe to the same files; venv-trees-broken/ has a wrong expected.json on purpose, to
prove that the comparison reports a disagreement."""
import json
import os
import unittest

import support  # noqa: F401
from vdeploy_remote import venv_facts

TREES = os.path.join(support.FIXTURES, 'venv-trees')
BROKEN = os.path.join(support.FIXTURES, 'venv-trees-broken')

# What the corpus must keep covering; a case may be added, not lost.
REQUIRED = {
    'plain', 'upgraded-in-place', 'no-version-in-cfg', 'free-threaded', 'pth-dirs', 'egg-info-dir',
    'egg-info-file', 'duplicates', 'crlf', 'header-variants', 'lib64-dir', 'lib64-symlink', 'history-torn',
    'non-ascii', 'pip-stash',
}


def cases(root):
    return sorted(n for n in os.listdir(root) if os.path.isfile(os.path.join(root, n, 'expected.json')))


def compare(case_dir):
    """[(what, expected, actual)] for each of installed and history that differs from expected.json."""
    with open(os.path.join(case_dir, 'expected.json'), encoding='utf-8') as f:
        expected = json.load(f)
    actual = {'installed': venv_facts.read_installed(case_dir), 'history': venv_facts.read_history(case_dir)}
    return [(what, expected[what], actual[what]) for what in ('installed', 'history') if expected[what] != actual[what]]


class VenvTreesTest(unittest.TestCase):
    def test_the_corpus_covers_every_required_case(self):
        self.assertEqual(REQUIRED - set(cases(TREES)), set())

    def test_every_case_reads_as_expected(self):
        for case in cases(TREES):
            with self.subTest(case=case):
                self.assertEqual(compare(os.path.join(TREES, case)), [])

    def test_the_lib64_symlink_case_holds_a_symlink(self):
        # A checkout that turned the symlink into a file would test nothing.
        self.assertTrue(os.path.islink(os.path.join(TREES, 'lib64-symlink', 'lib64')))

    def test_crlf_survived_the_checkout(self):
        with open(os.path.join(TREES, 'crlf', 'pyvenv.cfg'), 'rb') as f:
            self.assertIn(b'\r\n', f.read())

    def test_a_wrong_expectation_is_reported(self):
        broken = cases(BROKEN)
        self.assertNotEqual(broken, [])
        for case in broken:
            with self.subTest(case=case):
                self.assertEqual([what for what, _, _ in compare(os.path.join(BROKEN, case))], ['installed', 'history'])


if __name__ == '__main__':
    unittest.main()
