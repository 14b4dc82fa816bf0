"""venv_facts: the one reader of a venv's facts, on trees built in temporary directories."""
import os
import shutil
import sys
import tempfile
import unittest

import support
from vdeploy_remote import venv_facts


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode('utf-8'))
    return path


def dist_info(site, name, version):
    write(os.path.join(site, '%s-%s.dist-info' % (name, version), 'METADATA'),
          'Metadata-Version: 2.1\nName: %s\nVersion: %s\n\n' % (name, version))


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix='vdeploy-venv-facts-')
        self.addCleanup(shutil.rmtree, self.root)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def venv(self, name='venv', version='3.11.2', python=True):
        """A venv as `python3 -m venv` lays it out, without running anything."""
        venv = self.path(name)
        write(os.path.join(venv, 'pyvenv.cfg'), 'home = /usr/bin\nversion = %s\n' % version)
        if python:
            os.makedirs(os.path.join(venv, 'bin'))
            os.symlink(sys.executable, os.path.join(venv, 'bin', 'python'))
        return venv


class ReadHeadersTest(TempDirTest):
    def headers(self, data):
        return venv_facts.read_headers(write(self.path('METADATA'), data))

    def test_name_and_version(self):
        self.assertEqual(self.headers('Metadata-Version: 2.1\nName: a\nVersion: 1.0\n'), ('a', '1.0'))

    def test_keys_are_case_insensitive_and_values_stripped(self):
        self.assertEqual(self.headers('NAME :  Upper \nversion:1.0\t\n'), ('Upper', '1.0'))

    def test_continuation_lines_are_not_headers(self):
        self.assertEqual(self.headers('Summary: x\n  Name: no\n\tVersion: 0\nName: yes\nVersion: 1\n'), ('yes', '1'))

    def test_crlf(self):
        self.assertEqual(self.headers(b'Name: a\r\nVersion: 1\r\n\r\nVersion: 2\r\n'), ('a', '1'))

    def test_the_first_of_each_wins(self):
        self.assertEqual(self.headers('Name: a\nName: b\nVersion: 1\nVersion: 2\n'), ('a', '1'))

    def test_stops_at_the_blank_line(self):
        self.assertEqual(self.headers('Name: a\n\nVersion: 1\n'), ('a', None))

    def test_missing_fields(self):
        self.assertEqual(self.headers('Metadata-Version: 2.1\n'), (None, None))
        self.assertEqual(self.headers(''), (None, None))
        self.assertEqual(self.headers('garbage\nVersion: 1'), (None, '1'))

    def test_undecodable_bytes_are_replaced(self):
        self.assertEqual(self.headers(b'Name: caf\xe9\nVersion: 1\n'), ('caf\ufffd', '1'))

    def test_a_missing_file_raises(self):
        with self.assertRaises(OSError):
            venv_facts.read_headers(self.path('nope'))


class ReadConfigTest(TempDirTest):
    def test_lower_cased_keys_stripped_values_first_equals_splits(self):
        cfg = write(self.path('pyvenv.cfg'), b'Home = /usr/bin\r\nversion_info = 3.11.2.final.0\nprompt = a=b\nno equals\n')
        self.assertEqual(venv_facts.read_config(cfg), {'home': '/usr/bin', 'version_info': '3.11.2.final.0', 'prompt': 'a=b'})

    def test_a_later_key_wins(self):
        cfg = write(self.path('pyvenv.cfg'), 'version = 3.9.1\nVERSION = 3.11.2\n')
        self.assertEqual(venv_facts.read_config(cfg), {'version': '3.11.2'})


class SitePackagesTest(TempDirTest):
    def test_lib64_before_lib(self):
        for lib in ('lib', 'lib64'):
            os.makedirs(self.path('v', lib, 'python3.11', 'site-packages'))
        self.assertEqual(venv_facts.site_packages(self.path('v'), {'version': '3.11.2'}),
                         [self.path('v', 'lib64', 'python3.11', 'site-packages'), self.path('v', 'lib', 'python3.11', 'site-packages')])

    def test_a_lib64_symlink_to_lib_counts_once(self):
        os.makedirs(self.path('v', 'lib', 'python3.11', 'site-packages'))
        os.symlink('lib', self.path('v', 'lib64'))
        self.assertEqual(venv_facts.site_packages(self.path('v'), {'version': '3.11.2'}),
                         [self.path('v', 'lib64', 'python3.11', 'site-packages')])

    def test_a_leftover_version_is_ignored_when_the_config_names_another(self):
        for name in ('python3.9', 'python3.11', 'python3.12'):
            os.makedirs(self.path('v', 'lib', name, 'site-packages'))
        self.assertEqual(venv_facts.site_packages(self.path('v'), {'version_info': '3.11.2.final.0', 'version': '3.9.1'}),
                         [self.path('v', 'lib', 'python3.11', 'site-packages')])

    def test_every_version_counts_when_none_matches(self):
        for name in ('python3.9', 'python3.10'):
            os.makedirs(self.path('v', 'lib', name, 'site-packages'))
        expected = [self.path('v', 'lib', n, 'site-packages') for n in ('python3.10', 'python3.9')]
        self.assertEqual(venv_facts.site_packages(self.path('v'), {}), expected)
        self.assertEqual(venv_facts.site_packages(self.path('v'), {'version': '3.13.0'}), expected)

    def test_the_free_threaded_t_suffix_and_pypy(self):
        for name in ('python3.12', 'python3.13t', 'pypy3.10', 'other'):
            os.makedirs(self.path('v', 'lib', name, 'site-packages'))
        self.assertEqual(venv_facts.site_packages(self.path('v'), {'version': '3.13.0'}),
                         [self.path('v', 'lib', 'python3.13t', 'site-packages')])
        self.assertEqual(venv_facts.site_packages(self.path('v'), {'version': '3.10.14'}),
                         [self.path('v', 'lib', 'pypy3.10', 'site-packages')])

    def test_a_version_dir_without_site_packages_and_no_lib_at_all(self):
        os.makedirs(self.path('v', 'lib', 'python3.11'))
        self.assertEqual(venv_facts.site_packages(self.path('v'), {'version': '3.11.2'}), [])
        self.assertEqual(venv_facts.site_packages(self.path('none'), {'version': '3.11.2'}), [])


class PthPathsTest(TempDirTest):
    def test_directories_named_by_pth_files(self):
        site = self.path('site')
        for d in ('site', 'a', 'b', 'hidden'):
            os.makedirs(self.path(d), exist_ok=True)
        write(os.path.join(site, 'x.pth'), '# comment\nimport sys\nimport\tos\n../a  \n../missing\n\n%s\n' % self.path('b'))
        write(os.path.join(site, '.hidden.pth'), '../hidden\n')
        write(os.path.join(site, 'y.pth.bak'), '../hidden\n')
        write(os.path.join(site, 'w.pth'), b'../b\r\n')
        self.assertEqual(venv_facts.pth_paths(site), [self.path('b'), self.path('a'), self.path('b')])

    def test_no_site_directory(self):
        self.assertEqual(venv_facts.pth_paths(self.path('nope')), [])


class ReadInstalledTest(TempDirTest):
    def site(self, venv):
        return os.path.join(venv, 'lib', 'python3.11', 'site-packages')

    def test_dist_info_egg_info_dir_and_file_sorted_first_wins(self):
        venv = self.venv()
        site = self.site(venv)
        dist_info(site, 'Sqlparse', '0.4.0')
        dist_info(site, 'sqlparse', '0.5.3')
        write(os.path.join(site, 'legacy-0.9.egg-info', 'PKG-INFO'), 'Name: legacy\nVersion: 0.9\n')
        write(os.path.join(site, 'flat-1.2.egg-info'), 'Name: flat\nVersion: 1.2\n')
        write(os.path.join(site, 'noversion-1.dist-info', 'METADATA'), 'Name: noversion\n')
        os.makedirs(os.path.join(site, 'nometa-1.dist-info'))
        write(os.path.join(site, 'pkg', '__init__.py'), '')
        self.assertEqual(venv_facts.read_installed(venv), [
            {'name': 'Sqlparse', 'version': '0.4.0'}, {'name': 'flat', 'version': '1.2'}, {'name': 'legacy', 'version': '0.9'},
        ])

    def test_pth_directories_after_site_packages_each_once(self):
        venv = self.venv()
        site = self.site(venv)
        dist_info(site, 'gunicorn', '23.0.0')
        dist_info(self.path('extra'), 'gunicorn', '1.0')
        dist_info(self.path('extra'), 'extra_pkg', '0.1')
        write(os.path.join(site, 'a.pth'), '%s\n.\n%s\n' % (self.path('extra'), self.path('extra')))
        self.assertEqual(venv_facts.read_installed(venv, {'version': '3.11.2'}),
                         [{'name': 'gunicorn', 'version': '23.0.0'}, {'name': 'extra_pkg', 'version': '0.1'}])

    def test_installed_versions(self):
        venv = self.venv()
        dist_info(self.site(venv), 'Typing_Extensions', '4.12.2')
        self.assertEqual(venv_facts.installed_versions(venv), {'typing-extensions': '4.12.2'})
        self.assertEqual(venv_facts.installed_versions(self.path('nothing')), {})

    def test_the_module_under_test_is_the_source_file(self):
        self.assertTrue(venv_facts.__file__.startswith(support.PYTHON_DIR))

    def test_normalize(self):
        self.assertEqual(venv_facts.normalize('Zope.Interface__x--y'), 'zope-interface-x-y')


class ReadHistoryTest(TempDirTest):
    def test_torn_foreign_and_undecodable_lines_are_skipped(self):
        venv = self.path('v')
        write(os.path.join(venv, '.vdeploy', 'history.jsonl'),
              b'{"at":"1"}\n[1]\n{"at": "2\n\n"s"\n{"bad":"\xff"}\r\n{"at":"3"}\r\n{"at":"4",')
        self.assertEqual(venv_facts.read_history(venv), [{'at': '1'}, {'at': '3'}])

    def test_no_history(self):
        self.assertEqual(venv_facts.read_history(self.path('v')), [])


class InspectVenvTest(TempDirTest):
    def inspect(self, path):
        return venv_facts.inspect_venv(path)

    def test_a_venv(self):
        venv = self.venv()
        dist_info(os.path.join(venv, 'lib', 'python3.11', 'site-packages'), 'six', '1.16.0')
        self.assertEqual(self.inspect(venv), {'path': venv, 'state': 'venv', 'installed': [{'name': 'six', 'version': '1.16.0'}], 'history': []})

    def test_pips_stash_folders_are_listed_and_not_read_as_distributions(self):
        venv = self.venv()
        site = os.path.join(venv, 'lib', 'python3.11', 'site-packages')
        dist_info(site, 'six', '1.16.0')
        dist_info(site, '~jango', '5.0')
        write(os.path.join(site, '~jango', '__init__.py'), '')
        write(os.path.join(site, '~not-a-folder'), '')
        self.assertEqual(self.inspect(venv), {
            'path': venv, 'state': 'venv', 'installed': [{'name': 'six', 'version': '1.16.0'}], 'history': [],
            'stashes': [os.path.join(site, '~jango'), os.path.join(site, '~jango-5.0.dist-info')]})

    def test_a_venv_being_created_is_half_made_and_reported_missing(self):
        venv = self.venv()
        write(os.path.join(venv, '.vdeploy', 'creating'), '{}')
        self.assertEqual(self.inspect(venv), {'path': venv, 'state': 'missing', 'halfMade': True})
        # Even before pyvenv.cfg was written.
        os.unlink(os.path.join(venv, 'pyvenv.cfg'))
        self.assertEqual(self.inspect(venv)['state'], 'missing')

    def test_missing(self):
        self.assertEqual(self.inspect(self.path('new')), {'path': self.path('new'), 'state': 'missing'})

    def test_states_that_are_not_venvs(self):
        os.symlink(self.path('nowhere'), self.path('dangling'))
        write(self.path('file'), 'x')
        os.makedirs(self.path('plain-dir'))
        self.venv('no-python', python=False)
        broken = self.venv('broken-python', python=False)
        os.makedirs(os.path.join(broken, 'bin'))
        os.symlink(self.path('gone'), os.path.join(broken, 'bin', 'python'))
        dir_python = self.venv('dir-python', python=False)
        os.makedirs(os.path.join(dir_python, 'bin', 'python'))
        cases = [
            ('dangling', 'is a broken symlink to %s' % self.path('nowhere')),
            ('file', 'is a file, not a venv directory'),
            ('plain-dir', 'is a directory without pyvenv.cfg (not a venv)'),
            ('no-python', 'is a directory with pyvenv.cfg but no bin/python'),
            ('broken-python', 'is a venv whose bin/python is a broken symlink (%s does not exist)' % self.path('gone')),
            ('dir-python', 'is a venv whose bin/python is a directory'),
            (os.path.join('file', 'below'), 'cannot be created: %s is not a directory' % self.path('file')),
        ]
        for name, detail in cases:
            with self.subTest(name=name):
                self.assertEqual(self.inspect(self.path(name)), {'path': self.path(name), 'state': 'not-a-venv', 'detail': detail})

    def test_a_special_file(self):
        self.assertEqual(self.inspect('/dev/null')['detail'], 'is a special file, not a venv directory')

    def test_first_non_directory(self):
        write(self.path('f'), 'x')
        self.assertEqual(venv_facts.first_non_directory(self.path('f', 'a', 'b')), self.path('f'))
        self.assertEqual(venv_facts.first_non_directory(self.path('d', 'e')), self.path('d', 'e'))


if __name__ == '__main__':
    unittest.main()
