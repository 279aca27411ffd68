import { createHash } from 'node:crypto';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

type Generator = ReturnType<typeof xoroshiro128plus>;

/**
 * A per-actor random stream. Each actor's stream is derived from (root seed, actor id) only, so
 * its draws do not depend on which partition or thread runs the actor (TigerBeetle's VOPR idea:
 * one root seed, a child seed per subsystem). Integer-only: probabilities are integer ratios.
 *
 * @example
 * const s = Stream.child(1, 'pcpu:3');
 * s.int(0, 9); s.chance(1, 4);
 */
export class Stream {
  private constructor(private readonly gen: Generator) {}

  /** The stream of actor `id` under `rootSeed`. */
  static child(rootSeed: number, id: string): Stream {
    const h = createHash('sha256').update(`rapsim:${rootSeed}:${id}`).digest();
    return new Stream(xoroshiro128plus(h.readInt32LE(0)));
  }

  /** Uniform integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return uniformInt(this.gen, lo, hi);
  }

  /** True with probability num/den (integers). */
  chance(num: number, den: number): boolean {
    if (num <= 0) return false;
    if (num >= den) return true;
    return uniformInt(this.gen, 0, den - 1) < num;
  }

  /** Fills a byte array (used by nanoid's customRandom). */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = uniformInt(this.gen, 0, 255);
    return out;
  }
}
