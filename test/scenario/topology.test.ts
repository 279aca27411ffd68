import { describe, expect, it } from 'vitest';
import { parseScenarioText } from '../../src/scenario/load.js';
import { ScenarioSchema } from '../../src/scenario/schema.js';
import { checkTopology } from '../../src/scenario/topology.js';
import { scenarioError, vmScript } from './helpers.js';

describe('topology checks', () => {
  it('passes a consistent scenario', () => {
    const s = ScenarioSchema.parse({
      name: 'x',
      hardware: { cores: 2 },
      hostProcesses: {
        count: 1,
        script: { 1: [{ switchTo: { process: 0 } }, { ipi: { to: 0 } }, { syncpoint: 'a' }] },
      },
      vms: [
        {
          name: 'l1',
          vcpus: 2,
          pin: [1, 1],
          guest: {
            processes: 3,
            script: { 1: [{ vmrun: 'l2' }, { awaitSyncpoint: 'a' }, { movCr3: { process: 2 } }] },
          },
          nested: {
            vms: [{ name: 'l2', vcpus: 2, pin: [0, 1], guest: { script: { 1: [{ ipi: { to: 1 } }] } } }],
          },
        },
      ],
    });
    expect(checkTopology(s)).toEqual([]);
  });

  it('reports a process index beyond the guest processes', () => {
    expect(scenarioError(vmScript('[ { movCr3: { process: 4 } } ]'))).toMatchObject({
      path: 'vms.0.guest.script.0.0.movCr3.process',
      expected: 'a process index in 0..3',
      found: '4',
    });
    expect(scenarioError(vmScript('[ { switchTo: { process: 9 } } ]'))).toMatchObject({
      path: 'vms.0.guest.script.0.0.switchTo.process',
    });
    expect(scenarioError(vmScript('[ { emulate: { invpcid: { type: 1, process: 4 } } } ]'))).toMatchObject({
      path: 'vms.0.guest.script.0.0.emulate.invpcid.process',
    });
  });

  it('reports host processes when the host has none', () => {
    expect(
      scenarioError('name: x\nhostProcesses: { script: { 0: [ { switchTo: { process: 0 } } ] } }\n'),
    ).toMatchObject({
      path: 'hostProcesses.script.0.0.switchTo.process',
      expected: 'no process: hostProcesses.count is 0',
    });
  });

  it('reports an IPI to a vCPU that does not exist', () => {
    expect(scenarioError(vmScript('[ { ipi: { to: 4 } } ]'))).toMatchObject({
      path: 'vms.0.guest.script.0.0.ipi.to',
      expected: 'a vCPU index in 0..3',
    });
  });

  it('reports vmrun of an L2 this VM does not host', () => {
    expect(
      scenarioError(
        vmScript('[ { vmrun: l3 } ]', 'vcpus: 1\n    nested: { vms: [ { name: l2, vcpus: 1 } ] }'),
      ),
    ).toMatchObject({
      path: 'vms.0.guest.script.0.0.vmrun',
      expected: "the name of one of this VM's L2 VMs (known: l2)",
      found: '"l3"',
    });
    expect(scenarioError(vmScript('[ { vmrun: l2 } ]'))).toMatchObject({
      expected: 'no vmrun here: this VM has no nested VMs',
    });
    expect(
      scenarioError(
        'name: x\nhostProcesses: { script: { 0: [ { vmrun: vm0 } ] } }\nvms: [ { name: vm0, vcpus: 1 } ]\n',
      ),
    ).toMatchObject({ path: 'hostProcesses.script.0.0.vmrun' });
  });

  it('reports duplicate VM names across nesting levels', () => {
    const e = scenarioError(
      'name: x\nvms:\n  - name: a\n    vcpus: 1\n    nested:\n      vms:\n        - name: a\n          vcpus: 1\n',
    );
    expect(e).toMatchObject({
      path: 'vms.0.nested.vms.0.name',
      line: 7,
      problem: 'duplicate VM name',
      found: '"a"',
    });
  });

  it('checks L2 pins against the L1 vCPUs', () => {
    expect(
      scenarioError(
        'name: x\nvms: [ { name: a, vcpus: 2, nested: { vms: [ { name: b, vcpus: 1, pin: [2] } ] } } ]\n',
      ),
    ).toMatchObject({ path: 'vms.0.nested.vms.0.pin.0', expected: 'an L1 vCPU index in 0..1' });
  });

  it('refuses an L2 with more vCPUs than its L1 unless pins place them', () => {
    expect(
      scenarioError('name: x\nvms: [ { name: a, vcpus: 1, nested: { vms: [ { name: b, vcpus: 2 } ] } } ]\n'),
    ).toMatchObject({
      path: 'vms.0.nested.vms.0.vcpus',
      problem: 'impossible topology: an L2 vCPU without an L1 vCPU to run it',
      found: '2',
    });
  });

  it('refuses two vCPUs of one L2 on one L1 vCPU (not modelled), naming the vCPU already there', () => {
    expect(
      scenarioError(
        'name: x\nvms: [ { name: a, vcpus: 2, nested: { vms: [ { name: b, vcpus: 2, pin: [1, 1] } ] } } ]\n',
      ),
    ).toMatchObject({
      path: 'vms.0.nested.vms.0.pin.1',
      problem: 'not modelled: two vCPUs of one L2 VM on one L1 vCPU',
      expected: 'an L1 vCPU that runs no other vCPU of "b" (vCPU 0 is already on L1 vCPU 1)',
      found: '1',
    });
  });

  it('refuses a nice value on an L2 (L1 schedules its L2s without weights) and one out of -20..19', () => {
    expect(
      scenarioError(
        'name: x\nvms: [ { name: a, vcpus: 1, nested: { vms: [ { name: b, vcpus: 1, nice: 3 } ] } } ]\n',
      ),
    ).toMatchObject({
      path: 'vms.0.nested.vms.0.nice',
      problem: "not modelled: weights in the L1 hypervisor's scheduler",
      found: '3',
    });
    expect(scenarioError('name: x\nvms: [ { name: a, vcpus: 1, nice: 20 } ]\n')).toMatchObject({
      path: 'vms.0.nice',
      expected: 'a nice value, a whole number from -20 to 19',
    });
    expect(
      scenarioError(
        'name: x\nhost: { tasks: [ { name: k, every: 1ms, run: 1us, nice: -21 } ] }\nvms: [ { name: a, vcpus: 1 } ]\n',
      ),
    ).toMatchObject({ path: 'host.tasks.0.nice' });
  });

  it('refuses a scheduler slice or halt poll set both in host.scheduler and in a latency table', () => {
    expect(
      scenarioError('name: x\nhost: { scheduler: { slice: 3ms }, latency: { schedSlice: 1ms } }\n'),
    ).toMatchObject({
      path: 'host.latency.schedSlice',
      problem: 'set twice: host.scheduler.slice is the same number',
    });
    expect(
      scenarioError(
        'name: x\nhardware: { latency: { haltPoll: 0 } }\nhost: { scheduler: { haltPoll: 1us } }\n',
      ),
    ).toMatchObject({
      path: 'hardware.latency.haltPoll',
      expected: 'host.scheduler.haltPoll or hardware.latency.haltPoll, not both',
    });
  });

  it('reports an awaitSyncpoint that nothing reaches', () => {
    expect(scenarioError(vmScript('[ { syncpoint: ready }, { awaitSyncpoint: redy } ]'))).toMatchObject({
      path: 'vms.0.guest.script.0.1.awaitSyncpoint',
      expected: 'the name of a syncpoint in some script (known: ready)',
      found: '"redy"',
    });
  });

  it('finds syncpoints in any script, nested or host', () => {
    const text =
      'name: x\nhostProcesses: { script: { 0: [ { awaitSyncpoint: deep } ] } }\nvms: [ { name: a, vcpus: 1, nested: { vms: [ { name: b, vcpus: 1, guest: { script: { 0: [ { syncpoint: deep } ] } } } ] } } ]\n';
    expect(parseScenarioText(text, 'x.yaml').hostProcesses.script[0]).toEqual([
      { op: 'awaitSyncpoint', name: 'deep' },
    ]);
  });
});
