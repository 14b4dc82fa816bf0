import { expect } from 'chai';
import { parseConfig } from '../../src/config/load-deployfile.js';
import { expandExpectBody, healthcheckInput, healthcheckProblem } from '../../src/deploy/healthcheck-input.js';
import type { ResolvedPackage } from '../../src/resolve/resolve-venv.js';

const pkg = (name: string, key: string, version: string): ResolvedPackage => ({ name, key, version, filename: `${name}-${version}-py3-none-any.whl`, sha256: 'x', requiredBy: [] });
const set = [pkg('My_App', 'my-app', '1.4.2'), pkg('Django', 'django', '5.2.17')];

describe('health check input', () => {
  it('replaces {version:NAME} by the version being deployed, names compared as pip does', () => {
    expect(expandExpectBody('my_app {version:My.App} on django {version:django}', set)).to.deep.equal({ ok: true, text: 'my_app 1.4.2 on django 5.2.17' });
    expect(expandExpectBody('{"status": "ok"}', set)).to.deep.equal({ ok: true, text: '{"status": "ok"}' });
    expect(expandExpectBody('{version:other}', set)).to.deep.equal({ ok: false, name: 'other' });
  });

  it('a placeholder naming a package outside the set is a plan error naming it', () => {
    const hc = parseConfig({ hosts: [{ name: 'a', healthcheck: { url: 'http://127.0.0.1/', expectBody: 'v{version:nope}' } }] }, '/p/deployfile.ts').hosts[0]!.healthcheck!;
    expect(healthcheckProblem(hc, set)).to.equal('healthcheck.expectBody names {version:nope}, but nope is not in the set being deployed');
    expect(healthcheckProblem({ ...hc, expectBody: 'v{version:my-app}' }, set)).to.equal(undefined);
  });

  it('defaults: a status-only check with no settle delay, as before expectBody existed', () => {
    const hc = parseConfig({ hosts: [{ name: 'a', healthcheck: { url: 'http://127.0.0.1/' } }] }, '/p/deployfile.ts').hosts[0]!.healthcheck!;
    expect(healthcheckInput(hc, set)).to.deep.equal({ url: 'http://127.0.0.1/', expectStatus: 200, timeout: 10, retries: 3, interval: 2, settle: 0 });
    expect(healthcheckInput({ ...hc, expectBody: 'app {version:my_app}', settle: 1 }, set)).to.include({ expectBody: 'app 1.4.2', settle: 1 });
  });
});
