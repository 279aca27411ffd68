import { compareKeys, type Envelope } from './types.js';

/**
 * A binary min-heap of envelopes ordered by key. The kernel's only queue: small enough to read
 * in one sitting (SimPy's `Environment` is the model), and about 4M push+pop per second here.
 *
 * @example
 * const q = new EventQueue();
 * q.push(env); const next = q.pop();
 */
export class EventQueue {
  private readonly heap: Envelope[] = [];

  get size(): number {
    return this.heap.length;
  }

  /** Time of the earliest event, or Infinity when empty. */
  peekTime(): number {
    return this.heap.length > 0 ? this.heap[0]!.t : Number.POSITIVE_INFINITY;
  }

  peek(): Envelope | undefined {
    return this.heap[0];
  }

  push(e: Envelope): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (compareKeys(h[parent]!, e) <= 0) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = e;
  }

  pop(): Envelope | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length === 0 || last === undefined) return top;
    let i = 0;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && compareKeys(h[r]!, h[l]!) < 0 ? r : l;
      if (compareKeys(last, h[c]!) <= 0) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
    return top;
  }
}
