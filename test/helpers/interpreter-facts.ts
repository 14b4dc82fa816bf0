/** The marker environment of a Debian 12 CPython 3.11 on amd64, as the probe tests use it. */
export const LINUX_MARKERS = {
  implementation_name: 'cpython',
  implementation_version: '3.11.2',
  os_name: 'posix',
  platform_machine: 'x86_64',
  platform_release: '6.1.0',
  platform_system: 'Linux',
  platform_version: '#1 SMP',
  python_full_version: '3.11.2',
  platform_python_implementation: 'CPython',
  python_version: '3.11',
  sys_platform: 'linux',
};
