import type { MessagePort } from 'node:worker_threads';
import { type PartitionSetup, PartitionTask, type ToPartition } from './partitionTask.js';

/**
 * Piscina task: hosts one partition for the whole run (a long-lived task holding a
 * MessagePort), answering the coordinator's window requests until `finish`. The task resolves
 * when the partition is finished or has failed, so no thread is left running.
 */
export default function runPartition(input: PartitionSetup & { port: MessagePort }): Promise<void> {
  const { port, ...setup } = input;
  const task = new PartitionTask(setup);
  return new Promise((resolve) => {
    const first = task.start();
    port.postMessage(first);
    if (first.kind === 'error') {
      port.close();
      resolve();
      return;
    }
    // The coordinator closes its end when a run fails elsewhere: end the task, free the thread.
    port.on('close', () => resolve());
    port.on('message', (msg: ToPartition) => {
      const reply = task.handle(msg);
      port.postMessage(reply);
      if (reply.kind === 'finished' || reply.kind === 'error') {
        port.close();
        resolve();
      }
    });
  });
}
