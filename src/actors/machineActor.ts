import { type Actor, type AnyActorLogic, createActor, type InputFrom } from 'xstate';
import type { HostedActor, Port } from './hostedActor.js';
import { Priority } from './priority.js';
import type { Envelope } from './types.js';

/** The event type the kernel uses for xstate's own delays (`after`). */
export const XSTATE_DELAY = 'xstate.delay';

/**
 * Hosts an xstate v5 machine on the kernel. Events are delivered with `actor.send` at their
 * simulated arrival time; the machine's delays (`after`) run on the kernel's clock through a
 * custom xstate `clock` whose timeouts are kernel events with explicit ids (their unit is the
 * kernel's picosecond). A machine error stops the run loudly with the actor, event and time.
 *
 * @example
 * createMachineActor('pcpu:0', pcpuMachine, (port) => ({ port, hw }), (a) => a.getSnapshot().context.hw.stats())
 */
export function createMachineActor<TLogic extends AnyActorLogic>(
  id: string,
  logic: TLogic,
  makeInput: (port: Port) => InputFrom<TLogic>,
  stats: (actor: Actor<TLogic>) => unknown,
): HostedActor {
  let actor: Actor<TLogic> | undefined;
  let port: Port | undefined;
  let label = '';
  let lastValue: unknown;
  let timerId = 0;
  const timers = new Map<number, () => void>();

  const refreshLabel = (): void => {
    const snap = actor!.getSnapshot() as { value?: unknown; status: string; error?: unknown };
    if (snap.status === 'error') {
      const e = snap.error;
      throw e instanceof Error ? e : new Error(String(e));
    }
    if (snap.value !== lastValue) {
      lastValue = snap.value;
      label = typeof snap.value === 'string' ? snap.value : JSON.stringify(snap.value);
    }
  };

  return {
    id,
    start(p) {
      port = p;
      const clock = {
        setTimeout(fn: (...args: unknown[]) => void, timeout: number) {
          const tid = ++timerId;
          timers.set(tid, fn as () => void);
          p.schedule(timeout, XSTATE_DELAY, { timer: tid }, Priority.TIMER);
          return tid;
        },
        clearTimeout(tid: unknown) {
          timers.delete(tid as number);
        },
      };
      actor = createActor(logic, { input: makeInput(p), clock } as never) as Actor<TLogic>;
      // Without a subscriber xstate rethrows machine errors on a real timer; we check the
      // snapshot after every send instead and throw synchronously, inside the kernel's context.
      actor.subscribe({ error: () => undefined });
      actor.start();
      refreshLabel();
    },
    deliver(env: Envelope) {
      if (env.type === XSTATE_DELAY) {
        const tid = (env.data as { timer: number }).timer;
        const fn = timers.get(tid);
        timers.delete(tid);
        fn?.();
      } else {
        actor!.send({ type: env.type, ...(env.data as object), src: env.src } as never);
      }
      refreshLabel();
      void port;
    },
    stateLabel: () => label,
    stats: () => stats(actor!),
  };
}
