import { assign, setup } from 'xstate';
import type { Port } from '../actors/hostedActor.js';
import { Priority } from '../actors/priority.js';
import type { Time } from '../actors/time.js';
import type { CoreHw } from './core.js';
import type { CpuSoftware, FlushAck, FlushRequest, StepPlan } from './cpuSoftware.js';
import { answerSkippedFlush } from './skippedFlush.js';

export interface PcpuInput {
  port: Port;
  core: CoreHw;
  sw: CpuSoftware;
  /** Actor indices of every pCPU (for sync-point broadcasts), this one included. */
  peers: number[];
}

interface PcpuContext extends PcpuInput {
  plan: StepPlan;
  /** Generation of the pending STEP; older STEPs are stale and ignored. */
  gen: number;
  acksPending: number;
  /** The latest acknowledgement so far: the critical target, whose times split the wait. */
  criticalAck: FlushAck | undefined;
  /** Acknowledgements so far from targets that ran the flush handler. */
  acksInterrupted: number;
  shootdown: { req: FlushRequest; targets: number[] } | undefined;
  syncPlan: StepPlan | undefined;
  handlerEnd: Time;
}

export type PcpuEvent =
  | { type: 'STEP'; gen: number }
  | { type: 'FLUSH_IPI'; req: FlushRequest }
  | { type: 'FLUSH_ACK'; ack: FlushAck }
  | { type: 'IPI'; src: number; init?: boolean }
  | { type: 'SYNC'; name: string };

/**
 * A physical core as an xstate machine: the control flow of the software it runs (steps,
 * interrupts, the TLB-shootdown protocol, sync points, HLT). Per-instruction work (CALL/RET
 * against the RAP, TLB look-ups) happens inside the software's `step` in bulk, not here.
 *
 * `route` is a transient state that dispatches on the software's last plan; every handler that
 * gets a new plan goes through it, so the chart shows each decision the core can take.
 */
export const pcpuMachine = setup({
  types: {
    input: {} as PcpuInput,
    context: {} as PcpuContext,
    events: {} as PcpuEvent,
  },
  actions: {
    boot: assign(({ context }) => ({ plan: context.sw.start(context.port.now()) })),
    step: assign(({ context }) => ({ plan: context.sw.step(context.port.now()) })),
    scheduleStep: assign(({ context }) => {
      const plan = context.plan as { at: Time };
      const gen = context.gen + 1;
      const now = context.port.now();
      context.port.schedule(Math.max(0, plan.at - now), 'STEP', { gen }, Priority.TIMER);
      return { gen };
    }),
    sendFlushIpis: assign(({ context }) => {
      const plan = context.plan as Extract<StepPlan, { kind: 'shootdown' }>;
      plan.targets.forEach((t, i) => {
        const delay = plan.sendDelay + i * plan.sendSpacing;
        context.port.send(t, 'FLUSH_IPI', { req: plan.request }, delay, Priority.INTERRUPT);
      });
      return {
        acksPending: plan.targets.length,
        criticalAck: undefined,
        acksInterrupted: 0,
        shootdown: { req: plan.request, targets: plan.targets },
      };
    }),
    countAck: assign(({ context, event }) => {
      const ack = (event as Extract<PcpuEvent, { type: 'FLUSH_ACK' }>).ack;
      return {
        acksPending: context.acksPending - 1,
        // Acks arrive in time order, so the last one counted is the critical target's.
        criticalAck: ack,
        acksInterrupted: context.acksInterrupted + (ack.deferred ? 0 : 1),
      };
    }),
    completeShootdown: assign(({ context }) => ({
      plan: context.sw.onShootdownComplete(
        context.shootdown!.req,
        context.shootdown!.targets,
        context.port.now(),
        context.criticalAck,
        context.acksInterrupted,
      ),
      shootdown: undefined,
    })),
    handleFlushIpi: assign(({ context, event }) => {
      const req = (event as Extract<PcpuEvent, { type: 'FLUSH_IPI' }>).req;
      const now = context.port.now();
      const { cost, handledAt } = context.sw.onFlushIpi(req, now);
      const ack: FlushAck = { id: req.id, arrivedAt: now, handledAt, ackedAt: now + cost, deferred: false };
      context.port.send(req.from, 'FLUSH_ACK', { ack }, cost, Priority.MESSAGE);
      return { handlerEnd: now + cost };
    }),
    skipFlush: ({ context, event }) => {
      answerSkippedFlush(context.sw, context.port, (event as Extract<PcpuEvent, { type: 'FLUSH_IPI' }>).req);
    },
    handleIpi: assign(({ context, event }) => {
      const ev = event as Extract<PcpuEvent, { type: 'IPI' }>;
      const d = ev.init
        ? context.sw.onInit(ev.src, context.port.now())
        : context.sw.onIpi(ev.src, context.port.now());
      return { handlerEnd: context.port.now() + d };
    }),
    sendIpi: ({ context }) => {
      const plan = context.plan as Extract<StepPlan, { kind: 'ipi' }>;
      context.port.send(plan.to, 'IPI', plan.init ? { init: true } : {}, plan.sendDelay, Priority.INTERRUPT);
    },
    broadcastSync: ({ context }) => {
      const plan = context.plan as Extract<StepPlan, { kind: 'syncpoint' }>;
      for (const peer of context.peers) {
        if (peer !== context.port.self)
          context.port.send(peer, 'SYNC', { name: plan.name }, 0, Priority.MESSAGE);
      }
    },
    recordSync: assign(({ context, event }) => {
      const name = (event as Extract<PcpuEvent, { type: 'SYNC' }>).name;
      return { syncPlan: context.sw.onSyncpoint(name, context.port.now()) ?? context.syncPlan };
    }),
    takeSyncPlan: assign(({ context }) => ({ plan: context.syncPlan!, syncPlan: undefined })),
    wakeAfterHandler: assign(({ context }) => ({
      plan: { kind: 'run', at: context.handlerEnd } as StepPlan,
    })),
    runAtPlanTime: assign(({ context }) => ({
      plan: { kind: 'run', at: (context.plan as { at: Time }).at } as StepPlan,
    })),
  },
  guards: {
    planIs: ({ context }, params: { kind: StepPlan['kind'] }) => context.plan.kind === params.kind,
    currentStep: ({ context, event }) => (event as { gen: number }).gen === context.gen,
    allAcked: ({ context }) => context.acksPending === 0,
    syncArrived: ({ context }) => context.syncPlan !== undefined,
    flushSkipped: ({ context, event }) =>
      context.sw.flushSkip((event as Extract<PcpuEvent, { type: 'FLUSH_IPI' }>).req) !== undefined,
  },
}).createMachine({
  id: 'pcpu',
  context: ({ input }) => ({
    ...input,
    plan: { kind: 'idle' },
    gen: 0,
    acksPending: 0,
    criticalAck: undefined,
    acksInterrupted: 0,
    shootdown: undefined,
    syncPlan: undefined,
    handlerEnd: 0,
  }),
  initial: 'boot',
  on: {
    FLUSH_IPI: [{ guard: 'flushSkipped', actions: 'skipFlush' }, { actions: 'handleFlushIpi' }],
    IPI: { actions: 'handleIpi' },
    SYNC: { actions: 'recordSync' },
  },
  states: {
    boot: { entry: 'boot', always: 'route' },
    route: {
      always: [
        { guard: { type: 'planIs', params: { kind: 'run' } }, target: 'running' },
        { guard: { type: 'planIs', params: { kind: 'shootdown' } }, target: 'shootdown' },
        {
          guard: { type: 'planIs', params: { kind: 'ipi' } },
          target: 'running',
          actions: ['sendIpi', 'runAtPlanTime'],
        },
        {
          guard: { type: 'planIs', params: { kind: 'syncpoint' } },
          target: 'running',
          actions: ['broadcastSync', 'runAtPlanTime'],
        },
        { guard: { type: 'planIs', params: { kind: 'await' } }, target: 'awaitingSync' },
        { guard: { type: 'planIs', params: { kind: 'halt' } }, target: 'halted' },
        { target: 'idle' },
      ],
    },
    running: {
      entry: 'scheduleStep',
      on: { STEP: { guard: 'currentStep', actions: 'step', target: 'route' } },
    },
    shootdown: {
      description: 'Initiator of a TLB shootdown, spinning until every target has acknowledged.',
      entry: 'sendFlushIpis',
      always: { guard: 'allAcked', actions: 'completeShootdown', target: 'route' },
      on: { FLUSH_ACK: { actions: 'countAck' } },
    },
    awaitingSync: {
      description: 'A script waits for a sync point announced by another CPU.',
      always: { guard: 'syncArrived', actions: 'takeSyncPlan', target: 'route' },
    },
    halted: {
      description: 'HLT: the core sleeps until its wake-up time or an interrupt.',
      entry: assign(({ context }) => ({
        plan: { kind: 'run', at: (context.plan as { until: Time }).until } as StepPlan,
      })),
      always: { target: 'sleeping' },
    },
    sleeping: {
      entry: 'scheduleStep',
      on: {
        STEP: { guard: 'currentStep', actions: 'step', target: 'route' },
        FLUSH_IPI: [
          // Idle in lazy TLB mode (or halted on another address space): the shootdown leaves it
          // out, and it sleeps on.
          { guard: 'flushSkipped', actions: 'skipFlush' },
          { actions: ['handleFlushIpi', 'wakeAfterHandler'], target: 'running' },
        ],
        IPI: { actions: ['handleIpi', 'wakeAfterHandler'], target: 'running' },
      },
    },
    idle: {
      description: 'Nothing left to run: the script is done and no workload is configured.',
    },
  },
});
