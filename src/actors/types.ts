import type { Time } from './time.js';

/** Index of an actor in the topology: its position among all actor ids sorted stably. */
export type ActorIndex = number;

/**
 * A message in flight: plain data only, so it can cross worker threads by structured clone.
 * `(t, p, src, seq)` is its key; keys are unique because `seq` counts per source actor.
 */
export interface Envelope {
  /** Arrival time (ps). */
  t: Time;
  /** Priority, see {@link Priority}. */
  p: number;
  /** Source actor index. */
  src: ActorIndex;
  /** Per-source sequence number. */
  seq: number;
  /** Destination actor index. */
  dst: ActorIndex;
  /** Event type, as the destination machine names it. */
  type: string;
  /** Payload: plain data. */
  data: unknown;
}

/**
 * Something an actor reports for the property checkers. Checkers observe; they never steer the
 * model. Observations are ordered globally by the key of the event being handled, then `sub`.
 */
export interface Observation {
  t: Time;
  p: number;
  src: ActorIndex;
  seq: number;
  /** The observing actor. */
  actor: ActorIndex;
  /** Position among the observations made while handling one event. */
  sub: number;
  kind: string;
  data: unknown;
}

/** A delivered event as kept in a full trace (for trace export and the viewer). */
export interface TraceEntry {
  t: Time;
  p: number;
  src: ActorIndex;
  seq: number;
  dst: ActorIndex;
  type: string;
  data: unknown;
  /** Destination state after delivery (a stable string form of the xstate value). */
  state: string;
}

/** Compares two keys `(t, p, src, seq)`; the basis of every ordering in the kernel. */
export function compareKeys(
  a: { t: Time; p: number; src: ActorIndex; seq: number },
  b: { t: Time; p: number; src: ActorIndex; seq: number },
): number {
  return a.t - b.t || a.p - b.p || a.src - b.src || a.seq - b.seq;
}

/** Orders observations globally: by the key of the handled event, then observer, then `sub`. */
export function compareObservations(a: Observation, b: Observation): number {
  return compareKeys(a, b) || a.actor - b.actor || a.sub - b.sub;
}
