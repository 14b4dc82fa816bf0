import chalk from 'chalk';
import type { CommandModule } from 'yargs';
import { listWheels } from '../../wheels/repository.js';
import { formatTable, type Output } from '../output.js';
import { repoOption, resolveRepoDir, type RepoArgs } from '../wheel-repo.js';

interface WheelsArgs extends RepoArgs {
  json: boolean;
}

export function wheelsCommand(output: Output): CommandModule<RepoArgs, WheelsArgs> {
  return {
    command: 'wheels',
    describe: 'List the wheel repository: each package and its versions, newest first',
    builder: (y) =>
      y.option('repo', repoOption).option('json', { type: 'boolean', default: false, describe: 'Print the listing as JSON' }),
    handler: async (args) => {
      const repo = await resolveRepoDir(args);
      const listing = await listWheels(repo);
      for (const warning of listing.warnings) output.err(`${chalk.yellow('warning:')} ${warning}`);
      if (args.json) {
        output.json({ repo, ...listing });
        return;
      }
      if (listing.packages.length === 0) {
        output.out(`no wheels in ${repo} yet; add some with \`vdeploy add-wheel dist/*.whl\``);
        return;
      }
      const rows: string[][] = [];
      for (const pkg of listing.packages) {
        pkg.versions.forEach((v, i) => {
          rows.push([
            i === 0 ? chalk.bold(pkg.name) : '',
            i === 0 ? chalk.green(v.version) : v.version,
            i === 0 ? chalk.green('newest') : '',
            v.addedAt,
            v.present ? v.filename : `${v.filename} ${chalk.red('(missing from the repository)')}`,
          ]);
        });
      }
      for (const line of formatTable([['PACKAGE', 'VERSION', '', 'ADDED', 'WHEEL'].map((h) => chalk.dim(h)), ...rows])) output.out(line);
    },
  };
}
