import { Command, CommanderError } from 'commander';
import { SWEEP_COLUMN_NAMES } from '../sweep/columnNames.js';
import { registerChartsCommand } from './chartsCommand.js';
import { version } from './version.js';
import { registerViewCommand } from './viewCommand.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];
const SWEEP_COLUMNS_HELP = SWEEP_COLUMN_NAMES.join(', ');

/**
 * What to say after commander's "unknown option" when the option belongs to the other of `run`
 * and `sweep`: the two spell their parallelism and seeds differently, and a user moving between
 * them reaches for the other's flag. Commander's own "Did you mean" only catches typos.
 */
const OTHER_COMMANDS_OPTION: Record<string, Record<string, string>> = {
  run: {
    '--threads':
      '`run` spreads one simulation over --workers N threads; `rapsim sweep --threads N` runs N simulations at a time.',
    '--seeds':
      '`run` takes one --seed N; for several, `rapsim sweep FILE --seeds A..B` (or `seeds:` in the scenario).',
    '--vary': '--vary belongs to `rapsim sweep FILE --vary key=v1,v2`; `run` takes --set key=value.',
    '--backend': '--backend belongs to `rapsim sweep`.',
  },
  sweep: {
    '--workers':
      'each simulation of a sweep runs on one thread; `sweep --threads N` sets how many run at a time.',
    '--seed': '`sweep` takes --seeds: one seed N, A..B, or a mix such as 1..4,7.',
  },
};

/** The hint for an "unknown option" error of `command`, if there is one. */
function optionHint(command: string | undefined, error: string): string | undefined {
  const option = /unknown option '([^'=]+)/.exec(error)?.[1];
  return command && option ? OTHER_COMMANDS_OPTION[command]?.[option] : undefined;
}

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
    .configureOutput({
      writeErr: (s) => io.err.write(s),
      writeOut: (s) => io.out.write(s),
      outputError: (s, write) => {
        write(s);
        const hint = optionHint(argv[2], s);
        if (hint) write(`hint: ${hint}\n`);
      },
    });

  program
    .command('run')
    .description('simulate one scenario and judge it against the promises of docs/domain.md §5')
    .argument('<scenario>', 'scenario YAML file')
    .option('--seed <n>', 'root seed (overrides the scenario)')
    .option('--workers <n>', 'worker threads (partitions); results do not depend on it')
    .option('--until <time>', 'simulated time to run (e.g. 2ms)')
    .option('--set <key=value>', 'override a scenario field by dotted path (repeatable)', collect, [])
    .option('--json', 'print exactly one JSON report on stdout')
    .option('--out <dir>', "write report.json, trace.json (Perfetto) and the viewer's timeline.json into DIR")
    .option(
      '--trace-window <from..to>',
      'with --out: trace only this simulated time, e.g. 1ms..1.2ms, 1ms.., ..500us',
    )
    .option('--trace-limit <n>', 'with --out: trace at most N events (default 1000000)')
    .option(
      '--trace-sample <n>',
      'with --out: keep 1 in N continuation events per actor (messages, state changes, findings: all)',
    )
    .option('--quiet', 'print nothing but errors')
    .option('--latency', 'print the timing table in force (defaults + this scenario’s overrides) and exit')
    .option(
      '--columns <list>',
      `when the scenario is a sweep: the table's columns, comma-separated (${SWEEP_COLUMNS_HELP})`,
    )
    .option('--cache <dir>', 'when the scenario is a sweep: keep finished runs in DIR and reuse them')
    .action(async (file: string, flags) => {
      // The simulator, the scenario parser and their dependencies load only for the commands that
      // use them (≈ 0.35 s of every start otherwise: `--help`, `view` and `worker` need none).
      const { runCommand } = await import('./runCommand.js');
      code = await runCommand(file, flags, io);
    });

  program
    .command('sweep')
    .description(
      'run the cross product of matrix/--vary values × seeds in parallel and print one row per variant',
    )
    .argument('<scenario>', 'scenario YAML file')
    .option(
      '--seeds <list>',
      "seeds to run for every variant: A..B, N, or a mix such as 1..4,7 (default: the scenario's seeds, else its seed)",
    )
    .option('--vary <key=v1,v2>', 'vary a field by dotted path over these values (repeatable)', collect, [])
    .option(
      '--set <key=value>',
      'override a scenario field by dotted path for every run (repeatable)',
      collect,
      [],
    )
    .option('--until <time>', 'simulated time of every run (e.g. 2ms)')
    .option('--threads <n>', 'simulations at a time (default: all cores); results do not depend on it')
    .option('--json', 'print exactly one JSON document on stdout')
    .option('--out <dir>', 'write sweep.json, variants.csv and runs.csv into DIR')
    .option('--quiet', 'print nothing but errors')
    .option(
      '--columns <list>',
      `the table's columns after the varied keys, comma-separated (${SWEEP_COLUMNS_HELP})`,
    )
    .option(
      '--cache <dir>',
      'keep finished runs in DIR and reuse them: a sweep run again simulates only runs it has not seen',
    )
    .option('--backend <name>', 'local (piscina threads) or bullmq (jobs for `rapsim worker`s)', 'local')
    .option('--redis <url>', 'Redis of the bullmq backend, e.g. redis://127.0.0.1:6379')
    .action(async (file: string, flags) => {
      const { sweepCommand } = await import('./sweepCommand.js');
      code = await sweepCommand(file, flags, io);
    });

  program
    .command('worker')
    .description('run sweep jobs from Redis (for `rapsim sweep --backend bullmq`) until stopped')
    .requiredOption('--redis <url>', 'Redis to take jobs from, e.g. redis://127.0.0.1:6379')
    .option('--concurrency <n>', 'simulations at a time (default: all cores)')
    .option('--lock <time>', 'how long a job stays claimed by a worker that stopped answering', '30s')
    .option('--quiet', 'print nothing but errors')
    .action(async (flags) => {
      // Loaded on use: it brings ioredis (≈ 0.2 s of every start of rapsim otherwise, sweeps included).
      const { workerCommand } = await import('./workerCommand.js');
      code = await workerCommand(flags, io);
    });

  registerChartsCommand(program, io, (c) => {
    code = c;
  });
  registerViewCommand(program, io, (c) => {
    code = c;
  });

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
