import { describe, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import type { Port } from '../../src/actors/hostedActor.js';
import { createMachineActor } from '../../src/actors/machineActor.js';
import { Partition } from '../../src/actors/partition.js';

const blinker = setup({
  types: { input: {} as { port: Port }, context: {} as { port: Port; flips: number; at: number[] } },
  delays: { period: 1000 },
}).createMachine({
  context: ({ input }) => ({ port: input.port, flips: 0, at: [] }),
  initial: 'off',
  states: {
    off: {
      after: {
        period: {
          target: 'on',
          actions: assign(({ context }) => ({
            flips: context.flips + 1,
            at: [...context.at, context.port.now()],
          })),
        },
      },
    },
    on: {
      after: {
        period: {
          target: 'off',
          actions: assign(({ context }) => ({
            flips: context.flips + 1,
            at: [...context.at, context.port.now()],
          })),
        },
      },
    },
  },
});

describe('machine actors on the kernel clock', () => {
  it("runs xstate's delays as kernel events, never real timers", () => {
    const actor = createMachineActor(
      'blink',
      blinker,
      (port) => ({ port }),
      (a) => a.getSnapshot().context,
    );
    const part = new Partition({
      index: 0,
      topology: { ids: ['blink'], partitionOf: [0], latency: () => 0 },
      actors: new Map([[0, actor]]),
      rootSeed: 1,
      maxEvents: 1000,
    });
    part.start();
    part.runWindow(4500);
    const st = actor.stats() as { flips: number; at: number[] };
    expect(st.flips).toBe(4);
    expect(st.at).toEqual([1000, 2000, 3000, 4000]);
    expect(actor.stateLabel()).toBe('off');
  });

  it('turns a machine error into a failure naming the actor', () => {
    const broken = setup({ types: { input: {} as { port: Port } } }).createMachine({
      on: {
        BOOM: {
          actions: () => {
            throw new Error('kaboom');
          },
        },
      },
    });
    const actor = createMachineActor(
      'broken',
      broken,
      (port) => ({ port }),
      () => null,
    );
    const part = new Partition({
      index: 0,
      topology: { ids: ['broken'], partitionOf: [0], latency: () => 0 },
      actors: new Map([[0, actor]]),
      rootSeed: 1,
      maxEvents: 1000,
    });
    part.start();
    part.receive([{ t: 5, p: 20, src: 0, seq: 99, dst: 0, type: 'BOOM', data: {} }]);
    expect(() => part.runWindow(10)).toThrow(/actor broken, event BOOM, at 5ps.*kaboom/s);
  });
});
