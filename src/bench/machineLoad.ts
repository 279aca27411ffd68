import { readFileSync } from 'node:fs';

/**
 * The bench runs on shared machines (this one: a 2-core VM where other sessions run test suites),
 * and a figure taken while another process used a core is not this code's figure. Linux tells
 * how busy the whole machine was (`/proc/stat`) and how much of that was this process
 * (`/proc/self/stat`, all its threads): the rest is everyone else. Elsewhere nothing is known,
 * and every sample counts as clean.
 */

interface Ticks {
  /** Busy clock ticks of every CPU (user, nice, system, irq, softirq, steal). */
  busy: number;
  /** All clock ticks of every CPU. */
  total: number;
  /** Ticks this process ran (user and system, every thread). */
  mine: number;
}

function ticks(): Ticks | undefined {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9);
    const f = cpu.map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    // After the command name (which may hold spaces), utime and stime are fields 12 and 13.
    const self = readFileSync('/proc/self/stat', 'utf8');
    const rest = self.slice(self.lastIndexOf(')') + 2).split(' ');
    return { busy: total - f[3]! - f[4]!, total, mine: Number(rest[11]) + Number(rest[12]) };
  } catch {
    return undefined;
  }
}

/** Share of the machine's CPU time other processes used between two readings (0 when unknown). */
function othersShare(a: Ticks | undefined, b: Ticks | undefined): number {
  if (!a || !b || b.total <= a.total) return 0;
  return Math.max(0, b.busy - a.busy - (b.mine - a.mine)) / (b.total - a.total);
}

/** Above this share of the machine used by other processes a sample is retaken. */
const NOISY = 0.1;

/** Samples retaken so far because other processes were busy, and samples kept although they were. */
export const noise = { retaken: 0, keptNoisy: 0 };

/** Waits (at most `maxMs`) until other processes leave the machine alone for half a second. */
async function quiet(maxMs = 60_000): Promise<void> {
  const until = performance.now() + maxMs;
  while (performance.now() < until) {
    const a = ticks();
    if (!a) return;
    await new Promise((r) => setTimeout(r, 500));
    if (othersShare(a, ticks()) < NOISY / 2) return;
  }
}

/**
 * One timed sample of `fn`, taken when the machine is quiet and retaken (up to three times) when
 * other processes used more than a tenth of it meanwhile.
 *
 * @example
 * const { ms } = await cleanSample(() => runSimulation(s, { workers: 1 }));
 */
export async function cleanSample<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  for (let attempt = 0; ; attempt++) {
    await quiet();
    const a = ticks();
    const t0 = performance.now();
    const value = await fn();
    const ms = performance.now() - t0;
    const others = othersShare(a, ticks());
    if (others <= NOISY) return { value, ms };
    if (attempt === 3) {
      noise.keptNoisy++;
      return { value, ms };
    }
    noise.retaken++;
  }
}
