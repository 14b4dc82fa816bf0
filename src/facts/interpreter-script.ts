/**
 * The Python program the probe starts once per distinct interpreter it has no cached facts for
 * (`INTERPRETER -I -c INTERPRETER_SCRIPT`, see probe-interpreters-script.ts). It prints one JSON line:
 *   {"version", "markers", "supportedTags", "files"} or {"error": "one line"}.
 *
 * `files` are the files besides the interpreter binary that the facts were computed from: where
 * `packaging.tags` was imported from (a venv's pip, a packaging module, or the pip wheel ensurepip
 * ships) and a shared libpython. The probe fingerprints them with the binary, so a pip upgrade in
 * that venv, or a libpython replaced under an unchanged binary, makes it compute the facts afresh.
 *
 * The marker environment is computed as packaging's default_environment() does, without importing
 * `packaging.markers` (old vendored versions pull in pyparsing: 30–100 ms per interpreter). Python
 * 3.6 syntax and library at most: it runs on whatever python3 a host has.
 */
export const INTERPRETER_SCRIPT = String.raw`
import json, os, platform, re, sys

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
    for name in list(sys.modules):
        if name == package or name.startswith(package + '.'):
            del sys.modules[name]

def pip_wheels():
    import glob, sysconfig
    found = glob.glob(os.path.join(sysconfig.get_paths()['stdlib'], 'ensurepip', '_bundled', 'pip-*.whl'))
    found += glob.glob('/usr/share/python-wheels/pip-*.whl')
    def version(path):
        m = re.match(r'pip-([0-9.]+)', os.path.basename(path))
        return [int(p) for p in m.group(1).strip('.').split('.') if p] if m else []
    return sorted(found, key=version, reverse=True)

def import_tags():
    # (module, the file it came from): a zip's path when imported from one.
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
    for wheel in pip_wheels():
        sys.path.insert(0, wheel)
        try:
            from pip._vendor.packaging import tags
            return tags, wheel
        except Exception:
            sys.path.remove(wheel)
            forget('pip')
    return None, None

def shared_library():
    # A --enable-shared build keeps the interpreter proper in libpython, not in the binary.
    import sysconfig
    if not sysconfig.get_config_var('Py_ENABLE_SHARED'):
        return []
    name = sysconfig.get_config_var('INSTSONAME') or sysconfig.get_config_var('LDLIBRARY')
    path = os.path.join(sysconfig.get_config_var('LIBDIR') or '', name or '')
    return [path] if name and os.path.isfile(path) else []

tags, source = import_tags()
if tags is None:
    out = {'error': 'no packaging library for %s: no pip in it, no packaging module, no pip wheel for ensurepip' % sys.executable}
else:
    out = {
        'version': platform.python_version(),
        'markers': marker_environment(),
        'supportedTags': [str(t) for t in tags.sys_tags()],
        'files': [os.path.abspath(source)] + shared_library() if source else shared_library(),
    }
sys.stdout.write('\n' + json.dumps(out) + '\n')
`;
