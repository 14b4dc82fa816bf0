"""PEP 440 version equality, for the apply's post-install check (the plan compares with PEP 440 too:
an installed 1.0.0 is the released 1.0). Standard library only: hosts need not have `packaging`.
Versions that are not PEP 440 compare as their lower-cased text, as pip's legacy versions did."""
import re

# The regular expression of PEP 440's appendix B.
VERSION = re.compile(r"""
    ^\s*v?
    (?:(?P<epoch>[0-9]+)!)?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?P<pre>[-_.]?(?P<pre_l>a|b|c|rc|alpha|beta|pre|preview)[-_.]?(?P<pre_n>[0-9]+)?)?
    (?P<post>(?:-(?P<post_n1>[0-9]+))|(?:[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>[0-9]+)?))?
    (?P<dev>[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>[0-9]+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    \s*$
""", re.VERBOSE | re.IGNORECASE)

PRE = {'a': 'a', 'alpha': 'a', 'b': 'b', 'beta': 'b', 'c': 'rc', 'rc': 'rc', 'pre': 'rc', 'preview': 'rc'}


def key(version):
    """A value equal for exactly the versions PEP 440 calls equal."""
    m = VERSION.match(version)
    if m is None:
        return ('legacy', version.strip().lower())
    release = [int(p) for p in m.group('release').split('.')]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    pre = (PRE[m.group('pre_l').lower()], int(m.group('pre_n') or 0)) if m.group('pre') else None
    post = None
    if m.group('post'):
        post = int(m.group('post_n1') or m.group('post_n2') or 0)
    dev = int(m.group('dev_n') or 0) if m.group('dev') else None
    local = None
    if m.group('local'):
        local = tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r'[-_.]', m.group('local')))
    return (int(m.group('epoch') or 0), tuple(release), pre, post, dev, local)


def same(a, b):
    return key(a) == key(b)
