/**
 * Holding a deploy mid-way, for tests that act while it runs (Ctrl-C, a killed apply): `waitFor` polls a
 * condition, `pauser` is the .pth line that holds vdeploy's pip.
 */

/** Resolves once `what` is true; throws after `ms`. */
export async function waitFor(what: () => Promise<boolean> | boolean, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The .pth line an app wheel carries: while `pause` exists, the install step's pip (the one run with
 * PIP_CONFIG_FILE=/dev/null) writes its PID to `pause`.reached (through a temporary name of its own,
 * so two pips never share one) and waits, at most 5 minutes.
 */
export function pauser(pause: string): string {
  const code = [
    `p = '${pause}'`,
    "if os.environ.get('PIP_CONFIG_FILE') == os.devnull and os.path.exists(p):",
    "    t = p + '.reached.' + str(os.getpid()); open(t, 'w').write(str(os.getpid())); os.rename(t, p + '.reached')",
    '    for _ in range(6000):',
    '        if not os.path.exists(p): break',
    '        time.sleep(0.05)',
  ].join('\\n');
  return `import os, time; exec("${code}")\n`;
}
