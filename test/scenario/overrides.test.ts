import { describe, expect, it } from 'vitest';
import { MS } from '../../src/actors/time.js';
import { parseScenarioText } from '../../src/scenario/load.js';
import { parseOverride } from '../../src/scenario/overrides.js';
import { scenarioError } from './helpers.js';

const BASE = 'name: x\nhardware: { cores: 8 }\nvms:\n  - name: vm0\n    vcpus: 2\n    pin: [0, 1]\n';
const withSets = (...sets: string[]) => parseScenarioText(BASE, 'x.yaml', { sets });

describe('--set key=value', () => {
  it('sets a string', () => {
    expect(withSets('host.policy=naive').host.policy).toBe('naive');
    expect(withSets('hardware.spec=legacy').hardware).toMatchObject({ spec: 'legacy', rapEntries: 32 });
  });

  it('sets a number, through a list index', () => {
    expect(withSets('vms.0.vcpus=3', 'vms.0.pin=[0, 1, 2]').vms[0]).toMatchObject({
      vcpus: 3,
      pin: [0, 1, 2],
    });
    expect(withSets('seed=42').seed).toBe(42);
  });

  it('sets a boolean', () => {
    expect(withSets('host.npt=false').host.npt).toBe(false);
  });

  it('sets one item of a list', () => {
    expect(withSets('vms.0.pin.1=7').vms[0]?.pin).toEqual([0, 7]);
  });

  it('reads times and creates missing mappings', () => {
    const s = withSets('host.scheduler.slice=3ms', 'vms.0.guest.contextSwitch.using=invpcid-single');
    expect(s.host.scheduler.slice).toBe(3 * MS);
    expect(s.vms[0]?.guest.contextSwitch.using).toBe('invpcid-single');
  });

  it('creates record entries such as a script or a latency', () => {
    const s = withSets('hostProcesses.script.0=[{ call: 2 }, { ret: 2 }]', 'host.latency.exitHandler=2us');
    expect(s.hostProcesses.script[0]).toEqual([
      { op: 'call', n: 2 },
      { op: 'ret', n: 2 },
    ]);
    expect(s.host.latency).toEqual({ exitHandler: 2_000_000 });
  });

  it('applies in order, the last one winning', () => {
    expect(withSets('host.policy=hide', 'host.policy=always').host.policy).toBe('always');
  });

  it('keeps text that YAML would read as a mapping as a string', () => {
    expect(withSets('description=a: b').description).toBe('a: b');
    expect(withSets('description=').description).toBe('');
  });

  it('reports an unknown path, naming it and the keys allowed', () => {
    const e = scenarioError(BASE, ['hardware.coress=4']);
    expect(e).toMatchObject({ path: 'hardware.coress', problem: 'unknown key in --set hardware.coress=4' });
    expect(e.expected).toMatch(/^one of cores, sockets, coresPerSocket/);
    expect(scenarioError(BASE, ['hots.policy=naive'])).toMatchObject({ path: 'hots' });
    expect(scenarioError(BASE, ['host.policy.name=naive'])).toMatchObject({ path: 'host.policy.name' });
    expect(scenarioError(BASE, ['vms.first.vcpus=1'])).toMatchObject({
      path: 'vms.first',
      expected: 'a list index (0, 1, …)',
    });
  });

  it('reports an index past the end of a list', () => {
    const e = scenarioError(BASE, ['vms.1.vcpus=8']);
    expect(e).toMatchObject({ path: 'vms.1', expected: 'an index in 0..0', found: '1' });
    expect(e.message).toContain('--set vms.1.vcpus=8');
  });

  it('reports a bad value as coming from --set', () => {
    const e = scenarioError(BASE, ['host.policy=naiv']);
    expect(e).toMatchObject({ path: 'host.policy', line: undefined });
    expect(e.message).toContain('found "naiv" (from --set host.policy=naiv)');
  });

  it('is validated with the topology too', () => {
    expect(scenarioError(BASE, ['hardware.cores=1'])).toMatchObject({
      path: 'vms.0.pin.1',
      expected: 'a core index in 0..0',
    });
  });

  it('rejects an argument without =', () => {
    expect(() => parseOverride('host.policy')).toThrow(
      '--set: expected key=value with a dotted key, found "host.policy".',
    );
    expect(() => parseOverride('=3')).toThrow('--set');
  });

  it('checks matrix keys the same way', () => {
    expect(scenarioError('name: x\nmatrix:\n  host.polcy: [naive]\n')).toMatchObject({
      path: 'matrix.host.polcy',
      line: 3,
      expected: 'one of npt, avic, policy, ibpbOnVcpuSwitch, scheduler, latency, tasks',
    });
  });
});
