import { assign, setup } from 'xstate';
import type { Port } from '../actors/hostedActor.js';
import { Priority } from '../actors/priority.js';
import type { Time } from '../actors/time.js';
import type { CpuSoftware, StepPlan } from '../hw/cpuSoftware.js';
import type { GuestExit } from '../hw/exit.js';

export interface VcpuInput {
  port: Port;
  /** The guest OS running on this vCPU. */
  os: CpuSoftware;
  /** Actor index of the pCPU (KVM) that runs this vCPU. */
  host: number;
  /** Actor indices of every vCPU of the scenario (sync-point broadcasts). */
  peers: number[];
  /** Encoded context of the guest kernel, for HLT exits. */
  kernelCtx: number;
}

interface VcpuContext extends VcpuInput {
  plan: StepPlan;
  gen: number;
  started: boolean;
  /** #VMEXITs still to take, in order. */
  exits: GuestExit[];
  syncPlan: StepPlan | undefined;
}

export type VcpuEvent =
  | { type: 'VMRUN'; reflected?: GuestExit }
  | { type: 'STEP'; gen: number }
  | { type: 'SYNC'; name: string };

/**
 * The guest side of a vCPU. `outside` until the hypervisor's VMRUN arrives; `inGuest` while the
 * guest OS runs (its CALL/RET stream is evaluated lazily between steps, on the pCPU's RAP in
 * guest mode); a step whose instructions were intercepted ends in `exiting`, which sends one
 * #VMEXIT at a time to KVM and waits for the next VMRUN. HLT is a #VMEXIT too.
 */
export const vcpuMachine = setup({
  types: { input: {} as VcpuInput, context: {} as VcpuContext, events: {} as VcpuEvent },
  actions: {
    enter: assign(({ context, event }) => {
      const now = context.port.now();
      const reflected = (event as { reflected?: GuestExit }).reflected;
      return {
        plan: context.started ? context.os.resume(now, reflected) : context.os.start(now),
        started: true,
      };
    }),
    step: assign(({ context }) => ({ plan: context.os.step(context.port.now()) })),
    scheduleStep: assign(({ context }) => {
      const at = (context.plan as { at: Time }).at;
      const gen = context.gen + 1;
      // At least 1 ps: a step right after a VMRUN (a world-switch event) must sort after it.
      context.port.schedule(Math.max(1, at - context.port.now()), 'STEP', { gen }, Priority.TIMER);
      return { gen };
    }),
    takeExits: assign(({ context }) => {
      const plan = context.plan;
      if (plan.kind === 'exit') return { exits: [...plan.exits] };
      // HLT in a guest is a #VMEXIT: KVM blocks the vCPU until the guest's timer fires.
      const until = (plan as Extract<StepPlan, { kind: 'halt' }>).until;
      const exit: GuestExit = {
        reason: 'hlt',
        arg: Math.max(1, until - context.port.now()),
        ctx: context.kernelCtx,
        detail: 'HLT (idle)',
      };
      return { exits: [exit] };
    }),
    sendExit: assign(({ context }) => {
      const [first, ...rest] = context.exits;
      context.port.send(context.host, 'VMEXIT', { exit: first }, 0, Priority.WORLD_SWITCH);
      return { exits: rest };
    }),
    broadcastSync: ({ context }) => {
      const plan = context.plan as Extract<StepPlan, { kind: 'syncpoint' }>;
      for (const peer of context.peers) {
        if (peer !== context.port.self)
          context.port.send(peer, 'SYNC', { name: plan.name }, 0, Priority.MESSAGE);
      }
    },
    runAtPlanTime: assign(({ context }) => ({
      plan: { kind: 'run', at: (context.plan as { at: Time }).at } as StepPlan,
    })),
    recordSync: assign(({ context, event }) => {
      const name = (event as Extract<VcpuEvent, { type: 'SYNC' }>).name;
      return { syncPlan: context.os.onSyncpoint(name, context.port.now()) ?? context.syncPlan };
    }),
    takeSyncPlan: assign(({ context }) => ({ plan: context.syncPlan!, syncPlan: undefined })),
  },
  guards: {
    planIs: ({ context }, params: { kind: StepPlan['kind'] }) => context.plan.kind === params.kind,
    currentStep: ({ context, event }) => (event as { gen: number }).gen === context.gen,
    moreExits: ({ context }) => context.exits.length > 0,
    syncArrived: ({ context }) => context.syncPlan !== undefined,
  },
}).createMachine({
  id: 'vcpu',
  context: ({ input }) => ({
    ...input,
    plan: { kind: 'idle' },
    gen: 0,
    started: false,
    exits: [],
    syncPlan: undefined,
  }),
  initial: 'outside',
  on: { SYNC: { actions: 'recordSync' } },
  states: {
    outside: {
      description: 'Not yet entered: waiting for the first VMRUN.',
      on: { VMRUN: { actions: 'enter', target: 'route' } },
    },
    route: {
      always: [
        { guard: { type: 'planIs', params: { kind: 'run' } }, target: 'inGuest' },
        { guard: { type: 'planIs', params: { kind: 'exit' } }, target: 'exiting', actions: 'takeExits' },
        { guard: { type: 'planIs', params: { kind: 'halt' } }, target: 'exiting', actions: 'takeExits' },
        {
          guard: { type: 'planIs', params: { kind: 'syncpoint' } },
          target: 'inGuest',
          actions: ['broadcastSync', 'runAtPlanTime'],
        },
        { guard: { type: 'planIs', params: { kind: 'await' } }, target: 'awaitingSync' },
        { target: 'idle' },
      ],
    },
    inGuest: {
      description: 'Guest mode: the guest OS runs until its next decision.',
      entry: 'scheduleStep',
      on: { STEP: { guard: 'currentStep', actions: 'step', target: 'route' } },
    },
    exiting: {
      description: 'Left the guest: one #VMEXIT at a time, each answered by a VMRUN.',
      entry: 'sendExit',
      on: {
        VMRUN: [
          { guard: 'moreExits', target: 'exiting', reenter: true },
          { actions: 'enter', target: 'route' },
        ],
      },
    },
    awaitingSync: {
      always: { guard: 'syncArrived', actions: 'takeSyncPlan', target: 'route' },
    },
    idle: {
      description: 'The guest has nothing left to do before the end of the run.',
    },
  },
});
