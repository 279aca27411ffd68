import { type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import type { Envelope } from '../actors/types.js';
import { CMD, DONE, slot, waitAtLeast } from './barrier.js';
import { type FromPartition, type PartitionSetup, PartitionTask, type ToPartition } from './partitionTask.js';

/** How long a partition waits for its next command before it gives up (the coordinator died). */
const IDLE_LIMIT_MS = 10 * 60_000;

export interface PartitionWorkerInput extends PartitionSetup {
  /** Commands from, and replies to, the coordinator. */
  port: MessagePort;
  barrier: SharedArrayBuffer;
  /** partitionOf[actor index], to route messages straight to the partition that owns the target. */
  partitionOf: number[];
  /** Ports to the other partitions (index = partition; this one's own slot is null). */
  toPeers: (MessagePort | null)[];
  /** Ports from the other partitions. */
  fromPeers: (MessagePort | null)[];
}

/**
 * Piscina task: hosts one partition for the whole run (a long-lived task), answering the
 * coordinator's window requests until `finish`. Cross-partition messages go straight to the
 * partition that owns their target over a per-pair MessagePort, so their serialization runs in
 * the workers, in parallel, not in the coordinator; the coordinator only sees times, counts
 * and observations. The loop is synchronous — Atomics.wait, then `receiveMessageOnPort` — so a
 * window costs no event-loop hop. A peer's batch for window k is posted before that peer
 * reports the end of window k, and window k+1 starts only after every report, so each batch is
 * in its port when it is read.
 */
export default function runPartition(input: PartitionWorkerInput): void {
  const { port, barrier, partitionOf, toPeers, fromPeers, ...setup } = input;
  const ctl = new Int32Array(barrier);
  const me = setup.partition;
  const task = new PartitionTask(setup);
  const reply = (m: FromPartition): void => {
    port.postMessage(m);
    Atomics.add(ctl, slot(me, DONE), 1);
    Atomics.notify(ctl, slot(me, DONE));
  };
  const drainPeers = (): Envelope[] => {
    const inbound: Envelope[] = [];
    for (const p of fromPeers) {
      if (!p) continue;
      for (let m = receiveMessageOnPort(p); m; m = receiveMessageOnPort(p)) {
        for (const e of m.message as Envelope[]) inbound.push(e);
      }
    }
    return inbound;
  };
  const first = task.start();
  reply(first);
  let seen = 0;
  while (first.kind !== 'error') {
    if (!waitAtLeast(ctl, slot(me, CMD), seen + 1, IDLE_LIMIT_MS)) break;
    seen++;
    const got = receiveMessageOnPort(port);
    if (!got) break;
    const msg = got.message as ToPartition | { kind: 'abort' };
    if (msg.kind === 'abort') break;
    if (msg.kind === 'window') msg.inbound.push(...drainPeers());
    const r = task.handle(msg);
    if (r.kind === 'window') {
      const batches: Envelope[][] = toPeers.map(() => []);
      let next = r.result.next;
      for (const e of r.result.outbound) {
        batches[partitionOf[e.dst]!]!.push(e);
        if (e.t < next) next = e.t;
      }
      batches.forEach((b, k) => {
        if (b.length > 0) toPeers[k]!.postMessage(b);
      });
      reply({ kind: 'window', result: { ...r.result, outbound: [], next } });
    } else reply(r);
    if (r.kind === 'finished' || r.kind === 'error') break;
  }
  port.close();
  for (const p of [...toPeers, ...fromPeers]) p?.close();
}
