import { assign, setup } from 'xstate';
import type { Port } from '../actors/hostedActor.js';
import { Priority } from '../actors/priority.js';
import type { Time } from '../actors/time.js';
import type { FlushRequest } from '../hw/cpuSoftware.js';
import type { GuestExit, GuestInterrupt } from '../hw/exit.js';
import { type Route, sendRouted } from '../vcpu/route.js';
import { type DyView, directedYieldTarget, dyViewOf } from './directedYield.js';
import type { HostScheduler, VcpuThread } from './hostScheduler.js';
import type { MigrationDomain } from './migrationDomain.js';

export interface HostInput {
  port: Port;
  sched: HostScheduler;
  /** AVIC: interrupts reach a running vCPU without an exit (doorbell). */
  avic: boolean;
  /** Where a message for a vCPU goes: the pCPU that runs it, or (across domains) a relay. */
  route: (vcpuActor: number) => Route;
  /** The migration domain of this pCPU, when its vCPU threads may move. */
  domain: MigrationDomain | undefined;
  /**
   * PAUSE-loop exiting on: by VM index, the pCPUs outside this one's domain that may run that
   * VM's vCPUs. Directed yield there reads what this pCPU publishes of its threads (DY_STATE).
   */
  spinPeers: ReadonlyMap<number, readonly number[]>;
}

interface HostContext extends HostInput {
  /** Time the current exit's handling ends. */
  handledAt: Time;
  blockFor: Time;
  /** Sequence number of the last VMRUN sent (a kick names the entry it is meant for). */
  entrySeq: number;
  /** A kick is outstanding for the current entry. */
  kicked: boolean;
  sliceGen: number;
  /** Cost of getting the chosen thread running (context switch, IBPB), paid before its VMRUN. */
  switchCost: Time;
  /** Generation of this pCPU's own balancing timer (end of a halt poll, a hot thread cooling). */
  balanceGen: number;
  /** The host tasks' first wake-ups are scheduled (at the first `choose`, time 0). */
  tasksArmed: boolean;
  /** Another pCPU chose this idle one to take a waiting thread (select_idle_sibling). */
  claimedPull: boolean;
  /** Generation of the running host task's stretch timer (a preempted stretch's is stale). */
  taskGen: number;
  /** The exit being handled is a PAUSE exit: kvm_vcpu_on_spin's yield_to_kernel_mode. */
  onSpin: { yieldToKernelMode: boolean } | undefined;
  /** vCPUs homed outside this domain, as their pCPUs last published them (by vCPU actor). */
  spinView: Map<number, DyView>;
  /** kvm->last_boosted_vcpu by VM, for a pCPU outside any migration domain (see boostBoard). */
  lastBoosted: Map<number, number>;
}

/** A guest interrupt for a vCPU of this pCPU, from another host, this one, or a vCPU's AVIC. */
export interface IntrMessage {
  type: 'INTR';
  /** vCPU actor the interrupt is for. */
  target: number;
  interrupt: GuestInterrupt;
  /** Sent by the guest through AVIC (no exit), not delivered by KVM. */
  avic?: boolean;
}

/** A Hyper-V flush hypercall's request for one target vCPU of this pCPU. */
export interface HvFlushMessage {
  type: 'HV_FLUSH';
  target: number;
  req: FlushRequest;
}

export type HostEvent =
  | HvFlushMessage
  | { type: 'VMEXIT'; exit: GuestExit }
  | { type: 'HANDLED' }
  | { type: 'SLICE'; gen: number }
  | { type: 'WAKE'; thread: number; gen: number }
  /** Pull work: this pCPU's own timer (`gen`), or another pCPU's reschedule IPI (no `gen`). */
  | { type: 'BALANCE'; gen?: number }
  /**
   * An AVIC IPI of the vCPU `target` (running here) found its destination not running: the
   * sender takes an AVIC_INCOMPLETE_IPI exit.
   */
  | { type: 'AVIC_INCOMPLETE'; target: number }
  /** A host task's period began (`task`: its index on this pCPU), or its burst is done. */
  | { type: 'TASK_WAKE'; task: number }
  | { type: 'TASK_DONE'; gen: number }
  /** Another pCPU's vCPU thread changed what directed yield reads of it. */
  | { type: 'DY_STATE'; view: DyView }
  /** A spinner on another pCPU yielded to this vCPU of the VM: its kvm->last_boosted_vcpu. */
  | { type: 'LAST_BOOSTED'; vm: number; vcpu: number }
  /** A spinner's directed yield chose a thread of this pCPU (yield_to): buddy and reschedule. */
  | { type: 'YIELD_TO'; target: number }
  /**
   * The timer of an L1 guest hypervisor (vCPU thread `thread`) fired during its nested entry
   * `entry` (KvmVcpu.nestedEntries): an interrupt for L1, which L0 emulates (the LAPIC timer).
   */
  | { type: 'L1_TIMER'; thread: number; entry: number }
  | IntrMessage;

/**
 * A pCPU that runs vCPU threads: the host scheduler and KVM's run loop as one machine.
 * `choosing` is schedule(); the `vmrun` action on the way into `inGuest` is vcpu_enter_guest
 * (vcpu_load with IBPB on a vCPU switch, record_steal_time, request servicing, CLEAR_RAP,
 * VMRUN); `inGuest` waits for the
 * #VMEXIT while slices end and interrupts arrive; `handlingExit` is svm_handle_exit; `idle` is a
 * pCPU with nothing runnable (polling for a halted vCPU, or asleep).
 *
 * Interrupts for a running vCPU kick it out (a posted-interrupt IPI causes an INTR exit; KVM
 * injects at the next VMRUN) or, with AVIC, ring its doorbell (no exit). For a preempted vCPU
 * they wait in its vAPIC until it runs again, unless PV TLB flush lets the sender skip it; a
 * halted vCPU is woken, unless its guest idles in lazy TLB mode and the interrupt is a
 * shootdown's flush IPI, which the guest's initiator skips.
 */
export const hostMachine = setup({
  types: { input: {} as HostInput, context: {} as HostContext, events: {} as HostEvent },
  actions: {
    vmrun: assign(({ context }) => {
      const { sched, port } = context;
      const now = port.now();
      // schedule() → vcpu_load (context switch, IBPB on a vCPU switch) unless it is the same.
      const thread = sched.current!;
      thread.guestIdle = false;
      const switchCost = context.switchCost;
      const deferred = sched.recordStealTime(thread);
      const hv = sched.serviceHvFlush(thread);
      if (hv.reqs.length > 0) deferred.push(...hv.reqs);
      const e = thread.kvm.enter();
      const entrySeq = context.entrySeq + 1;
      const data: Record<string, unknown> = { seq: entrySeq };
      if (e.reflected) data.reflected = e.reflected;
      // The flushes were for the vCPU's own guest: when it is entering its L2, L1 learns of
      // them by itself (the steal-time flag, the Hyper-V FIFO are L1's), not through L2's VMRUN.
      if (deferred.length > 0 && e.target === thread.actor) data.deferred = deferred;
      else if (deferred.length > 0)
        port.send(thread.actor, 'DEFERRED_FLUSHES', { deferred }, 0, Priority.WORLD_SWITCH);
      if (e.pleAfter > 0) data.pleAfter = e.pleAfter;
      port.send(e.target, 'VMRUN', data, switchCost + hv.cost + e.cost, Priority.WORLD_SWITCH);
      armSlice(context, now);
      return { entrySeq, kicked: false, switchCost: 0 };
    }),
    choose: assign(({ context }) => {
      const { sched, port, domain } = context;
      const now = port.now();
      if (!context.tasksArmed) {
        for (const { task, at } of sched.taskPhases()) {
          port.schedule(at, 'TASK_WAKE', { task: sched.tasks.indexOf(task) }, Priority.TIMER);
        }
      }
      let next = sched.pickNext(now);
      let balanceGen = context.balanceGen;
      if (!next && domain) {
        // newidle_balance — unless the vCPU that just halted here still polls (then the pCPU
        // is not idle yet: look again when the poll gives up).
        const pollEnd = sched.pollEnd(now);
        if (pollEnd === undefined) sched.markIdle(now);
        // A wake-up placed here is taken whatever; newidle balancing skips a pCPU whose idle
        // periods are usually too short to be worth a migration.
        const look = pollEnd === undefined && (context.claimedPull || !sched.idlesBriefly);
        const pull = look ? domain.pull(port.self, now) : undefined;
        if (pull?.kind === 'pulled') next = sched.pickNext(now);
        const at = pollEnd ?? (pull?.kind === 'hot' ? pull.at : undefined);
        if (at !== undefined) {
          balanceGen++;
          port.schedule(Math.max(1, at - now), 'BALANCE', { gen: balanceGen }, Priority.TIMER);
        }
      }
      if (next) offerWork(context, now);
      // Not at the start: every thread then is running or preempted in user mode (steady
      // state), which directed yield from a spinning (kernel-mode) vCPU passes over anyway.
      if (context.tasksArmed) publishSpinStates(context);
      return { switchCost: next?.cost ?? 0, balanceGen, tasksArmed: true, claimedPull: false };
    }),
    startTask: assign(({ context }) => {
      const { sched, port } = context;
      const now = port.now();
      const end = sched.startTask(now + context.switchCost, port);
      const taskGen = context.taskGen + 1;
      port.schedule(end - now, 'TASK_DONE', { gen: taskGen }, Priority.TIMER);
      return { taskGen };
    }),
    runTaskOn: assign(({ context }) => {
      const { sched, port } = context;
      const now = port.now();
      const taskGen = context.taskGen + 1;
      port.schedule(sched.runTaskOn(now) - now, 'TASK_DONE', { gen: taskGen }, Priority.TIMER);
      return { taskGen };
    }),
    preemptTask: ({ context }) => {
      context.sched.preemptTask(context.port.now());
      offerWork(context, context.port.now());
    },
    endTask: ({ context }) => {
      const { task, wakeAt } = context.sched.sleepTask(context.port.now());
      const delay = wakeAt - context.port.now();
      context.port.schedule(delay, 'TASK_WAKE', { task: context.sched.tasks.indexOf(task) }, Priority.TIMER);
    },
    taskWake: ({ context, event }) => {
      const { sched, port } = context;
      const ev = event as Extract<HostEvent, { type: 'TASK_WAKE' }>;
      sched.wakeTask(sched.tasks[ev.task]!, port.now());
      armSlice(context, port.now());
    },
    unclaim: ({ context, event }) => {
      if ((event as Extract<HostEvent, { type: 'BALANCE' }>).gen === undefined)
        context.domain?.unclaim(context.port.self);
    },
    /** Idle, and chosen by another pCPU: the next `choose` pulls whatever its idle history. */
    takeClaim: assign(({ context, event }) => {
      if ((event as Extract<HostEvent, { type: 'BALANCE' }>).gen !== undefined) return {};
      context.domain?.unclaim(context.port.self);
      return { claimedPull: true };
    }),
    handleExit: assign(({ context, event }) => {
      const ev = event as Extract<HostEvent, { type: 'VMEXIT' }> & { src: number };
      const t = context.sched.current!;
      const kvm = t.kvm;
      const r = kvm.handleExit(ev.exit, ev.src);
      // The L1 guest's own idle loop halted (not an L2's HLT, which L1 handles).
      if (ev.exit.reason === 'hlt' && ev.exit.idle && ev.src === t.actor) t.guestIdle = true;
      const now = context.port.now();
      // Out of guest mode: the Hyper-V flushes that kicked this vCPU out are acknowledged.
      for (const { to, ack } of context.sched.hvExitAcks(context.sched.current!, now)) {
        context.port.send(to, 'FLUSH_ACK', { ack }, r.switchCost, Priority.MESSAGE);
      }
      if (r.hvFlush) {
        // kvm_hv_flush_tlb: each target's pCPU queues the flush (and kicks it if it runs).
        r.hvFlush.targets.forEach((target, i) => {
          const delay = r.switchCost + kvm.core.timing.exitHandler + i * kvm.core.timing.ipiSendPerTarget;
          const msg = { target, req: r.hvFlush!.req };
          sendRouted(context.port, context.route(target), 'HV_FLUSH', msg, delay, Priority.INTERRUPT);
        });
      }
      if (r.send) {
        // kvm_pv_send_ipi: KVM delivers to each target in turn, before the exit handler returns.
        r.send.targets.forEach((target, i) => {
          const delay = r.switchCost + kvm.core.timing.exitHandler + i * kvm.core.timing.ipiSendPerTarget;
          const msg = { target, interrupt: r.send!.interrupt };
          sendRouted(context.port, context.route(target), 'INTR', msg, delay, Priority.INTERRUPT);
        });
      }
      if (r.onSpin) context.sched.current!.stats.pleExits++;
      if (r.l1Timer !== undefined) {
        const msg = { thread: t.actor, entry: kvm.nestedEntries };
        context.port.schedule(Math.max(1, r.l1Timer - now), 'L1_TIMER', msg, Priority.TIMER);
      }
      return { handledAt: now + r.switchCost + r.cost, blockFor: r.blockFor ?? 0, onSpin: r.onSpin };
    }),
    scheduleHandled: ({ context }) => {
      context.port.schedule(
        Math.max(1, context.handledAt - context.port.now()),
        'HANDLED',
        {},
        Priority.TIMER,
      );
    },
    block: ({ context }) => {
      const t = context.sched.blockCurrent(context.port.now());
      context.port.schedule(
        Math.max(1, context.blockFor),
        'WAKE',
        { thread: t.actor, gen: t.wakeGen },
        Priority.TIMER,
      );
    },
    preempt: ({ context }) => {
      context.sched.preemptCurrent(context.port.now());
    },
    /**
     * A PAUSE exit's kvm_vcpu_on_spin found a target: yield_to → yield_to_task_fair makes it its
     * run queue's next buddy and reschedules its pCPU — here, the schedule() that follows;
     * elsewhere, a reschedule IPI later — and KVM records it (WRITE_ONCE(kvm->last_boosted_vcpu,
     * idx)), which the VM's other pCPUs read, those outside this domain a link later. This
     * happens whether or not the spinner's pCPU has another thread (yield_to refuses only when
     * both run queues hold one thread each, and the target's holds the target and what runs).
     */
    boostTarget: ({ context }) => {
      const { sched, port } = context;
      const target = yieldTargetOf(context);
      if (!target) return;
      boostBoard(context).set(target.vm, target.vcpu);
      for (const peer of context.spinPeers.get(target.vm) ?? [])
        port.send(peer, 'LAST_BOOSTED', { vm: target.vm, vcpu: target.vcpu }, 0, Priority.MESSAGE);
      const t = target.pcpu === port.self ? sched.threadOf(target.actor) : undefined;
      if (t) sched.yieldedTo(t, port.now());
      else port.send(target.pcpu, 'YIELD_TO', { target: target.actor }, 0, Priority.MESSAGE);
    },
    /** yield_task_fair on the spinner (its pCPU has another thread; alone it returns at once). */
    yieldPcpu: ({ context }) => {
      context.sched.yieldCurrent(context.port.now());
    },
    yieldedTo: ({ context, event }) => {
      const { target } = event as Extract<HostEvent, { type: 'YIELD_TO' }>;
      const t = context.sched.threadOf(target);
      // It may have run, or moved to another pCPU of its domain, since the spinner looked.
      if (t) context.sched.yieldedTo(t, context.port.now());
    },
    timerWake: ({ context, event }) => {
      const ev = event as Extract<HostEvent, { type: 'WAKE' }>;
      const t = context.sched.threadOf(ev.thread);
      // A thread that was woken early may have moved to another pCPU since.
      if (!t || t.wakeGen !== ev.gen) return;
      context.sched.wake(t, context.port.now(), false);
      armSlice(context, context.port.now());
      offerWork(context, context.port.now());
      publishSpinStates(context);
    },
    learnLastBoosted: ({ context, event }) => {
      const { vm, vcpu } = event as Extract<HostEvent, { type: 'LAST_BOOSTED' }>;
      boostBoard(context).set(vm, vcpu);
    },
    learnSpinState: ({ context, event }) => {
      const { view } = event as Extract<HostEvent, { type: 'DY_STATE' }>;
      context.spinView.set(view.actor, view);
    },
    sliceEnd: assign(({ context, event }) => {
      const ev = event as Extract<HostEvent, { type: 'SLICE' }>;
      if (ev.gen !== context.sliceGen) return {};
      const { sched } = context;
      sched.sliceArmed = false;
      if (!sched.contended) return {};
      const now = context.port.now();
      if (sched.keepsCurrent(now)) {
        // schedule() would pick the running thread again: it runs on into its next request.
        armSlice(context, now);
        return {};
      }
      // The slice is over and a thread waits: need_resched; a running guest must be kicked out.
      sched.needResched = true;
      return {};
    }),
    avicIncomplete: assign(({ context, event }) => {
      const ev = event as Extract<HostEvent, { type: 'AVIC_INCOMPLETE' }>;
      const { sched, port } = context;
      const t = sched.threadOf(ev.target);
      // The sender left guest mode meanwhile (or is being kicked anyway): that exit is the one.
      // So is the VMRUN of an L1 that went on into its L2 after the ICR write (its KVM's kicks
      // for an L2 interrupt): an L2 never writes an AVIC ICR (vmcb02 has no AVIC).
      if (!t || t !== sched.current || context.kicked || t.kvm.running === 'l2') return {};
      port.send(
        t.kvm.guestActor,
        'KICK',
        { seq: context.entrySeq, reason: 'avic-incomplete-ipi' },
        0,
        Priority.INTERRUPT,
      );
      return { kicked: true };
    }),
    kickForPreemption: assign(({ context }) => {
      if (!context.sched.needResched || context.kicked) return {};
      context.sched.stats.kicks.preempt++;
      kick(context);
      return { kicked: true };
    }),
    deliverWhileInGuest: assign(({ context, event }) => {
      const ev = event as IntrMessage;
      return deliver(context, ev, true) ? { kicked: true } : {};
    }),
    hvFlush: assign(({ context, event }, params: { inGuest: boolean }) => {
      const ev = event as HvFlushMessage;
      const { sched, port } = context;
      const t = sched.threadOf(ev.target);
      if (!t) {
        forwardMoved(context, ev);
        return {};
      }
      if (guestLazy(t, ev.req)) {
        // hyperv_flush_tlb_multi leaves CPUs in lazy TLB mode out of the hypercall's processor
        // mask too (since Linux 6.1): the guest flushes when it leaves its idle loop.
        skipAtGuest(port, t, { kind: 'flush', req: ev.req, from: ev.req.from, sentAt: port.now() });
        return {};
      }
      const ack = sched.queueHvFlush(t, ev.req, port.now(), params.inGuest);
      if (ack) {
        port.send(ev.req.from, 'FLUSH_ACK', { ack }, 0, Priority.MESSAGE);
        return {};
      }
      if (context.kicked) return {};
      sched.stats.kicks.interrupt++;
      kick(context);
      return { kicked: true };
    }),
    deliverOutsideGuest: ({ context, event }) => {
      deliver(context, event as IntrMessage, false);
    },
    /**
     * L1's timer fired while L1 may still be in the L2 entry it was armed for: L1 must get the CPU
     * (a nested #VMEXIT with EXIT_INTR at the next entry), and an L2 running here is kicked out.
     */
    l1Timer: assign(({ context, event }, params: { inGuest: boolean }) => {
      const ev = event as Extract<HostEvent, { type: 'L1_TIMER' }>;
      const t = context.sched.threadOf(ev.thread);
      if (t?.kvm.running !== 'l2' || t.kvm.nestedEntries !== ev.entry) return {};
      t.kvm.noteL1Interrupt();
      if (!params.inGuest || t !== context.sched.current || context.kicked) return {};
      kick(context);
      return { kicked: true };
    }),
  },
  guards: {
    blocks: ({ context }) => context.blockFor > 0,
    /** A flush the guest's initiator leaves out for a halted vCPU (idle, or on another mm). */
    guestSkips: ({ context, event }) => {
      const t = context.sched.threadOf((event as IntrMessage).target);
      const ev = event as IntrMessage;
      return t !== undefined && (isLazySkip(t, ev) || isOtherMmSkip(t, ev) || isL2Skip(t, ev));
    },
    resched: ({ context }) => context.sched.needResched && context.sched.contended,
    /**
     * The PAUSE exit's kvm_vcpu_on_spin found a vCPU to yield to, and another thread waits for
     * this pCPU (otherwise yield_task_fair returns at once and schedule() picks the spinner again).
     */
    yields: ({ context }) => context.sched.contended && yieldTargetOf(context) !== undefined,
    hasCurrent: ({ context }) => context.sched.current !== undefined,
    hasTask: ({ context }) => context.sched.task !== undefined,
    taskBurstDone: ({ context }) => context.sched.task!.remainingAt(context.port.now()) <= 0,
    /** The stretch this timer ended was cut short by a wake-up that preempted the task. */
    staleTaskDone: ({ context, event }) =>
      (event as Extract<HostEvent, { type: 'TASK_DONE' }>).gen !== context.taskGen,
    wakePreemptsTask: ({ context }) => context.sched.wakePreemptsTask && context.sched.task !== undefined,
    taskContended: ({ context }) => context.sched.taskContended(context.port.now()),
    /** A reschedule IPI, or this pCPU's own balancing timer that is still current. */
    balanceDue: ({ context, event }) => {
      const gen = (event as Extract<HostEvent, { type: 'BALANCE' }>).gen;
      return gen === undefined || gen === context.balanceGen;
    },
  },
}).createMachine({
  id: 'host',
  context: ({ input }) => ({
    ...input,
    handledAt: 0,
    blockFor: 0,
    entrySeq: 0,
    kicked: false,
    sliceGen: 0,
    switchCost: 0,
    balanceGen: 0,
    tasksArmed: false,
    claimedPull: false,
    taskGen: 0,
    onSpin: undefined,
    spinView: new Map(),
    lastBoosted: new Map(),
  }),
  initial: 'choosing',
  on: {
    WAKE: { actions: 'timerWake' },
    SLICE: { actions: 'sliceEnd' },
    INTR: { actions: 'deliverOutsideGuest' },
    HV_FLUSH: { actions: { type: 'hvFlush', params: { inGuest: false } } },
    // Busy again by the time the reschedule IPI or the timer arrived: nothing to pull.
    BALANCE: { actions: 'unclaim' },
    TASK_WAKE: { actions: 'taskWake' },
    DY_STATE: { actions: 'learnSpinState' },
    LAST_BOOSTED: { actions: 'learnLastBoosted' },
    YIELD_TO: { actions: 'yieldedTo' },
    L1_TIMER: { actions: { type: 'l1Timer', params: { inGuest: false } } },
  },
  states: {
    choosing: {
      description: 'schedule(): the next vCPU thread from the run queue, or idle.',
      entry: 'choose',
      // The VMRUN action is vcpu_enter_guest: vcpu_load (IBPB on a vCPU switch),
      // record_steal_time, request servicing, CLEAR_RAP, VMRUN. (A transition action, not a
      // pass-through state: a state would cost every world switch an extra machine step.)
      always: [
        { guard: 'hasCurrent', actions: 'vmrun', target: 'inGuest' },
        { guard: 'hasTask', actions: 'startTask', target: 'inTask' },
        { target: 'idle' },
      ],
    },
    inTask: {
      description:
        'A host kernel thread (host.tasks) has the pCPU until its burst is done, a slice at a time: preempted at a slice end if another thread waits, or at once by a wake-up that EEVDF prefers.',
      always: { guard: 'wakePreemptsTask', actions: 'preemptTask', target: 'choosing' },
      on: {
        TASK_DONE: [
          { guard: 'staleTaskDone' },
          { guard: 'taskBurstDone', actions: 'endTask', target: 'choosing' },
          { guard: 'taskContended', actions: 'preemptTask', target: 'choosing' },
          { actions: 'runTaskOn' },
        ],
      },
    },
    inGuest: {
      description: 'The vCPU runs; slices end and interrupts arrive (kick, or AVIC doorbell).',
      on: {
        VMEXIT: { actions: 'handleExit', target: 'handlingExit' },
        SLICE: { actions: ['sliceEnd', 'kickForPreemption'] },
        // A wake-up may preempt the running vCPU (check_preempt_wakeup_fair).
        INTR: { actions: ['deliverWhileInGuest', 'kickForPreemption'] },
        WAKE: { actions: ['timerWake', 'kickForPreemption'] },
        TASK_WAKE: { actions: ['taskWake', 'kickForPreemption'] },
        YIELD_TO: { actions: ['yieldedTo', 'kickForPreemption'] },
        HV_FLUSH: { actions: { type: 'hvFlush', params: { inGuest: true } } },
        AVIC_INCOMPLETE: { actions: 'avicIncomplete' },
        L1_TIMER: { actions: { type: 'l1Timer', params: { inGuest: true } } },
      },
    },
    handlingExit: {
      description: 'svm_handle_exit → svm_exit_handlers[reason].',
      entry: 'scheduleHandled',
      on: {
        HANDLED: [
          { guard: 'blocks', actions: 'block', target: 'choosing' },
          { guard: 'yields', actions: ['boostTarget', 'yieldPcpu'], target: 'choosing' },
          { guard: 'resched', actions: ['boostTarget', 'preempt'], target: 'choosing' },
          { actions: ['boostTarget', 'vmrun'], target: 'inGuest' },
        ],
      },
    },
    idle: {
      description:
        'Nothing runnable: the pCPU polls for a halted vCPU (halt_poll_ns), then sleeps; it pulls waiting vCPUs of its domain.',
      on: {
        WAKE: { actions: 'timerWake', target: 'choosing' },
        INTR: [
          // A flush the guest skips (an idle guest, or one halted on another address space) does
          // not end the poll or the sleep.
          { guard: 'guestSkips', actions: 'deliverOutsideGuest' },
          { actions: 'deliverOutsideGuest', target: 'choosing' },
        ],
        BALANCE: [{ guard: 'balanceDue', actions: 'takeClaim', target: 'choosing' }, { actions: 'unclaim' }],
        TASK_WAKE: { actions: 'taskWake', target: 'choosing' },
      },
    },
  },
});

/**
 * Tells the pCPUs outside this domain that may run a VM's vCPUs what directed yield reads of
 * this pCPU's threads (vcpu->ready, ->preempted, ->arch.preempted_in_kernel), when it changed.
 * KVM reads those flags through shared memory; here they arrive a link later, like the cache
 * line that carries them.
 */
function publishSpinStates(context: HostContext): void {
  if (context.spinPeers.size === 0) return;
  for (const t of context.sched.threads) {
    const view = dyViewOf(t, context.port.self);
    const key = `${view.state}@${view.pcpu}`;
    if (t.dyPublished === key) continue;
    t.dyPublished = key;
    const peers = context.spinPeers.get(t.kvm.p.vm);
    if (!peers) continue;
    for (const peer of peers) context.port.send(peer, 'DY_STATE', { view }, 0, Priority.MESSAGE);
  }
}

/**
 * The PAUSE exit's kvm_vcpu_on_spin target, if any: the domain's threads seen exactly (same
 * partition, same simulated time), others as their pCPUs last published them.
 */
function yieldTargetOf(context: HostContext): DyView | undefined {
  const { sched, domain, onSpin } = context;
  if (!onSpin || !sched.current) return undefined;
  const views = domain ? domain.dyViews() : sched.threads.map((t) => dyViewOf(t, context.port.self));
  for (const v of context.spinView.values()) views.push(v);
  const me = sched.current.kvm.p;
  return directedYieldTarget(me, views, onSpin.yieldToKernelMode, boostBoard(context).get(me.vm) ?? 0);
}

/** Where this pCPU keeps kvm->last_boosted_vcpu: its domain's, shared, else its own copy. */
function boostBoard(context: HostContext): Map<number, number> {
  return context.domain?.lastBoosted ?? context.lastBoosted;
}

/** Arms the slice timer of the running thread when another thread waits for the pCPU. */
function armSlice(context: HostContext, now: Time): void {
  const { sched } = context;
  const t = sched.current;
  if (!t || sched.sliceArmed || !sched.contended) return;
  sched.sliceArmed = true;
  context.sliceGen++;
  const end = Math.max(now + 1, sched.tickAfter(sched.sliceEnd(t, now)));
  context.port.schedule(end - now, 'SLICE', { gen: context.sliceGen }, Priority.TIMER);
}

/**
 * A thread now waits behind a running one: an idle pCPU of the domain gets a reschedule IPI and
 * pulls it (select_idle_sibling on wake-up; the idle-balance kick on preemption).
 */
function offerWork(context: HostContext, now: Time): void {
  const { sched, domain, port } = context;
  if (!domain || !sched.contended || sched.queuedMigratable().length === 0) return;
  const idle = domain.claimIdle(port.self, now);
  if (idle) port.send(idle.actor, 'BALANCE', {}, 0, Priority.INTERRUPT);
}

/**
 * A message for a vCPU that moved to another pCPU of the domain while the message was on its
 * way: passed on (KVM would have kicked the vCPU where it is now, vcpu->cpu).
 */
function forwardMoved(context: HostContext, ev: IntrMessage | HvFlushMessage): void {
  const { domain, port } = context;
  if (!domain?.members.has(ev.target)) {
    throw new Error(`${ev.type} for vCPU actor ${ev.target}, which this pCPU does not run`);
  }
  // The event carries its sender (`src`); the forwarded message gets a new one.
  const { type, src: _src, ...data } = ev as (IntrMessage | HvFlushMessage) & { src?: number };
  port.send(domain.hostOf(ev.target), type, data, 0, Priority.INTERRUPT);
}

/**
 * An L1 guest hypervisor's kick carrying an L2 flush IPI that the L2's initiator would not have
 * sent (the target L2 vCPU idle in lazy TLB mode, or on another mm): L1's is_lazy and loaded_mm
 * reads, made where the target is.
 */
function isL2Skip(t: VcpuThread, ev: IntrMessage): boolean {
  const forL2 = ev.interrupt.forL2;
  return forL2 !== undefined && (t.guest?.l2FlushSkipped?.(forL2) ?? false);
}

/**
 * A shootdown's flush IPI for a vCPU whose guest is idle in lazy TLB mode: native_flush_tlb_multi
 * skips it (should_flush_tlb). The PV check comes first in kvm_flush_tlb_multi, but a halted
 * vCPU is never marked preempted.
 */
function isLazySkip(t: VcpuThread, ev: IntrMessage): boolean {
  const req = ev.interrupt.req;
  return ev.interrupt.kind === 'flush' && req !== undefined && guestLazy(t, req);
}

/**
 * The guest of `t` is in its idle loop, in lazy TLB mode. The host learns it from the HLT exit
 * (`guestIdle`), but the guest's is_lazy is set before that exit leaves: its own answer covers a
 * flush that reaches the host while the exit is still on its way, which would otherwise find
 * the vCPU running and kick a guest that skips the flush anyway.
 */
function guestLazy(t: VcpuThread, req: FlushRequest): boolean {
  return t.guestIdle || t.guest?.flushSkip(req) === 'lazy';
}

/**
 * A shootdown's flush IPI for a vCPU whose guest runs another address space: should_flush_tlb
 * leaves it out (loaded_mm, Linux 6.14+; before, the vCPU was not in the mm's CPU mask at all).
 * kvm_flush_tlb_multi's PV check comes first, so a preempted vCPU is marked for a flush at its
 * next entry instead, as in 6.14+. The host cannot see the guest's loaded_mm: the guest's view
 * stands for the initiator's read of it in guest memory.
 */
function isOtherMmSkip(t: VcpuThread, ev: IntrMessage): boolean {
  const req = ev.interrupt.req;
  return ev.interrupt.kind === 'flush' && req !== undefined && t.guest?.flushSkip(req) === 'other-mm';
}

/**
 * The guest's initiator skipped this vCPU (lazy TLB mode, or another address space loaded): its
 * own actor answers for its guest (vcpuMachine's skipFlush): no wake-up, no kick. Sent before any
 * VMRUN that would end an idle loop, it arrives while the guest still idles.
 */
function skipAtGuest(port: Port, t: VcpuThread, interrupt: GuestInterrupt): void {
  const msg = { interrupt, arrivedAt: port.now(), doorbell: false, waiting: true };
  port.send(t.actor, 'INTR', msg, 0, Priority.INTERRUPT);
}

/** Forces the running guest out with an INTR exit (a reschedule or posted-interrupt IPI). */
function kick(context: HostContext): void {
  const t = context.sched.current!;
  const target = t.kvm.guestActor;
  // 1 ps: a kick decided by a timer (priority TIMER) must not sort before that timer.
  context.port.send(target, 'KICK', { seq: context.entrySeq }, 1, Priority.INTERRUPT);
}

/**
 * An interrupt for one of this pCPU's vCPUs. A running target without AVIC must be kicked out so
 * that KVM can inject at the next VMRUN: the posted-interrupt IPI is the interrupt message itself
 * (it carries the entry it kicks), or, while an L2 runs, a separate kick to the L2. Returns
 * whether it kicked.
 */
function deliver(context: HostContext, ev: IntrMessage, inGuest: boolean): boolean {
  const { sched, port } = context;
  const t: VcpuThread | undefined = sched.threadOf(ev.target);
  if (!t) {
    forwardMoved(context, ev);
    return false;
  }
  const now = port.now();
  const forL2 = ev.interrupt.forL2;
  const l2Ctx = forL2 ? t.guest?.deferL2Flush?.(forL2, now) : undefined;
  if (forL2 && l2Ctx !== undefined) {
    // The L2's kvm_flush_tlb_multi found the target L2 vCPU preempted in L1 and deferred the
    // flush to L1's next VMRUN of it: no interrupt, no wake-up, no kick; the initiator's cmpxchg
    // is its answer. (Decided here, where L1's steal-time state is, after the sender's kick.)
    const req = forL2.interrupt.req!;
    sched.noteNestedDeferral(t, req, l2Ctx);
    const ack = { id: req.id, arrivedAt: now, handledAt: now, ackedAt: now, deferred: true };
    port.send(forL2.interrupt.from, 'FLUSH_ACK', { ack }, 0, Priority.MESSAGE);
    return false;
  }
  if (isL2Skip(t, ev)) {
    // The L2's should_flush_tlb leaves the target L2 vCPU out: it answers for itself (its
    // actor's skipFlush); the L1 vCPU that runs it is neither woken nor kicked.
    const msg = { interrupt: forL2!.interrupt, arrivedAt: now, doorbell: false, waiting: true };
    port.send(forL2!.actor, 'INTR', msg, 0, Priority.INTERRUPT);
    return false;
  }
  if (isLazySkip(t, ev)) {
    // No wake-up, no kick, no AVIC incomplete-IPI exit.
    skipAtGuest(port, t, ev.interrupt);
    return false;
  }
  if (t !== sched.current) {
    const ack = sched.deferFlush(t, ev.interrupt, now);
    if (ack) {
      // The initiator's cmpxchg on the steal-time word succeeded: it reads this at once.
      port.send(ev.interrupt.from, 'FLUSH_ACK', { ack }, 0, Priority.MESSAGE);
      return false;
    }
  }
  if (isOtherMmSkip(t, ev)) {
    // No IPI was sent: no kick, no wake-up, no AVIC incomplete-IPI exit.
    skipAtGuest(port, t, ev.interrupt);
    return false;
  }
  if (t !== sched.current) {
    // AVIC found IsRunning clear for this target (it is not loaded on a pCPU): the interrupt is in
    // its IRR, and the sender takes an AVIC_INCOMPLETE_IPI exit for KVM to kick it. The sender's
    // exit is charged when this news reaches its pCPU, a link's latency after the hardware's.
    if (ev.avic) {
      sendRouted(
        port,
        context.route(ev.interrupt.from),
        'AVIC_INCOMPLETE',
        { target: ev.interrupt.from },
        0,
        Priority.INTERRUPT,
      );
    }
  }
  if (ev.interrupt.kind === 'init') t.kvm.initReset();
  const running = t === sched.current && inGuest;
  // While the vCPU runs its L2, L1 gets the interrupt through a nested #VMEXIT at the next entry
  // (and AVIC does not deliver to it: vmcb02 has no AVIC), so a running vCPU is kicked out of L2.
  const inL2 = t.kvm.running === 'l2';
  t.kvm.noteL1Interrupt();
  const avic = context.avic && !inL2;
  // AVIC accelerates fixed interrupts only; INIT always needs the vCPU out of guest mode.
  const mustKick = running && (!avic || ev.interrupt.kind === 'init') && !context.kicked;
  const kickHere = mustKick && !inL2;
  port.send(
    t.actor,
    'INTR',
    {
      interrupt: ev.interrupt,
      arrivedAt: now,
      doorbell: running && avic && ev.interrupt.kind !== 'init',
      // The target is not running: the interrupt waits for it to be scheduled again.
      waiting: t !== sched.current,
      ...(kickHere ? { kick: context.entrySeq } : {}),
    },
    0,
    Priority.INTERRUPT,
  );
  if (sched.wake(t, now, true)) {
    armSlice(context, now);
    offerWork(context, now);
    publishSpinStates(context);
  }
  if (mustKick && !kickHere) kick(context);
  if (mustKick) sched.stats.kicks.interrupt++;
  return mustKick;
}
