"""An interpreter's facts: version, PEP 508 marker environment, supported wheel tags.

The probe (probe.py) runs this file's text in every interpreter it has no cached facts for, as
`INTERPRETER -I -c SOURCE`: standalone, with no vdeploy_remote to import (it is a venv's python, not
the one the probe runs in). It prints one JSON line:
  {"version", "markers", "supportedTags", "files"} or {"error": "one line"}.

`files` are the files besides the interpreter binary that the facts were computed from: where
`packaging.tags` was imported from and a shared libpython. The probe fingerprints them with the
binary, so a pip upgrade in that venv, or a libpython replaced under an unchanged binary, makes it
compute the facts afresh.

`packaging.tags` is looked for, fastest first: the venv's pip (its vendored packaging), a `packaging`
module, the pip wheels ensurepip ships (Debian's /usr/share/python-wheels too; importable as a zip,
slower: no cached bytecode), then the base interpreter's site-packages (a `python3.6 -m venv` has
pip 18.1, whose packaging has no `tags`, where the base may have a newer pip).

The marker environment is computed as packaging's default_environment() does, without importing
`packaging.markers` (old vendored versions pull in pyparsing: 30-100 ms per interpreter). Python 3.6
and the standard library only.
"""
import json
import os
import platform
import re
import sys


def full_version(info):
    version = '%d.%d.%d' % (info.major, info.minor, info.micro)
    if info.releaselevel != 'final':
        version += info.releaselevel[0] + str(info.serial)
    return version


def marker_environment():
    return {
        'implementation_name': sys.implementation.name,
        'implementation_version': full_version(sys.implementation.version),
        'os_name': os.name,
        'platform_machine': platform.machine(),
        'platform_release': platform.release(),
        'platform_system': platform.system(),
        'platform_version': platform.version(),
        'python_full_version': platform.python_version(),
        'platform_python_implementation': platform.python_implementation(),
        'python_version': '.'.join(platform.python_version_tuple()[:2]),
        'sys_platform': sys.platform,
    }


def forget(package):
    """Drops a package that failed to import, so that the next attempt finds it anew elsewhere."""
    for name in list(sys.modules):
        if name == package or name.startswith(package + '.'):
            del sys.modules[name]


def pip_wheels():
    """The pip wheels ensurepip would install, newest first."""
    import glob
    import sysconfig
    found = glob.glob(os.path.join(sysconfig.get_paths()['stdlib'], 'ensurepip', '_bundled', 'pip-*.whl'))
    found += glob.glob('/usr/share/python-wheels/pip-*.whl')

    def version(path):
        m = re.match(r'pip-([0-9.]+)', os.path.basename(path))
        return [int(p) for p in m.group(1).strip('.').split('.') if p] if m else []
    return sorted(found, key=version, reverse=True)


def base_site_packages():
    """The base interpreter's site-packages (of a venv), where they exist and are not on sys.path already."""
    name = 'python%d.%d' % sys.version_info[:2]
    found = []
    for lib in ('lib64', 'lib'):
        directory = os.path.join(sys.base_prefix, lib, name, 'site-packages')
        if os.path.isdir(directory) and directory not in sys.path and os.path.realpath(directory) not in found:
            found.append(os.path.realpath(directory))
    return found


def import_from(entry, module):
    """`module`'s tags, imported with `entry` first on sys.path; None (and sys.path as it was) when it fails."""
    sys.path.insert(0, entry)
    try:
        if module == 'pip':
            from pip._vendor.packaging import tags
        else:
            from packaging import tags
        return tags
    except Exception:
        sys.path.remove(entry)
        forget(module)
        return None


def import_tags(wheels, bases):
    """(packaging.tags, the file it came from: a zip's path when imported from one), or (None, None)."""
    try:
        from pip._vendor.packaging import tags
        return tags, tags.__file__
    except Exception:
        forget('pip')
    try:
        from packaging import tags
        return tags, tags.__file__
    except Exception:
        forget('packaging')
    for wheel in wheels:
        tags = import_from(wheel, 'pip')
        if tags is not None:
            return tags, wheel
    for base in bases:
        for module in ('pip', 'packaging'):
            tags = import_from(base, module)
            if tags is not None:
                return tags, tags.__file__
    return None, None


def shared_library():
    """A --enable-shared build keeps the interpreter proper in libpython, not in the binary."""
    import sysconfig
    if not sysconfig.get_config_var('Py_ENABLE_SHARED'):
        return []
    name = sysconfig.get_config_var('INSTSONAME') or sysconfig.get_config_var('LDLIBRARY')
    path = os.path.join(sysconfig.get_config_var('LIBDIR') or '', name or '')
    return [path] if name and os.path.isfile(path) else []


def own_pip():
    """'its pip is 18.1' or 'it has no pip', for the message when no packaging.tags was found."""
    try:
        import pip
        return 'its pip is %s' % pip.__version__
    except Exception:
        return 'it has no pip'
    finally:
        forget('pip')


def facts():
    tags, source = import_tags(pip_wheels(), base_site_packages())
    if tags is None:
        return {'error': '%s: vdeploy learns its wheel tags from packaging.tags (pip 19.3 or newer has it) and found none: '
                         '%s, no packaging module, no newer pip wheel for ensurepip or in /usr/share/python-wheels, '
                         'none in the base interpreter; install pip 19.3 or newer in it (or Debian\'s python3-pip-whl '
                         'on the host)' % (sys.executable, own_pip())}
    return {
        'version': platform.python_version(),
        'markers': marker_environment(),
        'supportedTags': [str(t) for t in tags.sys_tags()],
        'files': [os.path.abspath(source)] + shared_library(),
    }


def main():
    # The newline first: whatever was printed before (a sitecustomize?) does not run into the JSON line.
    sys.stdout.write('\n' + json.dumps(facts()) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
