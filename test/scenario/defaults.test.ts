import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MS, US } from '../../src/actors/time.js';
import { parseScenarioText } from '../../src/scenario/load.js';
import { RatioSchema } from '../../src/scenario/ratio.js';
import { buildTopology } from '../../src/workers/compose.js';

/** host.scheduler with nothing set but what the timing table supplies (slice, haltPoll). */
const SCHEDULER_DEFAULTS = {
  migration: 'llc',
  migrationCost: 500 * US,
  yieldForfeit: true,
  pickBuddy: true,
  delayDequeue: true,
  tick: 0,
};

const parse = (text: string) => parseScenarioText(text, 'x.yaml');

describe('defaults', () => {
  it('resolves a minimal scenario with every default', () => {
    const s = parse('name: minimal\n');
    expect(s).toMatchObject({
      name: 'minimal',
      description: '',
      seed: 1,
      until: 2 * MS,
      maxEvents: 50_000_000,
      workers: 1,
      vms: [],
    });
    expect(s.hardware).toEqual({
      cores: 4,
      sockets: 1,
      coresPerSocket: 4,
      coresPerLlc: 4,
      clockHz: 3_000_000_000,
      spec: 'eraps-amd',
      rapEntries: 64,
      microarchClears: { num: 0, den: 1 },
      ibpbClearsRap: true,
      autoIbrs: true,
      latency: {},
    });
    expect(s.host).toEqual({
      npt: true,
      avic: false,
      policy: 'linux-7.0',
      ibpbOnVcpuSwitch: true,
      scheduler: SCHEDULER_DEFAULTS,
      latency: {},
      tasks: [],
    });
    expect(s.hostProcesses).toEqual({
      count: 0,
      threadsPerProcess: [],
      stuffing: 'auto',
      contextSwitch: { every: 50 * US, using: 'mov-cr3' },
      globalFlush: { every: 0, using: 'invpcid-all' },
      shootdown: { every: 0, pages: 1 },
      localFlush: { every: 0, using: 'cr3-reload' },
      emulatedMovCr3: { every: 0 },
      hlt: { every: 0, for: 10 * US },
      callDepth: 8,
      workingSetPages: 16,
      script: {},
    });
    expect(s.expect).toBeUndefined();
    expect(s.matrix).toBeUndefined();
    expect(s.seeds).toBeUndefined();
  });

  it('fills a VM with its defaults', () => {
    const [vm] = parse('name: x\nvms: [ { name: vm0, vcpus: 2 } ]\n').vms;
    expect(vm).toMatchObject({ name: 'vm0', vcpus: 2, pvTlbFlush: false });
    expect(vm?.cpuid).toEqual({ eraps: true, pcid: true, invpcid: true });
    expect(vm?.pin).toBeUndefined();
    expect(vm?.nested).toBeUndefined();
    expect(vm?.guest.processes).toBe(2);
    expect(vm?.guest.script).toEqual({});
  });

  it('resolves nested VMs recursively', () => {
    const s = parse(
      'name: x\nvms: [ { name: l1, vcpus: 2, nested: { vms: [ { name: l2, vcpus: 1 } ] } } ]\n',
    );
    expect(s.vms[0]?.nested?.policy).toBe('linux-7.0');
    expect(s.vms[0]?.nested?.vms[0]?.guest.contextSwitch.every).toBe(50 * US);
  });
});

describe('hardware topology', () => {
  it('reads cores alone as one socket', () => {
    expect(parse('name: x\nhardware: { cores: 4 }\n').hardware).toMatchObject({
      cores: 4,
      sockets: 1,
      coresPerSocket: 4,
    });
  });

  it('multiplies sockets by cores per socket', () => {
    expect(parse('name: x\nhardware: { sockets: 2, coresPerSocket: 8 }\n').hardware).toMatchObject({
      cores: 16,
      sockets: 2,
      coresPerSocket: 8,
    });
  });

  it('accepts all three when consistent, and derives the missing one', () => {
    expect(parse('name: x\nhardware: { sockets: 2, coresPerSocket: 8, cores: 16 }\n').hardware.cores).toBe(
      16,
    );
    expect(parse('name: x\nhardware: { sockets: 2, cores: 12 }\n').hardware.coresPerSocket).toBe(6);
    // A last-level cache: the largest divisor of the socket up to 8 (a Zen CCX), unless given.
    expect(parse('name: x\nhardware: { sockets: 2, cores: 12 }\n').hardware.coresPerLlc).toBe(6);
    expect(parse('name: x\nhardware: { sockets: 2, coresPerSocket: 32 }\n').hardware.coresPerLlc).toBe(8);
    expect(parse('name: x\nhardware: { cores: 12, coresPerLlc: 4 }\n').hardware.coresPerLlc).toBe(4);
    expect(parse('name: x\nhardware: { coresPerSocket: 3, cores: 12 }\n').hardware.sockets).toBe(4);
  });

  it('defaults rapEntries by spec, and keeps an explicit one', () => {
    expect(parse('name: x\nhardware: { spec: legacy }\n').hardware.rapEntries).toBe(32);
    for (const spec of ['eraps-apm', 'eraps-amd', 'eraps-cr3']) {
      expect(parse(`name: x\nhardware: { spec: ${spec} }\n`).hardware.rapEntries).toBe(64);
    }
    expect(parse('name: x\nhardware: { spec: legacy, rapEntries: 16 }\n').hardware.rapEntries).toBe(16);
  });
});

describe('values', () => {
  it('reads times with units and integer picoseconds', () => {
    const s = parse('name: x\nuntil: 250ns\nhost: { scheduler: { slice: 3ms, haltPoll: 1500 } }\n');
    expect(s.until).toBe(250_000);
    expect(s.host.scheduler).toEqual({
      slice: 3 * MS,
      haltPoll: 1500,
      ...SCHEDULER_DEFAULTS,
    });
  });

  it("takes the scheduler's slice and halt poll from the timing table, set by either name", () => {
    const timing = (text: string) => buildTopology(parse(text), 1).timing;
    expect(timing('name: x\n')).toMatchObject({ schedSlice: 2_800 * US, haltPoll: 200 * US });
    expect(timing('name: x\nhost: { scheduler: { slice: 3ms, haltPoll: 1us } }\n')).toMatchObject({
      schedSlice: 3 * MS,
      haltPoll: US,
    });
    // host.latency names the same two numbers (docs/timing.md: every cost is overridable there).
    expect(timing('name: x\nhost: { latency: { schedSlice: 1ms, haltPoll: 0 } }\n')).toMatchObject({
      schedSlice: MS,
      haltPoll: 0,
    });
  });

  it('reads the host processes and their spans', () => {
    expect(
      parse('name: x\nhostProcesses: { count: 3, threadsPerProcess: [2, 4] }\n').hostProcesses,
    ).toMatchObject({
      count: 3,
      threadsPerProcess: [2, 4],
    });
  });

  it('reads latency overrides into picoseconds', () => {
    expect(
      parse('name: x\nhost: { latency: { exitHandler: 1us, ipiSameSocket: 500 } }\n').host.latency,
    ).toEqual({
      exitHandler: US,
      ipiSameSocket: 500,
    });
  });

  it('reads microarchClears as an exact integer ratio', () => {
    expect(parse('name: x\nhardware: { microarchClears: 0.25 }\n').hardware.microarchClears).toEqual({
      num: 1,
      den: 4,
    });
    expect(parse('name: x\nhardware: { microarchClears: "2/6" }\n').hardware.microarchClears).toEqual({
      num: 1,
      den: 3,
    });
    expect(parse('name: x\nhardware: { microarchClears: 1 }\n').hardware.microarchClears).toEqual({
      num: 1,
      den: 1,
    });
  });

  it('keeps any n/d ratio exactly, reduced', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.nat(1_000_000), (den, n) => {
        const num = n % (den + 1);
        const r = RatioSchema.parse(`${num}/${den}`);
        // Same value (cross-multiplied, in integers) and reduced.
        expect(BigInt(r.num) * BigInt(den)).toBe(BigInt(num) * BigInt(r.den));
        expect(gcd(r.num, r.den)).toBe(1);
      }),
    );
  });

  it('keeps any number of six decimals exactly', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1_000_000 }), (micro) => {
        const r = RatioSchema.parse(micro / 1_000_000);
        expect(BigInt(r.num) * 1_000_000n).toBe(BigInt(micro) * BigInt(r.den));
      }),
    );
  });

  it('resolves seeds and keeps expect and matrix', () => {
    const s = parse(
      'name: x\nseeds: 3..6\nexpect: { violations: [rap-promised-clear], exitCode: 1 }\nmatrix: { host.policy: [naive, linux-7.0], vms.0.vcpus: [1, 2] }\nvms: [ { name: a, vcpus: 1 } ]\n',
    );
    expect(s.seeds).toEqual([3, 4, 5, 6]);
    expect(s.expect).toEqual({ violations: ['rap-promised-clear'], exitCode: 1 });
    expect(parse('name: x\nexpect: { find: [tlb-stale] }\n').expect).toEqual({ find: ['tlb-stale'] });
    expect(s.matrix).toEqual({ 'host.policy': ['naive', 'linux-7.0'], 'vms.0.vcpus': [1, 2] });
    expect(parse('name: x\nseeds: [7, 9]\n').seeds).toEqual([7, 9]);
  });
});

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
