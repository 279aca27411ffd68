import type { Time } from '../actors/time.js';

/** Outcome of one RET against the RAP. */
export const RetOutcome = { PREDICTED: 0, MISPREDICTED: 1, UNDERFLOW: 2 } as const;
export type RetOutcome = (typeof RetOutcome)[keyof typeof RetOutcome];

/** Typed statistics of a RAP (gem5's `ReturnAddrStack` keeps the same counters). */
export interface RapStats {
  returns: number;
  predicted: number;
  mispredicted: number;
  underflows: number;
  pushes: number;
  /** Entries overwritten because the stack was full (the oldest is lost, as in a circular RAS). */
  overflows: number;
}

/**
 * The return address predictor of one core: a fixed-size circular stack (gem5's ras.cc is the
 * model). CALL pushes, RET pops; a full stack overwrites its oldest entry; an empty stack makes
 * the RET fall back to the indirect predictor (an underflow, no entry used). Each entry keeps
 * who pushed it, so the checkers can judge every consumption: the context id (interned by the
 * owner), the owner's *candidate epoch* (a counter of RAP-relevant actions on this core, so a
 * consumer can tell cheaply that an entry predates such an action), the push time and whether
 * the entry is a benign stuffing entry. Parallel typed arrays keep the hot path allocation-free.
 *
 * @example
 * const rap = new Rap(64);
 * rap.push(0x1000, ctx, epoch, t, false);
 * const slot = rap.pop(); // index of the entry used, or -1 on underflow
 */
export class Rap {
  readonly addr: Float64Array;
  readonly ctx: Float64Array;
  readonly epoch: Int32Array;
  readonly pushedAt: Float64Array;
  readonly stuff: Uint8Array;
  /** Index of the next free slot. */
  private top = 0;
  /** Valid entries (≤ limit). */
  private valid = 0;
  /**
   * Entries usable in the current mode (≤ capacity): a guest without ALLOW_LARGER_RAP uses 32
   * of a larger RAP (docs/domain.md §2). Pushing at the limit drops the oldest entry.
   */
  private limit: number;
  readonly stats: RapStats = {
    returns: 0,
    predicted: 0,
    mispredicted: 0,
    underflows: 0,
    pushes: 0,
    overflows: 0,
  };

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new Error(`RAP capacity must be ≥ 1, found ${capacity}`);
    this.addr = new Float64Array(capacity);
    this.ctx = new Float64Array(capacity);
    this.epoch = new Int32Array(capacity);
    this.pushedAt = new Float64Array(capacity);
    this.stuff = new Uint8Array(capacity);
    this.limit = capacity;
  }

  /** Entries usable now (see {@link Rap.setLimit}). */
  get size(): number {
    return this.limit;
  }

  /** Sets how many entries are usable; shrinking drops the oldest valid ones. */
  setLimit(n: number): void {
    this.limit = Math.max(1, Math.min(this.capacity, n));
    if (this.valid > this.limit) this.valid = this.limit;
  }

  /** Number of valid entries. */
  get occupancy(): number {
    return this.valid;
  }

  push(addr: number, ctx: number, epoch: number, t: Time, stuff: boolean): void {
    const i = this.top;
    this.addr[i] = addr;
    this.ctx[i] = ctx;
    this.epoch[i] = epoch;
    this.pushedAt[i] = t;
    this.stuff[i] = stuff ? 1 : 0;
    this.top = i + 1 === this.capacity ? 0 : i + 1;
    this.stats.pushes++;
    if (this.valid >= this.limit) this.stats.overflows++;
    else this.valid++;
  }

  /**
   * Pops the top entry for a RET whose architectural target is `actual`. Returns the slot index
   * of the entry used (valid until the next push), or -1 on underflow. Counts the outcome.
   */
  pop(actual: number): number {
    this.stats.returns++;
    if (this.valid === 0) {
      this.stats.underflows++;
      return -1;
    }
    this.top = this.top === 0 ? this.capacity - 1 : this.top - 1;
    this.valid--;
    const i = this.top;
    if (this.addr[i] === actual) this.stats.predicted++;
    else this.stats.mispredicted++;
    return i;
  }

  /** Invalidates every entry (a hardware clear). Returns how many valid entries were dropped. */
  clear(): number {
    const dropped = this.valid;
    this.valid = 0;
    return dropped;
  }

  /** Valid entries from oldest to newest, for tests, the viewer and counterexamples. */
  snapshot(): { addr: number; ctx: number; epoch: number; pushedAt: Time; stuff: boolean }[] {
    const out = [];
    for (let k = this.valid; k >= 1; k--) {
      const i = (this.top - k + this.capacity) % this.capacity;
      out.push({
        addr: this.addr[i]!,
        ctx: this.ctx[i]!,
        epoch: this.epoch[i]!,
        pushedAt: this.pushedAt[i]!,
        stuff: this.stuff[i] === 1,
      });
    }
    return out;
  }
}
