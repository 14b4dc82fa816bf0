// A practice fleet for the README's tour and for trying things by hand (not a test): starts H real
// sshd hosts × V venvs on loopback (as the tests do), writes a deploy project wired to them with
// Django, gunicorn and a small Django app released, prints where, and runs until Ctrl-C.
//   npx tsx test/helpers/practice-fleet.ts [HOSTS=2] [VENVS=2]
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { makeDeployProject } from './deploy-project.js';
import { buildDjangoAppWheel, SHOPAPP_SETTINGS } from './django-app.js';
import { startFleet } from './fleet.js';
import { SHARED_WHEELS } from './paths.js';

const hosts = Number(process.argv[2] ?? 2);
const venvs = Number(process.argv[3] ?? 2);
const fleet = await startFleet({ hosts, venvsPerHost: venvs });
const files = await readdir(SHARED_WHEELS);
const shared = ['django-', 'asgiref-', 'sqlparse-', 'gunicorn-'].map((p) => join(SHARED_WHEELS, files.find((f) => f.startsWith(p))!));
const app = await buildDjangoAppWheel(join(fleet.dir, 'dist'), { version: '1.0' });
const project = await makeDeployProject(fleet, {
  venvs: fleet.hosts.flatMap((h) => h.venvs.map((path) => ({ host: h, path, django: { settings: SHOPAPP_SETTINGS, env: { SHOPAPP_DB: join(path, 'db.sqlite3') } } }))),
  requirements: 'shopapp\n',
  wheels: [...shared, app],
});
if (process.env.PRACTICE_FLEET_JSON) console.log(JSON.stringify({ project: project.dir, fleet: fleet.dir }));
else console.log(`practice fleet: ${hosts} hosts × ${venvs} venvs. In another shell:\n  cd ${project.dir}\nthen try \`vdeploy plan\` and \`vdeploy deploy\`. Ctrl-C here stops the fleet.`);
const stop = () => void fleet.stop().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setInterval(() => {}, 1 << 30);
