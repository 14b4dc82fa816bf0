import chalk from 'chalk';
import type { CommandModule } from 'yargs';
import { relative } from 'node:path';
import { selectVenvs } from '../../selectors/select-venvs.js';
import { loadConfig, type GlobalArgs } from '../context.js';
import { formatTable, type Output } from '../output.js';

interface VenvsArgs extends GlobalArgs {
  selectors: string[];
  role: string[];
  json: boolean;
}

export function venvsCommand(output: Output): CommandModule<GlobalArgs, VenvsArgs> {
  return {
    command: 'venvs [selectors..]',
    describe: 'List the venvs the deployfile declares that SELECTORs match (no connection is made)',
    builder: (y) =>
      y
        .positional('selectors', {
          type: 'string',
          array: true,
          default: [],
          describe: 'host, user@host, user@host:/path, host:/path, :/path or user@ (none = all)',
        })
        .option('role', { type: 'string', array: true, default: [], describe: 'Only hosts with this role (repeatable)' })
        .option('json', { type: 'boolean', default: false, describe: 'Print the venvs as JSON' }),
    handler: async (args) => {
      const config = await loadConfig(args);
      const venvs = selectVenvs(config, { selectors: args.selectors, roles: args.role });
      if (args.json) {
        output.json(
          venvs.map((v) => ({
            id: v.id,
            host: v.host.name,
            address: v.host.address,
            port: v.host.port,
            loginUser: v.host.user,
            user: v.user,
            path: v.path,
            python: v.python,
            requirements: v.requirements,
            roles: v.host.roles,
            django: v.django ?? null,
            releases: v.releases ?? null,
          })),
        );
        return;
      }
      const rows = venvs.map((v) => [
        v.id,
        `${v.host.user}@${v.host.address}:${v.host.port}`,
        v.python,
        relative(config.dir, v.requirements) || v.requirements,
        v.host.roles.join(',') || '-',
        [v.releases ? `releases (keep ${v.releases.keep})` : '', v.django ? `django ${v.django.settings}` : ''].filter(Boolean).join(', '),
      ]);
      const header = ['VENV', 'CONNECT AS', 'PYTHON', 'REQUIREMENTS', 'ROLES', ''].map((h) => chalk.dim(h));
      for (const line of formatTable([header, ...rows])) output.out(line);
    },
  };
}
