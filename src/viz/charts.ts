import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ChartModel, chartModel } from './chartModel.js';
import { elkSvg } from './elkSvg.js';
import { MACHINES, type MachineEntry } from './machines.js';
import { mermaidChart } from './mermaid.js';

export const CHART_FORMATS = ['mermaid', 'svg', 'json'] as const;
export type ChartFormat = (typeof CHART_FORMATS)[number];

/** File extension of each format. */
export const CHART_EXT: Record<ChartFormat, string> = { mermaid: 'mmd', svg: 'svg', json: 'json' };

/** One machine's chart in every format. */
export interface Chart {
  kind: string;
  description: string;
  model: ChartModel;
  mermaid: string;
  svg: string;
  /** The JSON export: the normalised chart and the machine's own `toJSON()` definition. */
  json: string;
}

/**
 * Charts of the registered machines (all, or those of `kinds`), in registry order. The SVG
 * (elkjs layout, the slow part) is drawn only when `svg` is true; otherwise it is ''.
 */
export async function buildCharts(kinds?: readonly string[], svg = true): Promise<Chart[]> {
  const entries = kinds ? MACHINES.filter((m) => kinds.includes(m.kind)) : MACHINES;
  const out: Chart[] = [];
  for (const e of entries) out.push(await buildChart(e, svg));
  return out;
}

export async function buildChart(e: MachineEntry, svg = true): Promise<Chart> {
  const model = chartModel(e.kind, e.machine, e.description);
  const json = `${JSON.stringify(
    {
      kind: e.kind,
      description: e.description,
      states: model.root,
      transitions: model.transitions,
      definition: e.machine.toJSON(),
    },
    null,
    2,
  )}\n`;
  return {
    kind: e.kind,
    description: e.description,
    model,
    mermaid: mermaidChart(model),
    svg: svg ? await elkSvg(model) : '',
    json,
  };
}

/** The text of one chart in one format. */
export function chartText(c: Chart, format: ChartFormat): string {
  return format === 'mermaid' ? c.mermaid : format === 'svg' ? c.svg : c.json;
}

/** Writes `<kind>.<ext>` for each chart and format into `dir`; returns the paths written. */
export function writeCharts(
  dir: string,
  charts: readonly Chart[],
  formats: readonly ChartFormat[],
): string[] {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const c of charts) {
    for (const f of formats) {
      const path = join(dir, `${c.kind}.${CHART_EXT[f]}`);
      writeFileSync(path, chartText(c, f));
      written.push(path);
    }
  }
  return written;
}
