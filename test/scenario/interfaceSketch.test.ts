import { describe, expect, it } from 'vitest';
import { MS, US } from '../../src/actors/time.js';
import { parseScenarioText } from '../../src/scenario/load.js';
import { buildTopology } from '../../src/workers/compose.js';

/** The sketch of docs/interface.md, verbatim: the contract's own example must load. */
const SKETCH = `
name: shadow-paging-context-switch
description: Guest processes switch CR3 while KVM shadows guest page tables (NPT off).
seed: 1
until: 2ms
hardware:
  cores: 4                   # or sockets: 2, coresPerSocket: 8
  spec: eraps-amd            # legacy | eraps-apm | eraps-amd | eraps-cr3   (docs/domain.md §2)
  rapEntries: 64
  microarchClears: 0         # ratio of eligible events on which hardware clears beyond the promise
  ibpbClearsRap: true
  autoIbrs: true
host:
  npt: false
  avic: false
  policy: linux-7.0          # hide | naive | v6 | linux-7.0 | always   (docs/domain.md §3)
  ibpbOnVcpuSwitch: true
  scheduler: { slice: 3ms }
  latency: {}                # overrides of docs/timing.md defaults
hostProcesses:                # host tasks (the whole workload of a bare-metal scenario; beside VMs they
  count: 0                    # compete with vCPU threads for cores). Same workload keys as \`guest\`.
  stuffing: auto              # auto: stuff on context switch unless CPUID shows ERAPS | always | never
vms:                          # omit for a bare-metal scenario
  - name: vm0
    vcpus: 4
    pin: [0, 1, 2, 3]        # optional; otherwise the host scheduler places and migrates
    cpuid: { eraps: true, pcid: true, invpcid: true }
    pvTlbFlush: true
    guest:
      processes: 8
      stuffing: auto
      contextSwitch: { every: 50us, using: mov-cr3 }     # mov-cr3 | mov-cr3-noflush | invpcid-single
      globalFlush: { every: 1ms, using: invpcid-all }    # invpcid-all | cr4-pge
      shootdown: { every: 200us, pages: 1 }
      localFlush: { every: 0, using: cr3-reload }        # cr3-reload | invpcid-single | invlpg
      emulatedMovCr3: { every: 0 }                       # MOV CR3 reaching KVM's instruction emulator
      callDepth: 8
      script:                 # optional litmus-style program per vCPU, instead of (or before) the generated workload
        0: [ { call: 4 }, { movCr3: { process: 2 } }, { ret: 4 } ]
    nested:                   # optional: this VM is an L1 hypervisor
      policy: linux-7.0
      vms: [ { name: l2, vcpus: 1, cpuid: { eraps: true }, guest: { processes: 2 } } ]
expect:
  violations: []             # property names allowed to occur; omit to allow any
`;

describe('interface.md sketch', () => {
  it('loads and resolves', () => {
    const s = parseScenarioText(SKETCH, 'interface.md');
    expect(s.host).toMatchObject({
      npt: false,
      policy: 'linux-7.0',
      scheduler: { slice: 3 * MS },
    });
    // The halt-polling window the sketch leaves out is the timing table's (docs/timing.md).
    expect(buildTopology(s, 1).timing).toMatchObject({ schedSlice: 3 * MS, haltPoll: 200 * US });
    const vm = s.vms[0];
    expect(vm?.guest.globalFlush).toEqual({ every: MS, using: 'invpcid-all' });
    expect(vm?.guest.script[0]).toEqual([
      { op: 'call', n: 4 },
      { op: 'movCr3', process: 2, noflush: false },
      { op: 'ret', n: 4 },
    ]);
    expect(vm?.nested?.vms[0]?.name).toBe('l2');
    expect(s.expect).toEqual({ violations: [] });
  });
});
