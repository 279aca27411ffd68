import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ScenarioError } from '../../src/scenario/errors.js';
import { loadScenario, parseScenarioText } from '../../src/scenario/load.js';
import { scenarioError, vmScript } from './helpers.js';

describe('bad input is a ScenarioError naming file, path, expectation and value', () => {
  it('reports a YAML syntax error with line, column and the reason', () => {
    const e = scenarioError('name: x\nhardware:\n  cores: 4\n   spec: legacy\n');
    expect(e.line).toBe(3);
    expect(e.column).toBeGreaterThan(0);
    expect(e.path).toBe('');
    expect(e.message).toMatch(
      /^x\.yaml \(line 3, column \d+\): YAML syntax error: \S.*\.( \(and \d+ more problems?\))?$/,
    );
  });

  it('reports an unclosed flow mapping', () => {
    expect(scenarioError('name: x\nhardware: { cores: 4\n').message).toContain('YAML syntax error');
  });

  it('reports duplicate keys as a YAML error', () => {
    expect(scenarioError('name: x\nname: y\n').message).toMatch(/line 2.*unique/);
  });

  it('reports an unknown top-level key with the known keys', () => {
    const e = scenarioError('name: x\nhardwar: { cores: 2 }\n');
    expect(e).toMatchObject({ path: 'hardwar', line: 2, problem: 'unknown key' });
    expect(e.expected).toMatch(/^one of name, description, seed, until, maxEvents, workers, hardware, host,/);
    expect(e.message).toBe(`x.yaml: hardwar (line 2): unknown key; expected ${e.expected}.`);
  });

  it('a latency entry that counts takes a whole number, not a time (pleWindow: 3us is no window)', () => {
    const e = scenarioError('name: x\nhost:\n  latency: { pleWindow: 3us }\n');
    expect(e).toMatchObject({ path: 'host.latency.pleWindow', line: 3 });
    expect(e.expected).toBe('a whole number ≥ 0 (this entry counts, it is not a time)');
    // A time entry still takes a duration; a count a plain integer.
    const s = parseScenarioText(
      'name: x\nhost:\n  latency: { pleWindow: 6000, exitHandler: 2us }\n',
      'x.yaml',
    );
    expect(s.host.latency).toEqual({ pleWindow: 6000, exitHandler: 2_000_000 });
  });

  it('reports an unknown nested key with the keys allowed there', () => {
    const e = scenarioError('name: x\nhardware:\n  cores: 4\n  coress: 3\n');
    expect(e).toMatchObject({ path: 'hardware.coress', line: 4, problem: 'unknown key' });
    expect(e.message).toMatch(
      /^x\.yaml: hardware\.coress \(line 4\): unknown key; expected one of cores, sockets, coresPerSocket, /,
    );
  });

  it('reports a misspelt required key as the unknown key, naming the missing one it likely meant', () => {
    for (const text of [
      'name: x\nvms:\n  - nme: a\n    vcpus: 2\n',
      'name: x\nvms:\n  - { nme: a, vcpus: 2 }\n',
    ]) {
      const e = scenarioError(text);
      expect(e).toMatchObject({
        path: 'vms.0.nme',
        line: 3,
        problem: 'unknown key (and "name" is missing here: a misspelling?)',
        more: 1,
      });
    }
  });

  it('explains a flow-mapping key written without a space after its colon', () => {
    const e = scenarioError('name: x\nvms: [ {name:a, vcpus: 2} ]\n');
    expect(e).toMatchObject({
      path: 'vms.0.name:a',
      problem: 'unknown key (YAML needs a space after the colon: "name: a")',
    });
  });

  it('reports an unknown key deep inside a VM', () => {
    const e = scenarioError(
      'name: x\nvms:\n  - name: a\n    vcpus: 1\n    guest: { contextSwitch: { evry: 1us } }\n',
    );
    expect(e).toMatchObject({
      path: 'vms.0.guest.contextSwitch.evry',
      line: 5,
      expected: 'one of every, using',
    });
  });

  it('reports a wrong type with the value found', () => {
    const e = scenarioError('name: x\nvms:\n  - name: a\n    vcpus: four\n');
    expect(e).toMatchObject({
      path: 'vms.0.vcpus',
      line: 4,
      expected: 'an integer in 1..1024',
      found: '"four"',
    });
    expect(e.message).toBe('x.yaml: vms.0.vcpus (line 4): expected an integer in 1..1024, found "four".');
  });

  it('reports a mapping where a value belongs, and a missing required key', () => {
    expect(scenarioError('name: x\nhost: { npt: yes }\n')).toMatchObject({
      path: 'host.npt',
      expected: 'true or false',
      found: '"yes"',
    });
    expect(scenarioError('name: x\nvms: [ { name: a } ]\n')).toMatchObject({
      path: 'vms.0.vcpus',
      problem: 'missing key',
      found: undefined,
    });
    expect(scenarioError('description: nameless\n')).toMatchObject({ path: 'name', problem: 'missing key' });
  });

  it('reports an empty file as a missing mapping', () => {
    const e = scenarioError('');
    expect(e).toMatchObject({ path: '', found: 'null' });
    expect(e.message).toMatch(/^x\.yaml: expected a mapping/);
  });

  it('reports an unknown policy with the policies', () => {
    const e = scenarioError('name: x\nhost:\n  policy: linux-6.0\n');
    expect(e).toMatchObject({
      path: 'host.policy',
      line: 3,
      expected: 'one of hide, naive, v6, linux-7.0, always, mutant-forget-pv-flush',
      found: '"linux-6.0"',
    });
  });

  it('reports an unknown spec with the specs', () => {
    expect(scenarioError('name: x\nhardware: { spec: eraps }\n')).toMatchObject({
      path: 'hardware.spec',
      expected: 'one of legacy, eraps-apm, eraps-amd, eraps-cr3',
      found: '"eraps"',
    });
  });

  it('reports inconsistent sockets × coresPerSocket', () => {
    expect(scenarioError('name: x\nhardware: { sockets: 2, coresPerSocket: 8, cores: 12 }\n')).toMatchObject({
      path: 'hardware.cores',
      expected: 'sockets × coresPerSocket = 16 cores',
      found: '12',
    });
  });

  it('reports 0 cores as an impossible topology', () => {
    const e = scenarioError('name: x\nhardware:\n  cores: 0\n');
    expect(e).toMatchObject({ path: 'hardware.cores', line: 3, found: '0' });
    expect(e.message).toContain('impossible topology: hardware has 0 cores');
  });

  it('reports a pin to a core that does not exist', () => {
    const e = scenarioError(
      'name: x\nhardware: { cores: 4 }\nvms:\n  - name: a\n    vcpus: 4\n    pin: [0, 1, 2, 7]\n',
    );
    expect(e).toMatchObject({ path: 'vms.0.pin.3', line: 6, expected: 'a core index in 0..3', found: '7' });
    expect(e.message).toBe('x.yaml: vms.0.pin.3 (line 6): expected a core index in 0..3, found 7.');
  });

  it('reports a pin list whose length is not the vCPU count', () => {
    expect(scenarioError('name: x\nvms: [ { name: a, vcpus: 2, pin: [0] } ]\n')).toMatchObject({
      path: 'vms.0.pin',
      found: '[0]',
    });
  });

  it('reports a script on a vCPU that does not exist', () => {
    const e = scenarioError(
      'name: x\nvms:\n  - name: a\n    vcpus: 4\n    guest:\n      script:\n        0: [ { call: 1 } ]\n        5: [ { call: 4 } ]\n',
    );
    expect(e).toMatchObject({
      path: 'vms.0.guest.script.5',
      line: 8,
      expected: 'a vCPU index in 0..3',
      found: '5',
    });
  });

  it('reports a host script on a core that does not exist', () => {
    const e = scenarioError(
      'name: x\nhardware: { cores: 2 }\nhostProcesses:\n  script:\n    2: [ { call: 1 } ]\n',
    );
    expect(e).toMatchObject({
      path: 'hostProcesses.script.2',
      line: 5,
      expected: 'a core index in 0..1',
      found: '2',
    });
  });

  it('reports a script key that is not an index', () => {
    expect(scenarioError(vmScript('[ { call: 1 } ]').replace('0: [', 'first: ['))).toMatchObject({
      path: 'vms.0.guest.script.first',
      problem: 'bad key',
      expected: 'a vCPU index (0, 1, …)',
    });
  });

  it('reports a bad duration string', () => {
    const e = scenarioError('name: x\nuntil: 3 fortnights\n');
    expect(e).toMatchObject({
      path: 'until',
      line: 2,
      expected: 'a duration such as 250ns, 3us, 2ms or 1s',
      found: '"3 fortnights"',
    });
    expect(scenarioError(vmScript('[ { hlt: 1.5 } ]'))).toMatchObject({
      path: 'vms.0.guest.script.0.0.hlt',
      expected: expect.stringContaining('a duration'),
      found: '1.5',
    });
    expect(scenarioError('name: x\nuntil: 0\n')).toMatchObject({ expected: 'a duration longer than 0' });
  });

  it('reports an unknown MSR name with the known names', () => {
    const e = scenarioError(vmScript('[ { wrmsr: { msr: SYSCONFIG } } ]'));
    expect(e).toMatchObject({ path: 'vms.0.guest.script.0.0.wrmsr.msr', line: 8, found: '"SYSCONFIG"' });
    expect(e.expected).toContain(
      'SYSCFG, TOM, TOM2, APIC_BASE, PREFETCH_CONTROL, IORR, SMMADDR, SMMMASK, ECS_BASE, MTRR',
    );
  });

  it('reports an unknown script op with the known ops', () => {
    const e = scenarioError(vmScript('[ { calll: 4 } ]'));
    expect(e).toMatchObject({ path: 'vms.0.guest.script.0.0.calll', problem: 'unknown key' });
    expect(e.expected).toMatch(/^one of call, ret, stuffRap, switchTo, movCr3,/);
    // The "exactly one" rule would only repeat the same mistake.
    expect(e.more).toBe(0);
  });

  it('reports an op with two keys, an empty op, and a bare word', () => {
    expect(scenarioError(vmScript('[ { call: 1, ret: 1 } ]'))).toMatchObject({
      path: 'vms.0.guest.script.0.0',
      expected: expect.stringMatching(/^exactly one operation/),
      found: '{"call":1,"ret":1}',
    });
    expect(scenarioError(vmScript('[ {} ]'))).toMatchObject({ path: 'vms.0.guest.script.0.0', found: '{}' });
    expect(scenarioError(vmScript('[ ibpb ]'))).toMatchObject({
      expected: 'a script operation such as { call: 4 }',
      found: '"ibpb"',
    });
  });

  it('reports an op that cannot be emulated', () => {
    expect(scenarioError(vmScript('[ { emulate: { call: 1 } } ]'))).toMatchObject({
      path: 'vms.0.guest.script.0.0.emulate.call',
      expected: 'one of movCr3, invpcid, invlpg, cr4, cr0, wrmsr',
    });
  });

  it('reports the first problem in file order and counts the rest', () => {
    const e = scenarioError('name: x\nhardware: { spec: nope }\nhost: { policy: nope }\nworkers: 0\n');
    expect(e).toMatchObject({ path: 'hardware.spec', more: 2 });
    expect(e.message).toMatch(/\(and 2 more problems\)$/);
  });

  it('cuts long found values', () => {
    const e = scenarioError(`name: x\nhost: { policy: ${'y'.repeat(200)} }\n`);
    expect(e.found?.length).toBeLessThanOrEqual(61);
    expect(e.found?.endsWith('…')).toBe(true);
  });
});

describe('loadScenario', () => {
  it('reads a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rapsim-scenario-'));
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, 'name: ok\nhardware: { cores: 2 }\n');
    expect(loadScenario(file, {}).hardware.cores).toBe(2);
    expect(loadScenario(file).name).toBe('ok');
  });

  it('reports an unreadable file as bad input', () => {
    const file = join(tmpdir(), 'rapsim-no-such-dir', 'missing.yaml');
    const e = (() => {
      try {
        loadScenario(file);
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(ScenarioError);
    expect((e as ScenarioError).message).toBe(`${file}: cannot read the file (ENOENT).`);
  });

  it('labels errors with the file name as given', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rapsim-scenario-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'name: bad\nhost: { policy: naiv }\n');
    expect(() => loadScenario(file)).toThrow(`${file}: host.policy (line 2): expected one of`);
  });
});
