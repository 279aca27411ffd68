import { describe, expect, it } from 'vitest';
import { parseScenarioText } from '../../src/scenario/load.js';
import type { Scenario } from '../../src/scenario/schema.js';
import { buildTopology, pcpuId, placeVcpus, type VcpuPlacement, vcpuId } from '../../src/workers/compose.js';

/**
 * placeVcpus (src/workers/compose.ts): pins first, then the least-loaded core with ties to the
 * lowest index; several vCPUs per core only under overcommit; an L2's vCPU i on its L1's vCPU i
 * (or on the L1 vCPU its `pin` names).
 */

function scenario(cores: number, vms: string, coresPerLlc?: number): Scenario {
  const llc = coresPerLlc ? `, coresPerLlc: ${coresPerLlc}` : '';
  return parseScenarioText(
    `name: t\nuntil: 10us\nhardware: { cores: ${cores}${llc} }\nvms:\n${vms}`,
    'test.yaml',
  );
}

/** VM index → core of each of its vCPUs, in vCPU order. */
function coresByVm(p: VcpuPlacement[]): number[][] {
  const out: number[][] = [];
  for (const x of p) {
    out[x.vm] ??= [];
    out[x.vm]![x.vcpu] = x.core;
  }
  return out;
}

function load(p: VcpuPlacement[], cores: number): number[] {
  const n = Array.from({ length: cores }, () => 0);
  for (const x of p) if (x.level === 1) n[x.core]!++;
  return n;
}

describe('placeVcpus', () => {
  it('one VM with as many vCPUs as cores: one vCPU per core', () => {
    const p = placeVcpus(scenario(4, '  - { name: a, vcpus: 4 }\n'));
    expect(coresByVm(p)).toEqual([[0, 1, 2, 3]]);
  });

  it('overcommit: 3 VMs × 4 vCPUs on 4 cores put vCPU i of every VM on core i', () => {
    const p = placeVcpus(
      scenario(4, '  - { name: a, vcpus: 4 }\n  - { name: b, vcpus: 4 }\n  - { name: c, vcpus: 4 }\n'),
    );
    expect(p).toHaveLength(12);
    expect(coresByVm(p)).toEqual([
      [0, 1, 2, 3],
      [0, 1, 2, 3],
      [0, 1, 2, 3],
    ]);
    expect(load(p, 4)).toEqual([3, 3, 3, 3]);
    expect(p.every((x) => x.level === 1)).toBe(true);
  });

  it('uneven overcommit spreads the extra vCPUs from core 0 on', () => {
    const p = placeVcpus(scenario(4, '  - { name: a, vcpus: 3 }\n  - { name: b, vcpus: 3 }\n'));
    expect(coresByVm(p)).toEqual([
      [0, 1, 2],
      [3, 0, 1],
    ]);
  });

  it('pins are respected, even several on one core, and counted before anything is spread', () => {
    const p = placeVcpus(
      scenario(
        4,
        '  - { name: a, vcpus: 2, pin: [0, 0] }\n  - { name: b, vcpus: 2 }\n  - { name: c, vcpus: 3 }\n',
      ),
    );
    // Loads after the pins: [2,0,0,0]; b → 1, 2; c → 3, then the least loaded from the lowest index.
    expect(coresByVm(p)).toEqual([
      [0, 0],
      [1, 2],
      [3, 1, 2],
    ]);
    expect(load(p, 4)).toEqual([2, 2, 2, 1]);
  });

  it('a VM pinned later in the file still claims its cores first', () => {
    const p = placeVcpus(scenario(4, '  - { name: a, vcpus: 2 }\n  - { name: b, vcpus: 2, pin: [0, 1] }\n'));
    expect(coresByVm(p)).toEqual([
      [2, 3],
      [0, 1],
    ]);
  });

  it("an L2's vCPU i runs on its L1's vCPU i's core", () => {
    const p = placeVcpus(
      scenario(
        4,
        `  - name: l1
    vcpus: 2
    pin: [3, 1]
    nested: { vms: [ { name: l2, vcpus: 2 } ] }
`,
      ),
    );
    expect(p).toEqual([
      { vm: 0, vcpu: 0, core: 3, level: 1 },
      { vm: 0, vcpu: 1, core: 1, level: 1 },
      { vm: 1, vcpu: 0, core: 3, level: 2 },
      { vm: 1, vcpu: 1, core: 1, level: 2 },
    ]);
  });

  it("an L2's pin names the L1 vCPU each of its vCPUs runs on, and so its core", () => {
    const p = placeVcpus(
      scenario(
        4,
        `  - name: l1
    vcpus: 3
    pin: [3, 1, 2]
    nested: { vms: [ { name: l2, vcpus: 2, pin: [2, 0] } ] }
`,
      ),
    );
    expect(p.filter((x) => x.level === 2)).toEqual([
      { vm: 1, vcpu: 0, core: 2, level: 2 },
      { vm: 1, vcpu: 1, core: 3, level: 2 },
    ]);
  });

  it('every vCPU lives in the partition of the core it runs on (it shares that core’s hardware)', () => {
    const s = scenario(4, '  - { name: a, vcpus: 4 }\n  - { name: b, vcpus: 4 }\n', 2);
    const topo = buildTopology(s, 2);
    expect(topo.partitions).toBe(2);
    for (const x of placeVcpus(s)) {
      const v = topo.ids.indexOf(vcpuId(x.vm, x.vcpu));
      const c = topo.ids.indexOf(pcpuId(x.core));
      expect(v).toBeGreaterThanOrEqual(0);
      expect(topo.partitionOf[v]).toBe(topo.partitionOf[c]);
      expect(topo.latency(v, c), 'a vCPU talks to its own core over a zero-latency link').toBe(0);
    }
  });

  it('keeps an active migration domain in one partition and cuts the rest as before', () => {
    // Cores 0–3 start with two vCPUs each (a queue can form there): that LLC is active. Cores
    // 4–7 have one each: nothing can ever queue there, so they are cut core by core.
    // A guest that halts: only a pCPU whose vCPUs sleep goes idle and pulls.
    const s = scenario(8, '  - { name: a, vcpus: 12, guest: { hlt: { every: 1ms } } }\n', 4);
    const topo = buildTopology(s, 4);
    expect(topo.migration.activeDomainOfCore).toEqual([0, 0, 0, 0, -1, -1, -1, -1]);
    expect(topo.migration.migratable.size, 'the 8 vCPUs of the active LLC').toBe(8);
    const part = (c: number) => topo.partitionOf[topo.ids.indexOf(pcpuId(c))]!;
    expect([0, 1, 2, 3].map(part)).toEqual([0, 0, 0, 0]);
    expect([4, 5, 6, 7].map(part)).toEqual([1, 1, 2, 2]);
    expect(topo.partitions).toBe(3);
    expect(topo.lookahead).toBeGreaterThan(0);
    // Off, or pinned: no domain is active and the cores split as always.
    const off = parseScenarioText(
      'name: t\nuntil: 10us\nhardware: { cores: 8, coresPerLlc: 4 }\nhost: { scheduler: { migration: off } }\nvms:\n  - { name: a, vcpus: 12 }\n',
      'test.yaml',
    );
    expect(buildTopology(off, 4).partitions).toBe(4);
    expect(buildTopology(off, 4).migration.migratable.size).toBe(0);
    // vCPUs that never block keep every pCPU busy: nothing can ever be pulled.
    const busy = scenario(8, '  - { name: a, vcpus: 12 }\n', 4);
    expect(buildTopology(busy, 4).migration.activeDomainOfCore).toEqual(Array(8).fill(-1));
  });

  it('refuses a last-level cache that does not divide the socket', () => {
    expect(() => scenario(8, '  - { name: a, vcpus: 2 }\n', 3)).toThrow(
      /coresPerLlc[\s\S]*divisor of coresPerSocket \(8\)/,
    );
  });
});
