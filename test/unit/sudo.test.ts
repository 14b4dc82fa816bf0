import { expect } from 'chai';
import { sudoArgv, sudoRefusal } from '../../src/remote/sudo.js';

describe('sudo for venvs of another user', () => {
  const ctx = { host: 'web1', login: 'deploy', owner: 'app', what: 'the apply script' };

  it('never prompts: sudo -n -u OWNER', () => {
    expect(sudoArgv('app')).to.deep.equal(['sudo', '-n', '-u', 'app']);
  });

  it('explains sudo\'s own refusal: where, for whom, and the sudoers rule that allows it', () => {
    const r = sudoRefusal('sudo: a password is required\n', ctx)!;
    expect(r.message).to.equal('sudo refused to run the apply script as app for deploy on web1: sudo: a password is required');
    expect(r.hint).to.equal('on web1, let deploy run commands as app without a password: add `deploy ALL=(app) NOPASSWD: ALL` to /etc/sudoers.d/vdeploy (edit it with visudo -f), or make deploy the venv\'s user');
    expect(sudoRefusal('sudo: unknown user appp\nsudo: error initializing audit plugin sudoers_audit\n', ctx)!.message).to.match(/: sudo: unknown user appp$/);
  });

  it('a host without sudo (the shell\'s or Python\'s complaint)', () => {
    for (const stderr of ['sh: 1: sudo: not found', "[Errno 2] No such file or directory: 'sudo'", 'bash: sudo: command not found']) {
      const r = sudoRefusal(stderr, ctx)!;
      expect(r.message, stderr).to.equal('sudo is not installed on web1, and deploy needs it to run the apply script as app');
      expect(r.hint).to.match(/^install sudo on web1/);
    }
  });

  it('is not sudo\'s fault otherwise', () => {
    expect(sudoRefusal('Traceback (most recent call last):\nMemoryError\n', ctx)).to.equal(undefined);
    expect(sudoRefusal('', ctx)).to.equal(undefined);
  });
});
