import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { and, assign, not, setup } from 'xstate';
import { allStates, chartModel, guardName, transitionLabel } from '../../src/viz/chartModel.js';
import { buildChart, buildCharts } from '../../src/viz/charts.js';
import { elkSvg } from '../../src/viz/elkSvg.js';
import { MACHINES, machineOf } from '../../src/viz/machines.js';
import { mermaidChart } from '../../src/viz/mermaid.js';
import { currentReadmeCharts, readmeChartsBlock } from '../../src/viz/readmeCharts.js';
import { activeStateIds } from '../../src/viz/stateIds.js';
import { rapsim, repoRoot, tempDir } from '../helpers/cli.js';

/** A machine with every shape the charts must handle: nesting, parallel regions, delays, finals. */
const nested = setup({
  types: { events: {} as { type: 'GO' } | { type: 'STOP' } | { type: 'TICK' } },
  guards: { ready: () => true, calm: () => true },
  actions: { note: () => undefined },
}).createMachine({
  id: 'demo',
  initial: 'off',
  on: { TICK: { actions: 'note' } },
  states: {
    off: { on: { GO: { target: 'on', guard: and(['ready', not('calm')]) } } },
    on: {
      type: 'parallel',
      description: 'Both regions run at once.',
      states: {
        left: { initial: 'a', states: { a: { after: { 100: 'b' } }, b: { type: 'final' } } },
        right: { initial: 'x', states: { x: { on: { STOP: '#demo.done' } } } },
      },
    },
    done: { type: 'final', entry: assign({}) },
  },
});

describe('chart model', () => {
  it('reads states, event/always/after transitions and guards from the definition', () => {
    const m = chartModel('demo', nested, 'a demo');
    expect(allStates(m.root).map((s) => s.id)).toEqual([
      'demo',
      'demo.off',
      'demo.on',
      'demo.on.left',
      'demo.on.left.a',
      'demo.on.left.b',
      'demo.on.right',
      'demo.on.right.x',
      'demo.done',
    ]);
    const labels = m.transitions.map((t) => `${t.source} -> ${t.targets.join(',')}: ${transitionLabel(t)}`);
    expect(labels).toContain('demo.off -> demo.on: GO [ready && !calm]');
    expect(labels).toContain('demo.on.left.a -> demo.on.left.b: after 100');
    expect(labels).toContain('demo.on.right.x -> demo.done: STOP');
    expect(labels).toContain('demo -> : TICK / note');
    expect(m.root.initial).toBe('off');
    expect(guardName({ type: 'planIs', params: { kind: 'run' } })).toBe('planIs(run)');
  });

  it('maps trace state labels to active state ids', () => {
    expect(activeStateIds('pcpu', 'running')).toEqual(['pcpu.running']);
    expect(activeStateIds('demo', '{"on":{"left":"a","right":"x"}}')).toEqual([
      'demo.on',
      'demo.on.left',
      'demo.on.left.a',
      'demo.on.right',
      'demo.on.right.x',
    ]);
    expect(activeStateIds('pcpu', '')).toEqual([]);
  });

  it('registers every machine kind, matched to actors by id prefix', () => {
    expect(MACHINES.map((m) => m.kind)).toContain('pcpu');
    expect(machineOf('pcpu:0003')?.kind).toBe('pcpu');
    expect(machineOf('nothing:1')).toBeUndefined();
  });
});

describe('charts of the registered machines', () => {
  it('draw every state and every transition of each machine in the SVG and in Mermaid', async () => {
    for (const entry of MACHINES) {
      const c = await buildChart(entry);
      expect(c.svg.startsWith('<svg')).toBe(true);
      expect(c.svg.trim().endsWith('</svg>')).toBe(true);
      expect(c.svg.match(/<g[ >]/g)?.length).toBe(c.svg.match(/<\/g>/g)?.length);
      for (const s of allStates(c.model.root)) {
        expect(c.svg, `${entry.kind}: state ${s.id}`).toContain(`data-state="${s.id}"`);
        expect(c.svg).toContain(`>${s.key}</text>`);
        if (s.id !== c.model.root.id)
          expect(c.mermaid).toContain(`state "${s.key}" as ${s.id.replaceAll('.', '_')}`);
      }
      for (const t of c.model.transitions) {
        if (t.kind === 'event' && t.event) expect(c.svg, `${entry.kind}: ${t.event}`).toContain(t.event);
      }
      // The JSON export carries the machine's own definition beside the normalised chart.
      const json = JSON.parse(c.json) as { definition: { id: string }; states: { id: string } };
      expect(json.definition.id).toBe(entry.machine.id);
      expect(json.states.id).toBe(c.model.root.id);
    }
  });

  it('lays out nested and parallel states as nested boxes', async () => {
    const m = chartModel('demo', nested, 'a demo');
    const svg = await elkSvg(m);
    for (const s of allStates(m.root)) expect(svg).toContain(`data-state="${s.id}"`);
    const box = (id: string) => {
      const g = new RegExp(
        `data-state="${id.replaceAll('.', '\\.')}">\\s*(?:<title>[^<]*</title>)?\\s*<rect x="([\\d.-]+)" y="([\\d.-]+)" width="([\\d.]+)" height="([\\d.]+)"`,
      ).exec(svg);
      expect(g, id).not.toBeNull();
      const [x, y, w, h] = g!.slice(1).map(Number) as [number, number, number, number];
      return { x, y, w, h };
    };
    const outer = box('demo.on');
    for (const inner of ['demo.on.left', 'demo.on.left.a', 'demo.on.right.x'].map(box)) {
      expect(inner.x).toBeGreaterThanOrEqual(outer.x);
      expect(inner.y).toBeGreaterThanOrEqual(outer.y);
      expect(inner.x + inner.w).toBeLessThanOrEqual(outer.x + outer.w + 0.1);
      expect(inner.y + inner.h).toBeLessThanOrEqual(outer.y + outer.h + 0.1);
    }
    const mm = mermaidChart(m);
    expect(mm).toContain('state "on" as demo_on {');
    expect(mm).toContain('--');
    expect(mm).toContain('demo_done --> [*]');
    expect(mm).toContain('in any state:');
  });

  it('are embedded in the README and current (npm run charts regenerates them)', async () => {
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    const expected = readmeChartsBlock(await buildCharts(undefined, false));
    expect(currentReadmeCharts(readme), 'README.md charts are stale: run `npm run charts`').toBe(expected);
  });
});

describe('rapsim charts', () => {
  it('writes every format into --out, prints Mermaid by default and JSON on request', async () => {
    const dir = tempDir('rapsim-charts-');
    const r = await rapsim(['charts', '--out', dir]);
    expect(r.code).toBe(0);
    for (const ext of ['mmd', 'svg', 'json']) expect(existsSync(join(dir, `pcpu.${ext}`))).toBe(true);
    const svg = readFileSync(join(dir, 'pcpu.svg'), 'utf8');
    expect(svg).toContain('data-state="pcpu.running"');
    const m = await rapsim(['charts']);
    expect(m.code).toBe(0);
    expect(m.stdout.startsWith('stateDiagram-v2')).toBe(true);
    const j = await rapsim(['charts', '--format', 'json', '--machine', 'pcpu']);
    expect(j.code).toBe(0);
    expect((JSON.parse(j.stdout) as { charts: { kind: string }[] }).charts.map((c) => c.kind)).toEqual([
      'pcpu',
    ]);
  });

  it('refuses a bad format or machine with exit code 2', async () => {
    const f = await rapsim(['charts', '--format', 'png']);
    expect(f.code).toBe(2);
    expect(f.stderr).toContain('--format: expected one of mermaid, svg, json, found "png"');
    const m = await rapsim(['charts', '--machine', 'toaster']);
    expect(m.code).toBe(2);
    expect(m.stderr).toContain('--machine');
  });
});
