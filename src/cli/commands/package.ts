/** `vdeploy package`: .deb / .rpm packages of the deployfile's `packages` (docs/packages.md). */
import chalk from 'chalk';
import type { CommandModule } from 'yargs';
import { ConfigError } from '../../errors.js';
import { buildPackages, type PackageEvent, type PackageFormat, type PackageResult } from '../../package/package.js';
import { loadConfig, type GlobalArgs } from '../context.js';
import { onInterrupt } from '../interrupt.js';
import type { Output } from '../output.js';
import { formatBytes } from '../render-events.js';
import { hostConnectorOptions, sshOptions, type SshArgs } from '../ssh-options.js';
import { createHostConnector } from '../../remote/connect-host.js';

interface PackageArgs extends GlobalArgs, SshArgs {
  names: string[];
  format: 'deb' | 'rpm' | 'both';
  version: string;
  iteration: number;
  out: string;
  'apt-repo'?: string;
  json: boolean;
}

export function packageCommand(output: Output): CommandModule<GlobalArgs, PackageArgs> {
  return {
    command: 'package [names..]',
    describe: "Build OS packages (.deb, .rpm) of the deployfile's packages: a venv relocated to its prefix, config files, a service",
    builder: (y) =>
      sshOptions(y)
        // --version is ours here (the package version), not yargs' "show vdeploy's version" flag.
        .version(false)
        .positional('names', { type: 'string', array: true, default: [] as string[], describe: 'Packages to build (none: every package of the deployfile)' })
        .option('format', { choices: ['deb', 'rpm', 'both'] as const, default: 'deb' as const, describe: 'Which package formats to write' })
        .option('version', { type: 'string', demandOption: 'give the version of the package, e.g. --version 1.4.2', describe: 'The package version (upstream part), e.g. 1.4.2' })
        .option('iteration', { type: 'number', default: 1, describe: 'The package revision of that version (Debian revision, RPM release)' })
        .option('out', { type: 'string', default: '.', describe: 'Directory the packages are written to' })
        .option('apt-repo', { type: 'string', describe: 'Also copy the .debs into this flat apt repository directory and update its Packages, Packages.gz and Release' })
        .option('json', { type: 'boolean', default: false, describe: 'Print the written files as JSON (schema in docs/cli.md)' }),
    handler: async (args) => {
      const config = await loadConfig(args);
      const formats: PackageFormat[] = args.format === 'both' ? ['deb', 'rpm'] : [args.format];
      const interrupted = new AbortController();
      const restore = onInterrupt(() => interrupted.abort());
      // Opened only when a package has buildOn.
      const connector = createHostConnector(config, hostConnectorOptions(args, output));
      try {
        const result = await buildPackages(config, {
          names: args.names,
          formats,
          version: String(args.version),
          iteration: args.iteration,
          outDir: args.out,
          ...(args['apt-repo'] !== undefined ? { aptRepo: args['apt-repo'] } : {}),
          ...sourceDateEpoch(process.env.SOURCE_DATE_EPOCH),
          connector,
          onEvent: (e) => renderEvent(output, e),
          signal: interrupted.signal,
        });
        if (args.json) output.json(result);
        else for (const line of renderResult(result)) output.out(line);
      } finally {
        restore();
        await connector.closeAll();
      }
    },
  };
}

function sourceDateEpoch(value: string | undefined): { sourceDateEpoch?: number } {
  if (value === undefined || value === '') return {};
  if (!/^\d+$/.test(value)) throw new ConfigError(`SOURCE_DATE_EPOCH=${value} is not a number of seconds`, { hint: 'set it to seconds since 1970 (e.g. $(git log -1 --format=%ct)), or unset it' });
  return { sourceDateEpoch: Number(value) };
}

function renderEvent(output: Output, e: PackageEvent): void {
  if (e.kind === 'step') output.err(chalk.dim(`${e.package}: ${e.step}${e.detail ? `: ${e.detail}` : ''}`));
}

/** One line per written file: path, size, sha256. */
export function renderResult(r: PackageResult): string[] {
  const lines = r.written.map((w) => `${w.file}  ${formatBytes(w.size)}  sha256:${w.sha256}`);
  if (r.aptRepo) lines.push(`apt repository ${r.aptRepo.dir}: ${r.aptRepo.packages} package(s) indexed (Packages, Packages.gz, Release)`);
  return lines;
}
