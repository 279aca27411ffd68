import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ScenarioError } from '../../src/scenario/errors.js';
import { parseScenarioText } from '../../src/scenario/load.js';
import { placeVcpus } from '../../src/workers/compose.js';

/**
 * An L2's `pin` (docs/domain.md §3, nested SVM): each of its vCPUs runs on the L1 vCPU the pin
 * names, so on that vCPU's core; one vCPU of each L2 VM per L1 vCPU. Random L1s (pinned to random
 * cores) with random L2s: a pin that gives two vCPUs one L1 vCPU, or an unpinned L2 larger than
 * its L1, is refused; everything else is placed where the pins say.
 */
const nested: fc.Arbitrary<Nested> = fc
  .record({
    cores: fc.integer({ min: 1, max: 4 }),
    l1Vcpus: fc.integer({ min: 1, max: 4 }),
    l2s: fc.array(
      fc.record({
        vcpus: fc.integer({ min: 1, max: 4 }),
        // Each pin entry an L1 vCPU index (reduced modulo the L1's size below); absent: no pin.
        pin: fc.option(fc.array(fc.nat(7), { minLength: 4, maxLength: 4 }), { nil: undefined }),
      }),
      { minLength: 1, maxLength: 2 },
    ),
    l1Pin: fc.array(fc.nat(7), { minLength: 4, maxLength: 4 }),
  })
  .map((g) => ({
    ...g,
    l1Pin: g.l1Pin.slice(0, g.l1Vcpus).map((c) => c % g.cores),
    l2s: g.l2s.map((l2) => ({ vcpus: l2.vcpus, pin: l2.pin?.slice(0, l2.vcpus).map((v) => v % g.l1Vcpus) })),
  }));

interface Nested {
  cores: number;
  l1Vcpus: number;
  l1Pin: number[];
  l2s: { vcpus: number; pin: number[] | undefined }[];
}

function yaml(g: Nested): string {
  const l2s = g.l2s
    .map((l2, k) => `{ name: l2${k}, vcpus: ${l2.vcpus}${l2.pin ? `, pin: [${l2.pin.join(', ')}]` : ''} }`)
    .join(', ');
  return `name: t\nuntil: 10us\nhardware: { cores: ${g.cores} }\nvms:\n  - name: l1\n    vcpus: ${g.l1Vcpus}\n    pin: [${g.l1Pin.join(', ')}]\n    nested: { vms: [ ${l2s} ] }\n`;
}

describe("an L2's pin", () => {
  it('places each L2 vCPU on the core of the L1 vCPU it names, or refuses what L1 cannot run', () => {
    fc.assert(
      fc.property(nested, (g) => {
        const hosts = g.l2s.map((l2) => l2.pin ?? Array.from({ length: l2.vcpus }, (_, i) => i));
        const runnable = hosts.every((h) => new Set(h).size === h.length && h.every((v) => v < g.l1Vcpus));
        let s: ReturnType<typeof parseScenarioText>;
        try {
          s = parseScenarioText(yaml(g), 't.yaml');
        } catch (e) {
          expect(e).toBeInstanceOf(ScenarioError);
          expect(runnable).toBe(false);
          expect((e as ScenarioError).path).toMatch(/^vms\.0\.nested\.vms\.\d+\.(pin\.\d+|vcpus)$/);
          return;
        }
        expect(runnable).toBe(true);
        const placed = placeVcpus(s);
        g.l2s.forEach((_, k) => {
          hosts[k]!.forEach((l1Vcpu, j) => {
            expect(placed.find((p) => p.vm === 1 + k && p.vcpu === j)?.core).toBe(g.l1Pin[l1Vcpu]);
          });
        });
      }),
      { numRuns: 300, seed: 20261129 },
    );
  });
});
