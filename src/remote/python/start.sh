# How vdeploy starts Python on a host, for every script: `sh -c "$(cat start.sh)" NAME BOOTSTRAP [VENV]`.
# $0 names the script in messages; $1 is bootstrap.py's text; $2, when given, is a venv whose
# pyvenv.cfg `home` interpreter is tried first (relocate: the venv's own bin/python may not run after
# a copy from another machine, and its home interpreter compiles bytecode for the right version).
# Then Debian's /usr/bin/python3 (a pyenv/asdf shim first on PATH costs 100-200 ms per start), then
# python3 from PATH. Exit 127, saying where it looked, when there is none.
home=
if [ -n "${2:-}" ]; then
  home=$(sed -n 's/^[[:space:]]*home[[:space:]]*=[[:space:]]*//p' "$2/pyvenv.cfg" 2>/dev/null | head -n 1)
fi
for py in ${home:+"$home/python3"} /usr/bin/python3 python3; do
  if command -v "$py" >/dev/null 2>&1; then exec "$py" -I -c "$1"; fi
done
echo "$0: no python3 found on $(hostname 2>/dev/null || echo this host) (looked for ${home:+$home/python3, }/usr/bin/python3 and python3 on PATH)" >&2
exit 127
