import { ADVISORY, type Property } from '../check/violation.js';
import { collectMetrics } from '../report/metrics.js';
import { parseScenarioText } from '../scenario/load.js';
import { runSimulation } from '../workers/runSimulation.js';

/**
 * `npm run comparison`: the bare-metal vs. VM table of the README. One guest workload — process
 * switches by MOV CR3 with deep call stacks, CR4.PGE global flushes, and now and then a MOV CR3
 * that reaches the instruction emulator — run for every spec × policy × NPT, and on bare metal
 * for every spec. Each cell is simulated here, now; nothing is written by hand.
 */

const SPECS = ['legacy', 'eraps-apm', 'eraps-amd', 'eraps-cr3'] as const;
const POLICIES = ['hide', 'naive', 'v6', 'linux-7.0', 'always'] as const;
const UNTIL = '400us';

const WORKLOAD = `
      processes: 4
      callDepth: 40
      contextSwitch: { every: 20us, using: mov-cr3 }
      globalFlush: { every: 50us, using: cr4-pge }
      emulatedMovCr3: { every: 70us }`;

function vmScenario(spec: string, policy: string, npt: boolean): string {
  return `name: comparison
seed: 1
until: ${UNTIL}
hardware: { cores: 1, spec: ${spec} }
host: { npt: ${npt}, policy: ${policy} }
vms:
  - name: vm0
    vcpus: 1
    cpuid: { eraps: true }
    guest:${WORKLOAD}
`;
}

function bareMetalScenario(spec: string): string {
  return `name: comparison-bare-metal
seed: 1
until: ${UNTIL}
hardware: { cores: 1, spec: ${spec} }
hostProcesses:
      count: 4${WORKLOAD.replace('processes: 4', '').replace(/emulatedMovCr3.*$/, '')}
`;
}

interface Row {
  config: string;
  verdict: string;
  stuffingNs: number;
  clearRapVmruns: number;
  exitsNs: number;
  mispredictedPct: string;
  underflowedPct: string;
}

const pct = (n: number, of: number): string => (of > 0 ? ((100 * n) / of).toFixed(2) : '0');

async function row(config: string, text: string): Promise<Row> {
  const s = parseScenarioText(text, 'comparison.yaml');
  const r = await runSimulation(s, { workers: 1, inProcess: true });
  const m = collectMetrics(r.actors, r.topology.timing, r.simulatedPs);
  const found = (Object.entries(r.violationCounts) as [Property, number][]).filter(([, n]) => n > 0);
  const failing = found.filter(([p]) => !ADVISORY.has(p)).map(([p]) => p);
  const advisory = found.filter(([p]) => ADVISORY.has(p)).map(([p]) => p);
  const verdict =
    failing.length > 0
      ? `**unsafe**: ${failing.join(', ')}`
      : advisory.length > 0
        ? `no promise (${advisory.join(', ')})`
        : 'safe';
  return {
    config,
    verdict,
    stuffingNs: m.costNs.stuffing,
    clearRapVmruns: m.clearRapVmruns,
    exitsNs: m.costNs.exits,
    mispredictedPct: pct(m.rap.mispredicted, m.rap.returns),
    underflowedPct: pct(m.rap.underflows, m.rap.returns),
  };
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  for (const spec of SPECS) rows.push(await row(`bare metal, ${spec}`, bareMetalScenario(spec)));
  for (const spec of SPECS) {
    for (const npt of [false, true]) {
      for (const policy of POLICIES)
        rows.push(
          await row(`VM, ${spec}, NPT ${npt ? 'on' : 'off'}, ${policy}`, vmScenario(spec, policy, npt)),
        );
    }
  }
  console.log(
    `| configuration | verdict | stuffing (ns / ${UNTIL}) | VMRUNs with CLEAR_RAP | time in exits (ns) | mispredicted RETs | underflowed RETs |`,
  );
  console.log('|---|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(
      `| ${r.config} | ${r.verdict} | ${r.stuffingNs} | ${r.clearRapVmruns} | ${r.exitsNs} | ${r.mispredictedPct}% | ${r.underflowedPct}% |`,
    );
  }
}

await main();
