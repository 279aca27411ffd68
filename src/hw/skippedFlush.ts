import type { Port } from '../actors/hostedActor.js';
import { Priority } from '../actors/priority.js';
import type { CpuSoftware, FlushAck, FlushRequest } from './cpuSoftware.js';

/**
 * A shootdown's initiator leaves this CPU out (should_flush_tlb: idle in lazy TLB mode, or
 * another address space loaded, {@link CpuSoftware.flushSkip}): it neither interrupts it nor
 * waits for it. The software records the change as memory (it flushes before it next uses the
 * address space), and the answer is an acknowledgement no handler produced. The FLUSH_IPI it
 * answers stands for the initiator's read of the target's is_lazy and loaded_mm, decided where
 * the target is. The bare-metal core answers for itself, a vCPU's actor for its guest.
 */
export function answerSkippedFlush(
  sw: Pick<CpuSoftware, 'flushSkip' | 'onSkippedFlush'>,
  port: Port,
  req: FlushRequest,
): void {
  const now = port.now();
  const how = sw.flushSkip(req);
  if (how === undefined) throw new Error(`flush ${req.id} answered as skipped, but the CPU takes it`);
  sw.onSkippedFlush(req, how, now);
  const ack: FlushAck = { id: req.id, arrivedAt: now, handledAt: now, ackedAt: now, deferred: true };
  port.send(req.from, 'FLUSH_ACK', { ack }, 0, Priority.MESSAGE);
}
