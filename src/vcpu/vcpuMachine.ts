import { assign, setup } from 'xstate';
import type { Port } from '../actors/hostedActor.js';
import { Priority } from '../actors/priority.js';
import type { Time } from '../actors/time.js';
import type { CoreHw } from '../hw/core.js';
import type { CpuSoftware, FlushAck, FlushRequest, StepPlan } from '../hw/cpuSoftware.js';
import type { GuestExit, GuestInterrupt, NestedInterrupt } from '../hw/exit.js';
import { answerSkippedFlush } from '../hw/skippedFlush.js';
import { type Route, sendRouted } from './route.js';

export interface VcpuInput {
  port: Port;
  /** The guest OS running on this vCPU. */
  os: CpuSoftware;
  /** Actor index of the pCPU (KVM) that runs this vCPU. */
  host: number;
  /** Actor indices of every vCPU of the scenario (sync-point broadcasts). */
  peers: number[];
  /** Encoded context of the guest kernel, for HLT, hypercall and interrupt exits. */
  kernelCtx: number;
  /** AVIC: the guest writes the ICR without an exit; the interrupt goes straight to the target's pCPU. */
  avic: boolean;
  /** Where a message for a vCPU goes (an AVIC interrupt): its pCPU, or a relay through it. */
  route: (vcpuActor: number) => Route;
  /**
   * When this vCPU's thread may migrate: the pCPU that runs it now (relayed messages go there)
   * and the hardware of a pCPU of its domain (the guest follows its thread at VMRUN).
   */
  migration?: { hostNow: () => number; coreOf: (pcpuActor: number) => CoreHw };
  /** Extra time AVIC hardware needs beyond the interconnect (timing: guestIpiAvic − native IPI). */
  avicDelay: Time;
  /** Hyper-V enlightened TLB flush: a shootdown is one flush hypercall instead of IPIs. */
  hypervFlush: boolean;
}

/** Where a VMRUN leads: more exits, the OS's next decision, or back to what a kick interrupted. */
type Resume = 'exiting' | 'route' | 'spin' | 'await' | 'idle';

/** A flush handler's acknowledgement, written once KVM has answered the handler's exits. */
interface HeldAck {
  to: number;
  ack: FlushAck;
  exitsLeft: number;
}

interface Shootdown {
  req: FlushRequest;
  targets: number[];
  acks: number;
  /** Acknowledgements from targets that ran the flush handler (not skipped, not deferred). */
  interrupted: number;
  critical: FlushAck | undefined;
}

interface VcpuContext extends VcpuInput {
  plan: StepPlan;
  gen: number;
  /** When the STEP of the current generation fires (-1: none pending); a kick leaves it pending. */
  stepAt: Time;
  /** Not entered yet, out for #VMEXITs, or scheduled out by a kick. */
  where: 'outside' | 'exiting' | 'descheduled' | 'guest';
  /** #VMEXITs still to take, in order. */
  exits: GuestExit[];
  /**
   * What to do when the last exit is answered: resume the OS, spin on a shootdown, a plan, or go
   * back to what an interrupt handler's exits interrupted.
   */
  afterExits:
    | { kind: 'resume' }
    | { kind: 'spin' }
    | { kind: 'plan'; plan: StepPlan }
    | { kind: 'back'; to: Resume };
  /** Flush acknowledgements whose handler is still out for its #VMEXITs (each VMRUN answers one). */
  heldAcks: HeldAck[];
  syncPlan: StepPlan | undefined;
  /** Sequence number of the last VMRUN (a kick names the entry it is meant for). */
  entrySeq: number;
  /** A kick arrived for an entry whose VMRUN is still in flight. */
  kickPending: boolean;
  /** The entry that kick was meant for. */
  kickSeq: number;
  /** Why the pending kick takes the vCPU out (the exit it causes). */
  kickReason: 'intr' | 'avic-incomplete-ipi' | 'pause';
  /** Interrupts in the vAPIC, not yet taken (injected at the next VMRUN, or by the doorbell). */
  pending: { interrupt: GuestInterrupt; arrivedAt: Time; waiting: boolean }[];
  shootdown: Shootdown | undefined;
  resumeTo: Resume;
  next: Resume;
  /** Time before the next #VMEXIT leaves (a hypercall after the guest's own work). */
  exitDelay: Time;
  /**
   * PAUSE-loop exiting: how long this entry may spin before the pause filter count runs out
   * (the VMCB's count as guest time; 0: PAUSE not intercepted), and the generation of the
   * PLE timer armed on entering `spinning` (a stale one is ignored).
   */
  pleAfter: Time;
  pleGen: number;
}

export type VcpuEvent =
  | { type: 'VMRUN'; seq: number; reflected?: GuestExit; deferred?: FlushRequest[]; pleAfter?: Time }
  /** The pause filter count of this entry ran out while the guest spun (PAUSE intercept). */
  | { type: 'PLE'; gen: number }
  | { type: 'STEP'; gen: number }
  | { type: 'SYNC'; name: string }
  /** The host takes the vCPU out: a physical interrupt, or AVIC's incomplete-IPI exit. */
  | { type: 'KICK'; seq: number; reason?: 'avic-incomplete-ipi' }
  | {
      type: 'INTR';
      interrupt: GuestInterrupt;
      arrivedAt: Time;
      doorbell: boolean;
      waiting: boolean;
      /** The posted-interrupt IPI kicks this entry out (no AVIC): the host injects at the next VMRUN. */
      kick?: number;
    }
  | { type: 'FLUSH_ACK'; ack: FlushAck }
  /**
   * Flushes the host did for this (L1) vCPU before an entry into its L2 (PV TLB flush's
   * record_steal_time, Hyper-V's FIFO): the L1 guest learns their page-table changes.
   */
  | { type: 'DEFERRED_FLUSHES'; deferred: FlushRequest[] }
  /** A message for this vCPU's pCPU from outside its migration domain (see route.ts). */
  | { type: 'RELAY'; msg: string; data: Record<string, unknown> };

/**
 * The guest side of a vCPU. `outside` until the hypervisor's first VMRUN; `inGuest` while the
 * guest OS runs (its CALL/RET stream is evaluated lazily between steps, on the pCPU's RAP in
 * guest mode); a step whose instructions were intercepted ends in `exiting`, which sends one
 * #VMEXIT at a time to KVM and waits for the next VMRUN. HLT is a #VMEXIT too.
 *
 * Guest TLB shootdowns (docs/domain.md §4): the initiator sends its flush IPIs with one
 * hypercall exit (KVM_HC_SEND_IPI), or with AVIC straight to the targets' pCPUs, then spins in
 * `spinning` until every target has acknowledged through shared memory (FLUSH_ACK), handling
 * interrupts meanwhile. The host may kick a running vCPU out at any time (a slice ended, or an
 * interrupt must be injected): it leaves with an INTR exit to `descheduled` and comes back to
 * what it was doing at the next VMRUN; interrupts are taken at every VMRUN, or at once with AVIC.
 * A handler whose own instructions exit (a flush handler's INVLPG with shadow paging) leaves
 * through `exiting` right away and comes back to what the interrupt found; its acknowledgement
 * is held until the VMRUN that answers its last exit.
 */
export const vcpuMachine = setup({
  types: { input: {} as VcpuInput, context: {} as VcpuContext, events: {} as VcpuEvent },
  actions: {
    relay: ({ context, event }) => {
      const ev = event as Extract<VcpuEvent, { type: 'RELAY' }>;
      const host = context.migration ? context.migration.hostNow() : context.host;
      context.port.send(host, ev.msg, ev.data, 0, Priority.INTERRUPT);
    },
    onVmrun: assign(({ context, event }) => {
      const ev = event as Extract<VcpuEvent, { type: 'VMRUN' }> & { src: number };
      const { os, port } = context;
      const now = port.now();
      // The host migrated this vCPU's thread: from now on it runs on that pCPU's RAP and TLB.
      let host = context.host;
      if (ev.src !== host && context.migration) {
        host = ev.src;
        os.migrate?.(context.migration.coreOf(host));
      }
      // record_steal_time flushed for these shootdowns: the guest knows their page-table changes.
      for (const req of ev.deferred ?? []) os.learnDeferredFlush(req);
      // This VMRUN answers an exit: a flush handler waiting for its exits may now acknowledge.
      const heldAcks = context.where === 'exiting' ? releaseAcks(context, now) : context.heldAcks;
      let plan = context.plan;
      let next: Resume;
      let afterExits = context.afterExits;
      let exits = context.exits;
      if (context.where === 'outside') {
        plan = os.start(now);
        next = 'route';
      } else if (context.where === 'descheduled') {
        os.reschedule(now);
        next = context.resumeTo;
      } else if (context.exits.length > 0) {
        next = 'exiting';
      } else if (afterExits.kind === 'spin') {
        next = 'spin';
      } else if (afterExits.kind === 'plan') {
        plan = afterExits.plan;
        next = 'route';
      } else if (afterExits.kind === 'back') {
        os.reschedule(now);
        next = afterExits.to;
      } else {
        plan = os.resume(now, ev.reflected);
        next = 'route';
      }
      if (next !== 'exiting') afterExits = { kind: 'resume' };
      const taken = takeInterrupts(context, now);
      let exitDelay = 0;
      if (taken.exits.length > 0) {
        exitDelay = taken.exitDelay;
        if (next === 'exiting') {
          // The OS already waits for its own exits: the handler's go first.
          exits = [...taken.exits, ...exits];
        } else {
          os.deschedule(now);
          afterExits = { kind: 'back', to: next };
          exits = taken.exits;
          next = 'exiting';
        }
      }
      // A kick meant for this entry: leave again at once, unless an exit is due anyway.
      const kickPending = context.kickPending && ev.seq >= context.kickSeq && next !== 'exiting';
      return {
        plan,
        next,
        afterExits,
        exits,
        exitDelay,
        heldAcks: [...heldAcks, ...taken.held],
        entrySeq: ev.seq,
        where: 'guest' as const,
        pending: taken.pending,
        kickPending,
        host,
        pleAfter: ev.pleAfter ?? 0,
      };
    }),
    learnDeferred: ({ context, event }) => {
      for (const req of (event as Extract<VcpuEvent, { type: 'DEFERRED_FLUSHES' }>).deferred)
        context.os.learnDeferredFlush(req);
    },
    noteKick: assign(({ context, event }) => {
      // A kick for an entry whose VMRUN has not arrived yet: leave again right after it.
      const seq = kickSeqOf(event);
      return seq !== undefined && seq > context.entrySeq
        ? { kickPending: true, kickSeq: seq, kickReason: kickReasonOf(event) }
        : {};
    }),
    leaveForKick: assign(({ context, event }, params: { resumeTo: Resume }) =>
      leave(context, params.resumeTo, kickReasonOf(event)),
    ),
    leaveAfterEntry: assign(({ context }) => leave(context, context.next, context.kickReason, ' at entry')),
    /**
     * Spinning on a shootdown's acknowledgements is csd_lock_wait's PAUSE loop: the pause filter
     * counts from this entry into the loop (VMRUN reloads it; an interrupt handler between two
     * PAUSEs exceeds pause_filter_thresh and resets it), and its end is a PAUSE intercept.
     */
    armPle: assign(({ context }) => {
      if (context.pleAfter === 0 || context.where !== 'guest') return {};
      const sd = context.shootdown;
      if (sd && sd.acks >= sd.targets.length) return {};
      const pleGen = context.pleGen + 1;
      context.port.schedule(context.pleAfter, 'PLE', { gen: pleGen }, Priority.TIMER);
      return { pleGen };
    }),
    leaveForPause: assign(({ context }) => leave(context, 'spin', 'pause')),
    /**
     * The guest's initiator leaves this vCPU out (should_flush_tlb: idle in lazy TLB mode, or
     * another address space loaded): no interrupt, no wait. The message stands for its read of
     * the target's is_lazy and loaded_mm in guest memory; the acknowledgement (no handler ran)
     * is the answer.
     */
    skipFlush: ({ context, event }) => {
      answerSkippedFlush(
        context.os,
        context.port,
        (event as Extract<VcpuEvent, { type: 'INTR' }>).interrupt.req!,
      );
    },
    queueIntr: assign(({ context, event }) => {
      const ev = event as Extract<VcpuEvent, { type: 'INTR' }>;
      const entry = { interrupt: ev.interrupt, arrivedAt: ev.arrivedAt, waiting: ev.waiting };
      const pending = [...context.pending, entry];
      return ev.interrupt.forL2 ? { pending, ...forwardToL2(context, ev.interrupt.forL2) } : { pending };
    }),
    doorbell: assign(({ context, event }, params: { resumeTo: Resume }) => {
      // AVIC: the interrupt is taken in guest mode, without an exit…
      if (!(event as Extract<VcpuEvent, { type: 'INTR' }>).doorbell) return {};
      const now = context.port.now();
      const taken = takeInterrupts(context, now);
      const held = [...context.heldAcks, ...taken.held];
      if (taken.exits.length === 0) return { pending: taken.pending, heldAcks: held };
      // …unless its handler's instructions exit (shadow paging): out until KVM has handled them.
      context.os.deschedule(now);
      return {
        pending: taken.pending,
        heldAcks: held,
        exits: taken.exits,
        exitDelay: taken.exitDelay,
        afterExits: { kind: 'back' as const, to: params.resumeTo },
      };
    }),
    step: assign(({ context }) => ({ plan: context.os.step(context.port.now()), stepAt: -1 })),
    missStep: assign({ stepAt: -1 }),
    scheduleStep: assign(({ context }) => {
      const now = context.port.now();
      // At least 1 ps: a step right after a VMRUN (a world-switch event) must sort after it.
      const at = Math.max(now + 1, (context.plan as { at: Time }).at);
      // Back from a kick with the same plan: the STEP scheduled before it still stands.
      if (context.stepAt === at) return {};
      const gen = context.gen + 1;
      context.port.schedule(at - now, 'STEP', { gen }, Priority.TIMER);
      return { gen, stepAt: at };
    }),
    takeExits: assign(({ context }) => {
      const plan = context.plan;
      if (plan.kind === 'exit') {
        return {
          exits: [...plan.exits],
          afterExits: plan.afterwards
            ? { kind: 'plan' as const, plan: plan.afterwards }
            : { kind: 'resume' as const },
        };
      }
      // HLT in a guest is a #VMEXIT: KVM blocks the vCPU until the guest's timer fires.
      const { until, idle } = plan as Extract<StepPlan, { kind: 'halt' }>;
      const exit: GuestExit = {
        reason: 'hlt',
        arg: Math.max(1, until - context.port.now()),
        idle,
        ctx: context.kernelCtx,
        detail: idle ? 'HLT (idle loop)' : 'HLT (script)',
      };
      return { exits: [exit], afterExits: { kind: 'resume' as const } };
    }),
    sendExit: assign(({ context }) => {
      const [first, ...rest] = context.exits;
      const delay = context.exitDelay;
      context.port.send(context.host, 'VMEXIT', { exit: first }, delay, Priority.WORLD_SWITCH);
      return { exits: rest, where: 'exiting' as const, exitDelay: 0 };
    }),
    startShootdown: assign(({ context }) => {
      const plan = context.plan as Extract<StepPlan, { kind: 'shootdown' }>;
      const now = context.port.now();
      const interrupt: GuestInterrupt = {
        kind: 'flush',
        req: plan.request,
        from: context.port.self,
        sentAt: now,
      };
      const shootdown: Shootdown = {
        req: plan.request,
        targets: plan.targets,
        acks: 0,
        interrupted: 0,
        critical: undefined,
      };
      if (plan.targets.length === 0) return { shootdown, afterExits: { kind: 'spin' as const } };
      if (context.hypervFlush) {
        // hyperv_flush_tlb_multi: HvCallFlushVirtualAddressList; the host flushes the targets.
        const exit: GuestExit = {
          reason: 'vmmcall',
          hvFlush: { targets: plan.targets, req: plan.request },
          ctx: context.kernelCtx,
          detail: `HvCallFlushVirtualAddressList: shootdown ${plan.request.id} of ${plan.targets.length} vCPUs`,
        };
        return { shootdown, exits: [exit], exitDelay: plan.sendDelay, afterExits: { kind: 'spin' as const } };
      }
      if (context.avic) {
        sendAvic(context, plan.targets, interrupt, plan.sendDelay, plan.sendSpacing);
        return { shootdown, exits: [], afterExits: { kind: 'spin' as const } };
      }
      // KVM_HC_SEND_IPI: one exit for all targets, after the local flush and the setup.
      const exit: GuestExit = {
        reason: 'vmmcall',
        ipi: { targets: plan.targets, interrupt },
        ctx: context.kernelCtx,
        detail: `KVM_HC_SEND_IPI: flush IPIs of shootdown ${plan.request.id} to ${plan.targets.length} vCPUs`,
      };
      return { shootdown, exits: [exit], exitDelay: plan.sendDelay, afterExits: { kind: 'spin' as const } };
    }),
    countAck: assign(({ context, event }) => {
      const ack = (event as Extract<VcpuEvent, { type: 'FLUSH_ACK' }>).ack;
      const sd = context.shootdown;
      if (!sd || sd.req.id !== ack.id)
        throw new Error(`FLUSH_ACK for shootdown ${ack.id}, which is not in flight`);
      // Acks arrive in time order, so the last one counted is the critical target's.
      const interrupted = sd.interrupted + (ack.deferred ? 0 : 1);
      return { shootdown: { ...sd, acks: sd.acks + 1, interrupted, critical: ack } };
    }),
    completeShootdown: assign(({ context }) => {
      const sd = context.shootdown!;
      return {
        plan: context.os.onShootdownComplete(
          sd.req,
          sd.targets,
          context.port.now(),
          sd.critical,
          sd.interrupted,
        ),
        shootdown: undefined,
      };
    }),
    sendIpi: assign(({ context }) => {
      const plan = context.plan as Extract<StepPlan, { kind: 'ipi' }>;
      const now = context.port.now();
      const kind = plan.init ? 'init' : 'ipi';
      const interrupt: GuestInterrupt = {
        kind,
        from: context.port.self,
        sentAt: now,
        ...(plan.forL2 ? { forL2: plan.forL2 } : {}),
      };
      const after: StepPlan = { kind: 'run', at: plan.at };
      if (plan.init) {
        // INIT is not a fixed interrupt: neither KVM_HC_SEND_IPI nor AVIC carries it, so the
        // x2APIC ICR write exits and KVM delivers it (kvm_apic_send_ipi).
        const exit: GuestExit = {
          reason: 'msr',
          ipi: { targets: [plan.to], interrupt },
          ctx: context.kernelCtx,
          detail: 'x2APIC ICR write: INIT IPI',
        };
        return { plan: { kind: 'exit', exits: [exit], afterwards: after } as StepPlan };
      }
      if (context.avic) {
        sendAvic(context, [plan.to], interrupt, plan.sendDelay, 0);
        return { plan: after };
      }
      const exit: GuestExit = {
        reason: 'vmmcall',
        ipi: { targets: [plan.to], interrupt },
        ctx: context.kernelCtx,
        detail: 'KVM_HC_SEND_IPI: script IPI',
      };
      return {
        plan: { kind: 'exit', exits: [exit], afterwards: after } as StepPlan,
      };
    }),
    broadcastSync: ({ context }) => {
      const plan = context.plan as Extract<StepPlan, { kind: 'syncpoint' }>;
      for (const peer of context.peers) {
        if (peer === context.port.self) continue;
        // A peer on this vCPU's own pCPU has no link to wait for: the write reaches it 1 ps
        // later, so that it never sorts before the step (or VMRUN) that made it.
        const delay = context.port.latencyTo(peer) > 0 ? 0 : 1;
        context.port.send(peer, 'SYNC', { name: plan.name }, delay, Priority.MESSAGE);
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
    currentPle: ({ context, event }) => (event as { gen: number }).gen === context.pleGen,
    moreExits: ({ context }) => context.exits.length > 0,
    syncArrived: ({ context }) => context.syncPlan !== undefined,
    next: ({ context }, params: { is: Resume }) => context.next === params.is,
    kickPending: ({ context }) => context.kickPending,
    flushSkipped: ({ context, event }) => {
      const { interrupt } = event as Extract<VcpuEvent, { type: 'INTR' }>;
      return (
        interrupt.kind === 'flush' &&
        interrupt.req !== undefined &&
        context.os.flushSkip(interrupt.req) !== undefined
      );
    },
    kickNow: ({ context, event }) => kickSeqOf(event) === context.entrySeq,
    allAcked: ({ context }) =>
      context.shootdown !== undefined && context.shootdown.acks >= context.shootdown.targets.length,
  },
}).createMachine({
  id: 'vcpu',
  context: ({ input }) => ({
    ...input,
    plan: { kind: 'idle' },
    gen: 0,
    stepAt: -1,
    where: 'outside',
    exits: [],
    afterExits: { kind: 'resume' },
    exitDelay: 0,
    heldAcks: [],
    syncPlan: undefined,
    pleAfter: 0,
    pleGen: 0,
    entrySeq: 0,
    kickPending: false,
    kickSeq: 0,
    kickReason: 'intr',
    pending: [],
    shootdown: undefined,
    resumeTo: 'route',
    next: 'route',
  }),
  initial: 'outside',
  on: {
    SYNC: { actions: 'recordSync' },
    KICK: { actions: 'noteKick' },
    INTR: [
      { guard: 'flushSkipped', actions: ['skipFlush', 'noteKick'] },
      { actions: ['queueIntr', 'noteKick'] },
    ],
    FLUSH_ACK: { actions: 'countAck' },
    DEFERRED_FLUSHES: { actions: 'learnDeferred' },
    RELAY: { actions: 'relay' },
  },
  states: {
    outside: {
      description: 'Not yet entered: waiting for the first VMRUN.',
      on: { VMRUN: { actions: 'onVmrun', target: 'entered' } },
    },
    entered: {
      description: 'VMRUN arrived: interrupts taken; continue where the guest left off.',
      always: [
        { guard: 'kickPending', actions: 'leaveAfterEntry', target: 'descheduled' },
        { guard: { type: 'next', params: { is: 'exiting' } }, target: 'exiting' },
        { guard: { type: 'next', params: { is: 'spin' } }, target: 'spinning' },
        { guard: { type: 'next', params: { is: 'await' } }, target: 'awaitingSync' },
        { guard: { type: 'next', params: { is: 'idle' } }, target: 'idle' },
        { target: 'route' },
      ],
    },
    route: {
      always: [
        { guard: { type: 'planIs', params: { kind: 'run' } }, target: 'inGuest' },
        { guard: { type: 'planIs', params: { kind: 'exit' } }, target: 'exiting', actions: 'takeExits' },
        { guard: { type: 'planIs', params: { kind: 'halt' } }, target: 'exiting', actions: 'takeExits' },
        { guard: { type: 'planIs', params: { kind: 'shootdown' } }, target: 'shootingDown' },
        {
          guard: { type: 'planIs', params: { kind: 'ipi' } },
          target: 'route',
          actions: 'sendIpi',
          reenter: true,
        },
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
      always: { guard: 'moreExits', target: 'exiting' },
      on: {
        STEP: { guard: 'currentStep', actions: 'step', target: 'route' },
        ...inGuestInterrupts('route'),
      },
    },
    shootingDown: {
      description: 'flush_tlb_multi: send the flush IPIs (one hypercall exit, or AVIC without exit).',
      entry: 'startShootdown',
      always: [{ guard: 'moreExits', target: 'exiting' }, { target: 'spinning' }],
    },
    spinning: {
      description:
        'The initiator waits for every acknowledgement, taking interrupts meanwhile; a PAUSE exit when its pause filter count runs out.',
      entry: 'armPle',
      always: [
        { guard: 'moreExits', target: 'exiting' },
        { guard: 'allAcked', actions: 'completeShootdown', target: 'route' },
      ],
      on: {
        ...inGuestInterrupts('spin'),
        PLE: { guard: 'currentPle', actions: 'leaveForPause', target: 'descheduled' },
      },
    },
    exiting: {
      description: 'Left the guest: one #VMEXIT at a time, each answered by a VMRUN.',
      entry: 'sendExit',
      on: {
        VMRUN: { actions: 'onVmrun', target: 'entered' },
        // Out for an interrupt handler's exits while a step was due: it is scheduled again after.
        STEP: { guard: 'currentStep', actions: 'missStep' },
      },
    },
    descheduled: {
      description: 'Kicked out: preempted by the host, or out so KVM can inject an interrupt.',
      on: {
        VMRUN: { actions: 'onVmrun', target: 'entered' },
        STEP: { guard: 'currentStep', actions: 'missStep' },
      },
    },
    awaitingSync: {
      always: [
        { guard: 'moreExits', target: 'exiting' },
        { guard: 'syncArrived', actions: 'takeSyncPlan', target: 'route' },
      ],
      on: {
        ...inGuestInterrupts('await'),
      },
    },
    idle: {
      description:
        'The guest has nothing left to do before the end of the run (an L1 hypervisor: until an interrupt wakes one of its L2 vCPUs).',
      always: { guard: 'moreExits', target: 'exiting' },
      on: {
        STEP: { guard: 'currentStep', actions: 'step', target: 'route' },
        ...inGuestInterrupts('idle'),
      },
    },
  },
});

/**
 * Leaves guest mode for a kick: the workload stops at now and an INTR #VMEXIT goes to KVM; the
 * next VMRUN comes back to `resumeTo`. A STEP still pending stays valid; if it fires while the
 * vCPU is out it is missed (`missStep`) and scheduled again at the next entry.
 */
function leave(context: VcpuContext, resumeTo: Resume, reason: VcpuContext['kickReason'], when = '') {
  const now = context.port.now();
  const cpl = context.os.inKernel(now) ? 0 : 3;
  context.os.deschedule(now);
  const detail =
    reason === 'intr'
      ? `physical interrupt (host tick, reschedule or posted-interrupt IPI)${when}`
      : reason === 'pause'
        ? 'PAUSE intercept: the pause filter count ran out in a spin-wait loop (PAUSE-loop exiting)'
        : `AVIC incomplete IPI: a target of this vCPU's ICR write was not running${when}`;
  const exit: GuestExit = { reason, cpl, ctx: context.kernelCtx, detail };
  context.port.send(context.host, 'VMEXIT', { exit }, 0, Priority.WORLD_SWITCH);
  return { resumeTo, where: 'descheduled' as const, kickPending: false, kickReason: 'intr' as const };
}

/** The exit a kick causes: an INTR exit, unless the host says AVIC could not deliver an IPI. */
function kickReasonOf(event: unknown): VcpuContext['kickReason'] {
  const e = event as { type: string; reason?: 'avic-incomplete-ipi' };
  return e.type === 'KICK' && e.reason ? e.reason : 'intr';
}

/**
 * What a vCPU in guest mode does with a kick or an interrupt: a kick meant for this entry (or an
 * interrupt that doubles as one) takes it out to `descheduled`, to come back to `resumeTo`; any
 * other interrupt is queued, and taken at once if AVIC rang the doorbell.
 */
function inGuestInterrupts(resumeTo: Resume) {
  const leave = { type: 'leaveForKick', params: { resumeTo } } as const;
  return {
    KICK: [{ guard: 'kickNow', actions: leave, target: 'descheduled' }, { actions: 'noteKick' }],
    INTR: [
      { guard: 'flushSkipped', actions: ['skipFlush', 'noteKick'] },
      { guard: 'kickNow', actions: ['queueIntr', leave], target: 'descheduled' },
      { actions: ['queueIntr', { type: 'doorbell', params: { resumeTo } }, 'noteKick'] },
    ],
  } as const;
}

/** What taking the pending interrupts left to do. */
interface Taken {
  /** Interrupts behind a handler that exited: taken at the VMRUN that answers its exits. */
  pending: VcpuContext['pending'];
  /** The #VMEXITs of the last handler (shadow paging's INVLPG), leaving after `exitDelay`. */
  exits: GuestExit[];
  exitDelay: Time;
  /** That handler's acknowledgement, sent once KVM has answered its exits. */
  held: HeldAck[];
}

/**
 * Takes the pending interrupts, one handler after another; flush handlers acknowledge. A handler
 * whose instructions exit to KVM stops the taking: its acknowledgement is held until KVM has
 * answered those exits (the guest's `flush_tlb_func` returns only after its INVLPG did), and the
 * interrupts behind it wait for that entry. Arrays are replaced, never mutated.
 */
function takeInterrupts(context: VcpuContext, now: Time): Taken {
  const { os, port } = context;
  let acc = 0;
  for (const [i, { interrupt, arrivedAt, waiting }] of context.pending.entries()) {
    if (interrupt.kind === 'flush' && interrupt.req) {
      const r = os.onFlushIpi(interrupt.req, now);
      const handledAt = Math.max(r.handledAt, now + acc);
      const ack: FlushAck = {
        id: interrupt.req.id,
        // A running target's kick and injection are part of delivery, not of waiting for it.
        arrivedAt: waiting ? arrivedAt : handledAt,
        handledAt,
        ackedAt: now + acc + r.cost,
        deferred: false,
      };
      acc += r.cost;
      if (r.exits.length > 0) {
        return {
          pending: context.pending.slice(i + 1),
          exits: r.exits,
          exitDelay: acc,
          held: [{ to: interrupt.req.from, ack, exitsLeft: r.exits.length }],
        };
      }
      port.send(interrupt.req.from, 'FLUSH_ACK', { ack }, acc, Priority.MESSAGE);
    } else {
      acc += interrupt.kind === 'init' ? os.onInit(interrupt.from, now) : os.onIpi(interrupt.from, now);
    }
  }
  return { pending: [], exits: [], exitDelay: 0, held: [] };
}

/**
 * A VMRUN answered one exit: each held acknowledgement has one exit fewer to wait for; those
 * with none left are written just after it (the handler's last instruction has returned). At
 * least 1 ps after the VMRUN, as every guest action that follows one: the initiator may share
 * this pCPU, and its acknowledgement must not sort before the world switch that allowed it.
 */
function releaseAcks(context: VcpuContext, now: Time): HeldAck[] {
  const left: HeldAck[] = [];
  for (const h of context.heldAcks) {
    if (h.exitsLeft > 1) left.push({ ...h, exitsLeft: h.exitsLeft - 1 });
    else context.port.send(h.to, 'FLUSH_ACK', { ack: { ...h.ack, ackedAt: now + 1 } }, 1, Priority.MESSAGE);
  }
  return left;
}

/**
 * A kick for an L2 vCPU this (L1) vCPU runs: the interrupt is in the L2 vCPU's vAPIC (L1's KVM
 * wrote it before kicking), so L1 learns that L2 vCPU is runnable, and the L2 vCPU queues it
 * for its next VMRUN. L1 takes the kick itself as a plain IPI; a running L2 was kicked out by
 * L0 (nested #VMEXIT, EXIT_INTR), so that VMRUN comes after L1 has handled it. Both vCPUs share
 * this pCPU.
 */
function forwardToL2(context: VcpuContext, forL2: NestedInterrupt): Partial<VcpuContext> {
  const now = context.port.now();
  const stepNow = context.os.noteL2Interrupt?.(forL2, now) ?? false;
  const msg = { interrupt: forL2.interrupt, arrivedAt: now, doorbell: false, waiting: true };
  // 1 ps: the kick may have come as a relayed message, which an interrupt must not sort before.
  context.port.send(forL2.actor, 'INTR', msg, 1, Priority.INTERRUPT);
  // L1 was running its own processes (or had nothing left to do): its next step, which enters
  // the woken L2 vCPU, is now. In guest mode that is a new STEP; out of it, the next entry
  // schedules it (an idle L1 goes back to its plan rather than to idling).
  if (!stepNow || (context.plan.kind !== 'run' && context.plan.kind !== 'idle')) return {};
  const plan: StepPlan = { kind: 'run', at: now + 1 };
  if (context.where !== 'guest')
    return { plan, ...(context.resumeTo === 'idle' ? { resumeTo: 'route' } : {}) };
  const gen = context.gen + 1;
  context.port.schedule(1, 'STEP', { gen }, Priority.TIMER);
  return { plan, gen, stepAt: now + 1 };
}

/** AVIC: the ICR write reaches each target's pCPU without an exit. */
function sendAvic(
  context: VcpuContext,
  targets: number[],
  interrupt: GuestInterrupt,
  delay: Time,
  spacing: Time,
): void {
  targets.forEach((target, i) => {
    sendRouted(
      context.port,
      context.route(target),
      'INTR',
      { target, interrupt, avic: true },
      delay + i * spacing + context.avicDelay,
      Priority.INTERRUPT,
    );
  });
}

/** The entry a kick is meant for: a KICK's, or an interrupt's that doubles as one. */
function kickSeqOf(event: unknown): number | undefined {
  const e = event as { type: string; seq?: number; kick?: number };
  return e.type === 'KICK' ? e.seq : e.kick;
}
