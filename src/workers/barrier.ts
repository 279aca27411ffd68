/**
 * The shared control block of a threaded run: one Int32 per partition counting the windows it
 * was asked to run (written by the coordinator) and one counting the windows it finished
 * (written by the partition). Atomics.wait/notify on these replace event-loop message hops:
 * measured here, a MessagePort round trip costs ≈130 µs (and far more when three threads share
 * two cores), an Atomics barrier ≈30 µs. Payloads still travel as MessagePort messages, read
 * synchronously with `receiveMessageOnPort` once the counter says they are there.
 */
export interface Barrier {
  readonly buffer: SharedArrayBuffer;
  readonly partitions: number;
}

export const CMD = 0;
export const DONE = 1;

export function createBarrier(partitions: number): Barrier {
  return { buffer: new SharedArrayBuffer(4 * 2 * partitions), partitions };
}

/** Index of a partition's counter in the Int32 view. */
export function slot(partition: number, which: typeof CMD | typeof DONE): number {
  return partition * 2 + which;
}

/**
 * Waits until `view[index]` reaches `target`, in slices of `sliceMs`; returns false when
 * `timeoutMs` passes without it (a hung or crashed thread).
 */
export function waitAtLeast(view: Int32Array, index: number, target: number, timeoutMs: number): boolean {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = Atomics.load(view, index);
    if (v >= target) return true;
    const left = deadline - performance.now();
    if (left <= 0) return false;
    Atomics.wait(view, index, v, Math.min(left, 1000));
  }
}
