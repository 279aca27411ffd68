import { Command, CommanderError } from 'commander';
import { runCommand } from './runCommand.js';
import { version } from './version.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/**
 * The `rapsim` command line (interface.md). Returns the process exit code; never throws for bad
 * input (exit 2) and never prints a stack trace for it.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const io = { out: process.stdout, err: process.stderr };
  let code = 0;
  const program = new Command()
    .name('rapsim')
    .description(
      'Can a RET use a return-address-predictor entry it was promised would be gone — and what does safety cost?',
    )
    .version(version, '-V, --version')
    .exitOverride()
    .configureOutput({ writeErr: (s) => io.err.write(s), writeOut: (s) => io.out.write(s) });

  program
    .command('run')
    .description('simulate one scenario and judge it against the promises of docs/domain.md §5')
    .argument('<scenario>', 'scenario YAML file')
    .option('--seed <n>', 'root seed (overrides the scenario)')
    .option('--workers <n>', 'worker threads (partitions); results do not depend on it')
    .option('--until <time>', 'simulated time to run (e.g. 2ms)')
    .option('--set <key=value>', 'override a scenario field by dotted path (repeatable)', collect, [])
    .option('--json', 'print exactly one JSON report on stdout')
    .option('--out <dir>', 'write report.json into DIR')
    .option('--quiet', 'print nothing but errors')
    .action(async (file: string, flags) => {
      code = await runCommand(file, flags, io);
    });

  for (const [name, what] of [
    ['sweep', 'parallel sweeps over seeds and variants'],
    ['charts', 'state-chart export'],
    ['view', 'the local trace viewer'],
  ] as const) {
    program
      .command(name, { hidden: false })
      .description(`${what} (not available yet in this version)`)
      .allowUnknownOption()
      .allowExcessArguments()
      .action(() => {
        io.err.write(
          `rapsim: \`${name}\` is not available yet in rapsim ${version}: ${what} is still being built.\n`,
        );
        code = 2;
      });
  }

  try {
    await program.parseAsync(argv as string[]);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; every other parse failure is bad input.
      return err.exitCode === 0 ? 0 : 2;
    }
    throw err;
  }
  return code;
}
