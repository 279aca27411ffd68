import fc from 'fast-check';
import { expect, it } from 'vitest';
import { parseScenarioText } from '../../src/scenario/load.js';
import { runSimulation } from '../../src/workers/runSimulation.js';

/**
 * Bare-metal machines drawn at random — sockets and cores, the three ERAPS specs with or without
 * microarchitectural extra clears, processes spread over different numbers of cores, stuffing,
 * every context-switch and flush instruction, shootdowns of several pages, HLT, call depths
 * beyond the RAP — run end to end for a short while. On ERAPS hardware the machine executes
 * every clear its spec promises, so whatever the OS does:
 * - no RET uses an entry pushed before a clear its context believed in (`rap-promised-clear`);
 *   a core that skipped one promised clear fails it at once;
 * - no CPU uses a translation a completed shootdown removed (`tlb-stale`);
 * - the trace digest is the same with one partition per core as with one for all.
 * `RAPSIM_PROPERTY_RUNS` / `RAPSIM_PROPERTY_SEED` as for vmInvariants (1,500 draws at seed 5
 * pass).
 */
interface BareConfig {
  sockets: number;
  cps: number;
  spec: string;
  micro: number;
  count: number;
  tpp: number[];
  stuffing: string;
  cs: string;
  csEvery: string;
  gf: string;
  gfEvery: string;
  sd: string;
  pages: number;
  lf: string;
  lfEvery: string;
  hlt: boolean;
  depth: number;
  ws: number;
  seed: number;
}

const RUNS = Number(process.env.RAPSIM_PROPERTY_RUNS ?? 0);
const SEED = Number(process.env.RAPSIM_PROPERTY_SEED ?? 20261129);
/** A hunt of many draws outlasts the default per-test timeout (120 s): ≈ 0.5 s a draw at most. */
const HUNT_TIMEOUT = RUNS > 0 ? 120_000 + RUNS * 500 : undefined;

const arb: fc.Arbitrary<BareConfig> = fc.record({
  sockets: fc.integer({ min: 1, max: 2 }),
  cps: fc.integer({ min: 1, max: 4 }),
  spec: fc.constantFrom('eraps-apm', 'eraps-amd', 'eraps-cr3'),
  micro: fc.constantFrom(0, 0.5, 1),
  count: fc.integer({ min: 1, max: 4 }),
  tpp: fc.array(fc.integer({ min: 1, max: 8 }), { maxLength: 3 }),
  stuffing: fc.constantFrom('auto', 'always', 'never'),
  cs: fc.constantFrom('mov-cr3', 'mov-cr3-noflush', 'invpcid-single'),
  csEvery: fc.constantFrom('7us', '30us', '0'),
  gf: fc.constantFrom('invpcid-all', 'cr4-pge'),
  gfEvery: fc.constantFrom('0', '25us'),
  sd: fc.constantFrom('0', '10us', '40us'),
  pages: fc.integer({ min: 1, max: 4 }),
  lf: fc.constantFrom('cr3-reload', 'invpcid-single', 'invlpg'),
  lfEvery: fc.constantFrom('0', '20us'),
  hlt: fc.boolean(),
  depth: fc.integer({ min: 1, max: 70 }),
  ws: fc.integer({ min: 1, max: 20 }),
  seed: fc.integer({ min: 1, max: 1000 }),
});

function yaml(c: BareConfig, cores: number): string {
  const tpp = c.tpp.map((t) => Math.min(t, cores));
  return `name: bare
seed: ${c.seed}
until: 300us
hardware: { sockets: ${c.sockets}, coresPerSocket: ${c.cps}, spec: ${c.spec}, microarchClears: ${c.micro} }
hostProcesses:
  count: ${c.count}
  threadsPerProcess: [${tpp.join(', ')}]
  stuffing: ${c.stuffing}
  contextSwitch: { every: ${c.csEvery}, using: ${c.cs} }
  globalFlush: { every: ${c.gfEvery}, using: ${c.gf} }
  shootdown: { every: ${c.sd}, pages: ${c.pages} }
  localFlush: { every: ${c.lfEvery}, using: ${c.lf} }
  hlt: { every: ${c.hlt ? '50us' : '0'}, for: 12us }
  callDepth: ${c.depth}
  workingSetPages: ${c.ws}
`;
}

it(
  'bare metal at random on ERAPS hardware: promised clears reach the RAP, no stale translation, any partitioning (30 draws)',
  async () => {
    await fc.assert(
      fc.asyncProperty(arb, async (c) => {
        const cores = c.sockets * c.cps;
        const text = yaml(c, cores);
        const s = parseScenarioText(text, 'bare.yaml');
        const r = await runSimulation(s, { workers: 1, inProcess: true });
        expect(r.violationCounts['tlb-stale'] ?? 0, `tlb-stale in\n${text}`).toBe(0);
        expect(r.violationCounts['rap-promised-clear'] ?? 0, `rap-promised-clear in\n${text}`).toBe(0);
        if (cores > 1) {
          const split = await runSimulation(s, { workers: cores, inProcess: true });
          expect(split.traceDigest, `digest with ${cores} partitions of\n${text}`).toBe(r.traceDigest);
        }
      }),
      { numRuns: RUNS || 30, seed: SEED },
    );
  },
  HUNT_TIMEOUT,
);
