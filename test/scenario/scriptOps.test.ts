import { describe, expect, it } from 'vitest';
import { US } from '../../src/actors/time.js';
import { parseScenarioText } from '../../src/scenario/load.js';
import { SCRIPT_OP_KEYS, type ScriptOp, ScriptOpSchema } from '../../src/scenario/scriptOps.js';
import { vmScript } from './helpers.js';

/** Every op kind, as written in a file, and its normalized form. */
const CASES: [string, ScriptOp][] = [
  ['{ call: 4 }', { op: 'call', n: 4 }],
  ['{ ret: 4 }', { op: 'ret', n: 4 }],
  ['{ stuffRap: 32 }', { op: 'stuffRap', n: 32 }],
  ['{ stuffRap: auto }', { op: 'stuffRap', n: 'auto' }],
  ['{ switchTo: { process: 1 } }', { op: 'switchTo', process: 1 }],
  ['{ movCr3: { process: 2 } }', { op: 'movCr3', process: 2, noflush: false }],
  ['{ movCr3: { process: 2, noflush: true } }', { op: 'movCr3', process: 2, noflush: true }],
  ['{ invpcid: { type: 2 } }', { op: 'invpcid', type: 2, process: undefined, page: undefined }],
  ['{ invpcid: { type: 1, process: 3 } }', { op: 'invpcid', type: 1, process: 3, page: undefined }],
  ['{ invpcid: { type: 0, process: 0, page: 5 } }', { op: 'invpcid', type: 0, process: 0, page: 5 }],
  ['{ invlpg: { page: 7 } }', { op: 'invlpg', page: 7 }],
  [
    '{ cr4: { smep: clear, pge: toggle } }',
    {
      op: 'cr4',
      changes: [
        { bit: 'pge', action: 'toggle' },
        { bit: 'smep', action: 'clear' },
      ],
    },
  ],
  ['{ cr4: { pcide: set } }', { op: 'cr4', changes: [{ bit: 'pcide', action: 'set' }] }],
  ['{ cr0: { pg: clear } }', { op: 'cr0', changes: [{ bit: 'pg', action: 'clear' }] }],
  [
    '{ cr0: { wp: set, pg: set } }',
    {
      op: 'cr0',
      changes: [
        { bit: 'pg', action: 'set' },
        { bit: 'wp', action: 'set' },
      ],
    },
  ],
  ['{ wrmsr: { msr: TOM2 } }', { op: 'wrmsr', msr: 'TOM2' }],
  ['{ wrmsr: { msr: 0xC0010010 } }', { op: 'wrmsr', msr: 0xc0010010 }],
  [
    '{ emulate: { movCr3: { process: 1 } } }',
    { op: 'emulate', inner: { op: 'movCr3', process: 1, noflush: false } },
  ],
  [
    '{ emulate: { invpcid: { type: 3 } } }',
    { op: 'emulate', inner: { op: 'invpcid', type: 3, process: undefined, page: undefined } },
  ],
  ['{ emulate: { invlpg: { page: 1 } } }', { op: 'emulate', inner: { op: 'invlpg', page: 1 } }],
  [
    '{ emulate: { cr4: { pge: toggle } } }',
    { op: 'emulate', inner: { op: 'cr4', changes: [{ bit: 'pge', action: 'toggle' }] } },
  ],
  [
    '{ emulate: { cr0: { pg: clear } } }',
    { op: 'emulate', inner: { op: 'cr0', changes: [{ bit: 'pg', action: 'clear' }] } },
  ],
  ['{ emulate: { wrmsr: { msr: MTRR } } }', { op: 'emulate', inner: { op: 'wrmsr', msr: 'MTRR' } }],
  ['{ shootdown: { pages: 3 } }', { op: 'shootdown', pages: 3 }],
  ['{ shootdown: {} }', { op: 'shootdown', pages: 1 }],
  ['{ ipi: { to: 1 } }', { op: 'ipi', to: 1 }],
  ['{ init: { to: 1 } }', { op: 'init', to: 1 }],
  ['{ hlt: 10us }', { op: 'hlt', for: 10 * US }],
  ['{ wait: 2500 }', { op: 'wait', for: 2500 }],
  ['{ vmrun: l2 }', { op: 'vmrun', vm: 'l2' }],
  ['{ syncpoint: go }', { op: 'syncpoint', name: 'go' }],
  ['{ awaitSyncpoint: go }', { op: 'awaitSyncpoint', name: 'go' }],
  ['{ ibpb: true }', { op: 'ibpb' }],
];

const L1 = 'vcpus: 2\n    nested: { vms: [ { name: l2, vcpus: 1 } ] }';

describe('script op normalization', () => {
  it.each(CASES)('%s', (written, normalized) => {
    // The syncpoint gives awaitSyncpoint something to wait for.
    const s = parseScenarioText(vmScript(`[ { syncpoint: go }, ${written} ]`, L1), 'x.yaml');
    expect(s.vms[0]?.guest.script[0]?.[1]).toEqual(normalized);
  });

  it('covers every op key', () => {
    const covered = new Set(CASES.map(([, op]) => op.op));
    expect([...covered].sort()).toEqual([...SCRIPT_OP_KEYS].sort());
  });

  it('keeps the order of a script and the index of each vCPU', () => {
    const text =
      'name: x\nvms:\n  - name: a\n    vcpus: 2\n    guest:\n      script:\n        1: [ { call: 2 }, { ret: 2 } ]\n        0: [ { syncpoint: s } ]\n';
    expect(parseScenarioText(text, 'x.yaml').vms[0]?.guest.script).toEqual({
      0: [{ op: 'syncpoint', name: 's' }],
      1: [
        { op: 'call', n: 2 },
        { op: 'ret', n: 2 },
      ],
    });
  });

  it('runs host scripts keyed by core through the same ops', () => {
    const s = parseScenarioText(
      'name: x\nhostProcesses:\n  count: 2\n  script:\n    3: [ { switchTo: { process: 1 } } ]\n',
      'x.yaml',
    );
    expect(s.hostProcesses.script[3]).toEqual([{ op: 'switchTo', process: 1 }]);
  });

  it('rejects values the op does not take', () => {
    for (const bad of [
      { call: 0 },
      { ret: -1 },
      { stuffRap: 'all' },
      { invpcid: { type: 4 } },
      { cr4: {} },
      { cr4: { pge: 'flip' } },
      { cr0: { pg: 'toggle' } },
      { ibpb: false },
      { movCr3: { process: 1, flush: true } },
      { vmrun: '' },
    ]) {
      expect(ScriptOpSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });
});
