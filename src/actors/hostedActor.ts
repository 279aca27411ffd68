import type { Stream } from './prng.js';
import type { Time } from './time.js';
import type { ActorIndex, Envelope } from './types.js';

/**
 * What an actor may do, handed to it by the kernel. Every effect on the rest of the simulation
 * goes through here, so time and order are the kernel's alone.
 */
export interface Port {
  readonly self: ActorIndex;
  readonly id: string;
  readonly rng: Stream;
  now(): Time;
  /**
   * Sends `type` to `dst`, arriving at now + `delay` + the link's latency. `delay` is the time
   * the sender spends before the message leaves (an action's cost).
   */
  send(dst: ActorIndex, type: string, data: unknown, delay?: Time, priority?: number): void;
  /** A continuation to self after `delay` (no link latency). */
  schedule(delay: Time, type: string, data: unknown, priority?: number): void;
  /** A fact for the property checkers (they observe, never steer). */
  observe(kind: string, data: unknown): void;
  /** A trace-safe id drawn from this actor's seeded stream. */
  newId(): string;
  /** Index of the actor with this id (ids are fixed by the topology). */
  indexOf(id: string): ActorIndex;
  /** Latency of the link from this actor to `dst`. */
  latencyTo(dst: ActorIndex): Time;
}

/**
 * An actor as the kernel hosts it: an xstate machine (see {@link createMachineActor}) or, for
 * tests, any object that honours the same contract.
 */
export interface HostedActor {
  readonly id: string;
  /** Called once before time starts; may schedule the actor's first events. */
  start(port: Port): void;
  /** Delivers one event at its arrival time. */
  deliver(env: Envelope): void;
  /** A stable string of the actor's state, recorded in the trace after each delivery. */
  stateLabel(): string;
  /** The actor's statistics at the end of the run (plain data, summed by the report). */
  stats(): unknown;
}

/** A factory the composition root registers for each actor id. */
export type ActorFactory = () => HostedActor;
