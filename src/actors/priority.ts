/**
 * Named event priorities. At equal simulated time the smaller priority is delivered first; the
 * rest of the key (source actor index, source sequence number) breaks the remaining ties, so
 * the order is total. Each value exists for a reason stated beside it (gem5's eventq.hh style).
 */
export const Priority = {
  /**
   * Interrupts and IPIs. A core samples pending interrupts at an instruction boundary, so an
   * interrupt arriving at the same picosecond as the core's own continuation is taken first.
   */
  INTERRUPT: 10,
  /** Protocol messages between actors (acknowledgements, sync points, memory-visibility updates). */
  MESSAGE: 20,
  /** An actor's own continuations: workload steps, script operations, xstate delays. */
  TIMER: 30,
  /**
   * World switches (VMRUN, #VMEXIT) between a core's two co-located actors, KVM and its vCPU.
   * They may be sent with no delay from any handler, so they sort after the instant's own
   * continuations (a message may never arrive "before" the event that sends it).
   */
  WORLD_SWITCH: 35,
  /** Bookkeeping that must observe everything else at the same instant (end-of-run sampling). */
  LATE: 90,
} as const;

export type PriorityValue = (typeof Priority)[keyof typeof Priority];
