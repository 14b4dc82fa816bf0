import type { CommandModule } from 'yargs';
import { initProject } from '../../scaffold/init-project.js';
import type { GlobalArgs } from '../context.js';
import type { Output } from '../output.js';

export function initCommand(output: Output): CommandModule<GlobalArgs, GlobalArgs> {
  return {
    command: 'init',
    describe: 'Create a starter deployfile.ts, requirements.txt and an empty wheels/ repository here',
    handler: async () => {
      const result = await initProject(process.cwd());
      for (const file of result.created) output.out(`created ${file}`);
      output.out('next: edit deployfile.ts, then `vdeploy add-wheel dist/*.whl`');
    },
  };
}
