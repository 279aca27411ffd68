import type { z } from 'zod';
import { LatencySchema } from './latency.js';
import { LIMITS } from './limits.js';
import { bool, intIn, oneOf } from './numbers.js';
import { RatioSchema } from './ratio.js';
import { strictObject } from './strictObject.js';

/** Hardware spec variants (docs/domain.md §2): which clears the hardware promises. */
export const SPECS = ['legacy', 'eraps-apm', 'eraps-amd', 'eraps-cr3'] as const;
export type Spec = (typeof SPECS)[number];

/** Cores of a scenario that names none: a small single-socket machine, as in interface.md's sketch. */
const DEFAULT_CORES = 4;

/** RAP entries by spec: legacy AMD cores have 32; Zen 5 (ERAPS) reports RapSize 8 → 64. */
export function defaultRapEntries(spec: Spec): number {
  return spec === 'legacy' ? 32 : 64;
}

const HardwareFields = strictObject({
  cores: intIn(0, LIMITS.cores).optional(),
  sockets: intIn(1, LIMITS.sockets).optional(),
  coresPerSocket: intIn(1, LIMITS.cores).optional(),
  /**
   * Cores that share a last-level cache (a Zen CCX): the host scheduler's migration domain
   * (`host.scheduler.migration: llc`). Defaults to the largest divisor of `coresPerSocket` up
   * to 8, the CCX size of Zen 3–5.
   */
  coresPerLlc: intIn(1, LIMITS.cores).optional(),
  clockHz: intIn(1_000_000, 1_000_000_000_000, 'a clock in Hz, 1e6..1e12').default(3_000_000_000),
  spec: oneOf(SPECS).default('eraps-amd'),
  rapEntries: intIn(1, LIMITS.rapEntries).optional(),
  microarchClears: RatioSchema.prefault(0),
  ibpbClearsRap: bool().default(true),
  autoIbrs: bool().default(true),
  latency: LatencySchema.prefault({}),
});

/**
 * The physical machine. `cores` alone means one socket; `sockets` × `coresPerSocket` may replace
 * or accompany it, and the output always carries all three, consistent. `rapEntries` defaults by
 * `spec`. A machine of 0 cores parses here and is refused by the topology check, which can say
 * why in those words.
 *
 * @example
 * HardwareSchema.parse({ sockets: 2, coresPerSocket: 8 }) // { cores: 16, sockets: 2, coresPerSocket: 8, ... }
 * HardwareSchema.parse({ spec: 'legacy' }).rapEntries // 32
 */
export const HardwareSchema = HardwareFields.superRefine((hw, ctx) => {
  const problem = topologyProblem(hw.cores, hw.sockets, hw.coresPerSocket);
  if (problem) {
    ctx.addIssue({ code: 'custom', path: [problem.key], input: hw[problem.key], message: problem.expected });
    return;
  }
  const perSocket = resolveTopology(hw.cores, hw.sockets, hw.coresPerSocket).coresPerSocket;
  if (hw.coresPerLlc !== undefined && perSocket > 0 && perSocket % hw.coresPerLlc !== 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['coresPerLlc'],
      input: hw.coresPerLlc,
      message: `a divisor of coresPerSocket (${perSocket}): a last-level cache does not span sockets`,
    });
  }
}).transform(({ cores, sockets, coresPerSocket, coresPerLlc, rapEntries, ...rest }) => {
  const topo = resolveTopology(cores, sockets, coresPerSocket);
  return {
    ...topo,
    coresPerLlc: coresPerLlc ?? defaultCoresPerLlc(topo.coresPerSocket),
    ...rest,
    rapEntries: rapEntries ?? defaultRapEntries(rest.spec),
  };
});
export type Hardware = z.output<typeof HardwareSchema>;

/** The largest divisor of a socket's core count up to 8 (a Zen 3–5 CCX has 8 cores). */
function defaultCoresPerLlc(perSocket: number): number {
  for (let d = Math.min(8, perSocket); d > 1; d--) if (perSocket % d === 0) return d;
  return 1;
}

type CoreKey = 'cores' | 'sockets' | 'coresPerSocket';

function topologyProblem(
  cores: number | undefined,
  sockets: number | undefined,
  perSocket: number | undefined,
): { key: CoreKey; expected: string } | undefined {
  if (sockets !== undefined && perSocket === undefined && cores === undefined) {
    return { key: 'coresPerSocket', expected: 'coresPerSocket (or cores) alongside sockets' };
  }
  if (cores === undefined) return undefined;
  if (sockets !== undefined && perSocket !== undefined && sockets * perSocket !== cores) {
    return { key: 'cores', expected: `sockets × coresPerSocket = ${sockets * perSocket} cores` };
  }
  if (sockets !== undefined && perSocket === undefined && cores % sockets !== 0) {
    return { key: 'cores', expected: `a multiple of sockets (${sockets})` };
  }
  if (perSocket !== undefined && sockets === undefined && cores % perSocket !== 0) {
    return { key: 'cores', expected: `a multiple of coresPerSocket (${perSocket})` };
  }
  return undefined;
}

/** Fills in whichever of the three counts is missing; only called on a consistent combination. */
function resolveTopology(
  cores: number | undefined,
  sockets: number | undefined,
  perSocket: number | undefined,
) {
  if (sockets !== undefined && perSocket !== undefined) {
    return { cores: sockets * perSocket, sockets, coresPerSocket: perSocket };
  }
  if (cores === undefined) {
    const per = perSocket ?? DEFAULT_CORES;
    return { cores: per, sockets: 1, coresPerSocket: per };
  }
  if (sockets !== undefined) return { cores, sockets, coresPerSocket: cores / sockets };
  if (perSocket !== undefined) return { cores, sockets: cores / perSocket, coresPerSocket: perSocket };
  return { cores, sockets: 1, coresPerSocket: cores };
}
