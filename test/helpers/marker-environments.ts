/** Marker environments the marker tests evaluate against (unit and integration tiers alike). */
import type { MarkerEnvironment } from '../../src/requirements/markers.js';

/** Debian 12's CPython, as default_environment() reports it on an amd64 host. */
export const LINUX: MarkerEnvironment = {
  implementation_name: 'cpython',
  implementation_version: '3.11.2',
  os_name: 'posix',
  platform_machine: 'x86_64',
  platform_release: '6.1.0-18-amd64',
  platform_system: 'Linux',
  platform_version: '#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)',
  python_full_version: '3.11.2',
  platform_python_implementation: 'CPython',
  python_version: '3.11',
  sys_platform: 'linux',
};

/** A Windows release candidate: pre-release versions and a platform_release that is a version. */
export const WINDOWS: MarkerEnvironment = {
  implementation_name: 'cpython',
  implementation_version: '3.13.0rc2',
  os_name: 'nt',
  platform_machine: 'AMD64',
  platform_release: '10',
  platform_system: 'Windows',
  platform_version: '10.0.22631',
  python_full_version: '3.13.0rc2',
  platform_python_implementation: 'CPython',
  python_version: '3.13',
  sys_platform: 'win32',
};
