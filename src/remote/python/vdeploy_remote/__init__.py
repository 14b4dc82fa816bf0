"""The Python vdeploy runs on hosts. Each entry module (probe, host_apply, apply_venv, relocate) has a
main() that bootstrap.py runs; the others are libraries they import. Python 3.6 and the standard
library only: this runs on whatever python3 a host has."""
