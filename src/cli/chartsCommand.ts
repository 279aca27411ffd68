import type { Command } from 'commander';
import { buildCharts, CHART_FORMATS, type ChartFormat, chartText, writeCharts } from '../viz/charts.js';
import { MACHINES } from '../viz/machines.js';

export interface ChartsFlags {
  out?: string;
  format?: string;
  machine?: string[];
}

type Io = { out: NodeJS.WritableStream; err: NodeJS.WritableStream };

/**
 * `rapsim charts [--out DIR] [--format mermaid|svg|json] [--machine KIND]...`: the state chart of
 * every machine kind, generated from the machine definitions. With `--out`, writes
 * `<kind>.mmd|svg|json` (every format unless `--format` names one) and lists the files; without,
 * prints the charts in one format (Mermaid unless told) on stdout. Returns the exit code.
 */
export async function chartsCommand(flags: ChartsFlags, io: Io): Promise<number> {
  const formats = flags.format ? [flags.format] : flags.out ? [...CHART_FORMATS] : ['mermaid'];
  for (const f of formats) {
    if (!(CHART_FORMATS as readonly string[]).includes(f)) {
      io.err.write(`rapsim charts: --format: expected one of ${CHART_FORMATS.join(', ')}, found "${f}".\n`);
      return 2;
    }
  }
  const kinds = MACHINES.map((m) => m.kind);
  for (const k of flags.machine ?? []) {
    if (!kinds.includes(k)) {
      io.err.write(`rapsim charts: --machine: expected one of ${kinds.join(', ')}, found "${k}".\n`);
      return 2;
    }
  }
  const charts = await buildCharts(
    flags.machine && flags.machine.length > 0 ? flags.machine : undefined,
    formats.includes('svg'),
  );
  if (flags.out) {
    let written: string[];
    try {
      written = writeCharts(flags.out, charts, formats as ChartFormat[]);
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? String(err);
      io.err.write(`rapsim charts: --out ${flags.out}: expected a writable directory, found ${reason}.\n`);
      return 2;
    }
    for (const p of written) io.out.write(`${p}\n`);
    return 0;
  }
  const format = formats[0] as ChartFormat;
  if (format === 'json') {
    const docs = charts.map((c) => JSON.parse(c.json) as unknown);
    io.out.write(`${JSON.stringify({ charts: docs }, null, 2)}\n`);
  } else {
    io.out.write(charts.map((c) => chartText(c, format)).join('\n'));
  }
  return 0;
}

/** Adds `charts` to the program (main.ts). */
export function registerChartsCommand(program: Command, io: Io, setCode: (code: number) => void): void {
  const collect = (v: string, prev: string[]): string[] => [...prev, v];
  program
    .command('charts')
    .description('export the state chart of every machine kind (Mermaid, SVG laid out with elkjs, JSON)')
    .option('--out <dir>', 'write <kind>.mmd, <kind>.svg and <kind>.json into DIR (else print to stdout)')
    .option('--format <format>', `one format only: ${CHART_FORMATS.join(' | ')}`)
    .option(
      '--machine <kind>',
      `only this machine kind (repeatable): ${MACHINES.map((m) => m.kind).join(', ')}`,
      collect,
      [],
    )
    .action(async (flags: ChartsFlags) => {
      setCode(await chartsCommand(flags, io));
    });
}
