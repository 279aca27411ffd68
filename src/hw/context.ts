/**
 * Who pushed a RAP entry, packed into one exact integer (< 2^35, held in a double):
 * world (host 0 / guest 1), nesting level (0 host, 1 L1 guest, 2 L2), VM index, "view" and
 * process. The *view* is the CPU as the pushing context sees it: the pCPU for the host, the vCPU
 * for a guest. Promises are judged per view: a context believes in clears of its own CPU.
 */
export interface RapContext {
  world: 'host' | 'guest';
  level: number;
  vm: number;
  view: number;
  process: number;
}

/** The process number used for a kernel or hypervisor running outside any process. */
export const KERNEL_PROCESS = 4095;
/** The process number of stuffing entries (benign by construction). */
export const STUFF_PROCESS = 4094;

export function encodeContext(c: RapContext): number {
  const w = c.world === 'host' ? 0 : 1;
  return (((w * 4 + c.level) * 256 + c.vm) * 4096 + c.view) * 4096 + c.process;
}

/** The host kernel's context on a core (KVM's own call chain, the host scheduler). */
export function hostKernelContext(core: number): number {
  return encodeContext({ world: 'host', level: 0, vm: 0, view: core, process: KERNEL_PROCESS });
}

export function decodeContext(x: number): RapContext {
  const process = x % 4096;
  let r = (x - process) / 4096;
  const view = r % 4096;
  r = (r - view) / 4096;
  const vm = r % 256;
  r = (r - vm) / 256;
  const level = r % 4;
  const w = (r - level) / 4;
  return { world: w === 0 ? 'host' : 'guest', level, vm, view, process };
}

/** Same CPU as its contexts see it (world, level, VM and view equal)? */
export function sameView(a: number, b: number): boolean {
  return Math.floor(a / 4096) === Math.floor(b / 4096);
}
