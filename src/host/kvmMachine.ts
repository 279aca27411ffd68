import { assign, setup } from 'xstate';
import type { Port } from '../actors/hostedActor.js';
import { Priority } from '../actors/priority.js';
import type { Time } from '../actors/time.js';
import type { GuestExit } from '../hw/exit.js';
import type { KvmVcpu } from './kvmVcpu.js';

export interface KvmInput {
  port: Port;
  kvm: KvmVcpu;
  /** Actor index of the vCPU this pCPU runs. */
  vcpu: number;
}

interface KvmContext extends KvmInput {
  /** Time the current exit's handling ends. */
  handledAt: Time;
  blockFor: Time;
}

export type KvmEvent = { type: 'VMEXIT'; exit: GuestExit } | { type: 'HANDLED' } | { type: 'WAKE' };

/**
 * The host side of a pCPU running a vCPU: KVM's run loop as a machine. `entering` services
 * requests and executes VMRUN (the world switch into the guest, delivered to the vCPU actor as
 * a VMRUN message after the switch's cost); `inGuest` waits for the vCPU's #VMEXIT; `handlingExit`
 * is the exit handler's time; `blocked` is kvm_vcpu_block after HLT.
 */
export const kvmMachine = setup({
  types: { input: {} as KvmInput, context: {} as KvmContext, events: {} as KvmEvent },
  actions: {
    vmrun: ({ context }) => {
      const e = context.kvm.enter();
      const data = e.reflected ? { reflected: e.reflected } : {};
      context.port.send(e.target, 'VMRUN', data, e.cost, Priority.WORLD_SWITCH);
    },
    handleExit: assign(({ context, event }) => {
      const ev = event as Extract<KvmEvent, { type: 'VMEXIT' }> & { src: number };
      const r = context.kvm.handleExit(ev.exit, ev.src);
      const now = context.port.now();
      return { handledAt: now + r.switchCost + r.cost, blockFor: r.blockFor ?? 0 };
    }),
    scheduleHandled: ({ context }) => {
      context.port.schedule(
        Math.max(1, context.handledAt - context.port.now()),
        'HANDLED',
        {},
        Priority.TIMER,
      );
    },
    scheduleWake: ({ context }) => {
      context.port.schedule(Math.max(1, context.blockFor), 'WAKE', {}, Priority.TIMER);
    },
  },
  guards: {
    blocks: ({ context }) => context.blockFor > 0,
  },
}).createMachine({
  id: 'kvm',
  context: ({ input }) => ({ ...input, handledAt: 0, blockFor: 0 }),
  initial: 'entering',
  states: {
    entering: {
      description: 'vcpu_enter_guest: service requests, decide CLEAR_RAP, VMRUN.',
      entry: 'vmrun',
      always: 'inGuest',
    },
    inGuest: {
      description: 'The guest runs; the pCPU is in guest mode until a #VMEXIT.',
      on: { VMEXIT: { actions: 'handleExit', target: 'handlingExit' } },
    },
    handlingExit: {
      description: 'svm_handle_exit → svm_exit_handlers[reason].',
      entry: 'scheduleHandled',
      on: {
        HANDLED: [{ guard: 'blocks', target: 'blocked' }, { target: 'entering' }],
      },
    },
    blocked: {
      description: 'kvm_vcpu_block after HLT, until the guest timer fires.',
      entry: 'scheduleWake',
      on: { WAKE: { target: 'entering' } },
    },
  },
});
