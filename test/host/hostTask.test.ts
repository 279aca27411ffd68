import { describe, expect, it } from 'vitest';
import { HostScheduler } from '../../src/host/hostScheduler.js';
import { HostTaskThread } from '../../src/host/hostTask.js';
import { hostKernelContext } from '../../src/hw/context.js';
import { ObsKind, type RapUseObs } from '../../src/hw/observations.js';
import { fakePort, makeCore, makeKvm } from './kvmHelpers.js';

/**
 * HostTaskThread (src/host/hostTask.ts) and its place in the HostScheduler's run queue: a host
 * kernel thread bound to a pCPU, which sleeps inside schedule() and resumes by returning out of
 * it through the host RAP, and which competes with vCPU threads in the same EEVDF run queue.
 */

const US = 1_000_000;
const spec = { name: 'vhost', every: 1000 * US, run: 300 * US, callDepth: 4 };
const SLICE = 2_800 * US;

describe('HostTaskThread', () => {
  it('returns through its own frames when nothing ran in between, and reports anything else it uses', () => {
    const core = makeCore('legacy');
    const port = fakePort();
    const task = new HostTaskThread(spec, core, 0);
    task.wake(10 * US);
    expect(task.start(50 * US, SLICE, port)).toBe(350 * US);
    // Nothing on the RAP yet: its RETs underflow, nothing is reported.
    expect(port.of(ObsKind.RAP_USE)).toEqual([]);
    expect(task.sleep(350 * US)).toBe(1010 * US);
    task.wake(1010 * US);
    task.start(1010 * US, SLICE, port);
    expect(port.of(ObsKind.RAP_USE), 'its own frames, its own context').toEqual([]);
    task.sleep(1310 * US);
    // Something else runs on this (legacy, untagged) RAP and leaves 2 entries above its frames.
    const other = 12345;
    core.rapHost.push(0x1000, other, core.candidateEpoch, 1400 * US, false);
    core.rapHost.push(0x1001, other, core.candidateEpoch, 1400 * US, false);
    task.wake(2010 * US);
    task.start(2010 * US, SLICE, port);
    const uses = port.of<RapUseObs>(ObsKind.RAP_USE);
    expect(uses).toHaveLength(2);
    expect(
      uses.every((u) => u.producer === other && u.consumer === hostKernelContext(0) && !u.predicted),
    ).toBe(true);
    expect(task.stats).toMatchObject({ bursts: 2, runPs: 600 * US, waitPs: 40 * US, maxWaitPs: 40 * US });
  });

  it('runs a burst longer than a slice a slice at a time, resuming where it was preempted', () => {
    const core = makeCore('eraps-amd');
    const port = fakePort();
    const task = new HostTaskThread({ ...spec, every: 10_000 * US, run: 5_000 * US }, core, 0);
    task.wake(0);
    expect(task.start(0, SLICE, port)).toBe(SLICE);
    expect(task.remainingAt(SLICE)).toBe(2_200 * US);
    // Others wait at the slice's end: preempted, it queues with 2.2 ms left.
    task.preempt(SLICE);
    expect(task.state).toBe('runnable');
    expect(task.start(4_000 * US, SLICE, port), 'the rest of the burst').toBe(6_200 * US);
    expect(task.remainingAt(6_200 * US)).toBe(0);
    expect(task.sleep(6_200 * US)).toBe(10_000 * US);
    expect(task.stats).toMatchObject({ bursts: 1, runPs: 5_000 * US, waitPs: 4_000 * US - SLICE });
    // Nobody waits at a slice's end: it runs on without a switch.
    task.wake(10_000 * US);
    task.start(10_000 * US, SLICE, port);
    expect(task.runOn(10_000 * US + SLICE, SLICE)).toBe(15_000 * US);
  });

  it('wakes at once when its burst ended after its next period began', () => {
    const task = new HostTaskThread(spec, makeCore('eraps-amd'), 0);
    task.wake(0);
    task.start(2000 * US, SLICE, fakePort());
    expect(task.sleep(2300 * US)).toBe(2300 * US + 1);
    expect(task.stats.maxWaitPs).toBe(2000 * US);
  });
});

describe('HostScheduler with a host task', () => {
  function fixture() {
    const { kvm, core, port } = makeKvm();
    const task = new HostTaskThread(spec, core, 0);
    const sched = new HostScheduler({
      port,
      core,
      threads: [{ kvm, actor: 1, pvTlbFlush: true, vmName: 'vm0', migratable: false }],
      tasks: [task],
      slice: 2_800 * US,
      haltPoll: 200 * US,
      ibpbOnVcpuSwitch: true,
      until: 100_000 * US,
    });
    return { sched, task, core };
  }

  it('a vCPU that halted while owed time preempts the running task when it wakes (EEVDF), an even one does not', () => {
    const { kvm, core, port } = makeKvm();
    const task = new HostTaskThread({ ...spec, every: 10_000 * US, run: 5_000 * US }, core, 0);
    const sched = new HostScheduler({
      port,
      core,
      threads: [{ kvm, actor: 1, pvTlbFlush: true, vmName: 'vm0', migratable: false }],
      tasks: [task],
      slice: SLICE,
      haltPoll: 200 * US,
      ibpbOnVcpuSwitch: true,
      until: 100_000 * US,
    });
    const vcpu = sched.threads[0]!;
    expect(sched.pickNext(0)).toMatchObject({ thread: vcpu });
    sched.wakeTask(task, 0);
    expect(sched.wakePreemptsTask).toBe(false);
    sched.preemptCurrent(10 * US);
    expect(sched.pickNext(10 * US)).toMatchObject({ task });
    sched.startTask(10 * US, port);
    sched.preemptTask(2_000 * US);
    expect(sched.pickNext(2_000 * US)).toMatchObject({ thread: vcpu });
    // It halts having run 20 µs against the task's 1.99 ms: owed ≈ 0.99 ms.
    sched.blockCurrent(2_010 * US);
    expect(vcpu.vlag).toBe(Math.floor((1_990 * US + 20 * US) / 2) - 20 * US);
    expect(sched.pickNext(2_010 * US)).toMatchObject({ task });
    sched.startTask(2_010 * US, port);
    sched.wake(vcpu, 2_500 * US, true);
    expect(sched.wakePreemptsTask).toBe(true);
    sched.preemptTask(2_500 * US);
    expect(sched.wakePreemptsTask).toBe(false);
    expect(sched.pickNext(2_500 * US)).toMatchObject({ thread: vcpu });
  });

  it('queues the task behind the vCPU, marks the vCPU preempted for it, and returns without IBPB', () => {
    const { sched, task, core } = fixture();
    const first = sched.pickNext(1);
    expect(first && 'thread' in first).toBe(true);
    sched.wakeTask(task, 100 * US);
    expect(sched.contended).toBe(true);
    // Its slice runs out: the vCPU goes to the tail, preempted; the task gets the pCPU.
    sched.preemptCurrent(2_800 * US);
    const next = sched.pickNext(2_800 * US);
    expect(next && 'task' in next && next.task).toBe(task);
    expect(next?.cost).toBe(core.timing.contextSwitch);
    expect(sched.idle(2_900 * US)).toBe(false);
    expect(sched.threads[0]!.preempted).toBe(true);
    expect(sched.taskPhases().map((p) => p.at < spec.every)).toEqual([true]);
    const end = task.start(2_800 * US, SLICE, fakePort());
    const { wakeAt } = sched.sleepTask(end);
    expect(wakeAt).toBe(end + 1);
    // Back to the same vCPU: a context switch, no vCPU switch, so no IBPB.
    const back = sched.pickNext(end);
    expect(back && 'thread' in back).toBe(true);
    expect(back?.cost).toBe(core.timing.contextSwitch);
    expect(sched.stats.vcpuSwitches).toBe(0);
    expect(sched.stats.ibpbs).toBe(0);
    sched.finish(end + 10);
    expect(sched.stats.tasks).toEqual([task.stats]);
  });

  it('renews a lone thread’s slice: a task that starts waiting meets the current slice’s end', () => {
    const { sched } = fixture();
    const first = sched.pickNext(0);
    const t = first && 'thread' in first ? first.thread : undefined;
    expect(t).toBeDefined();
    // Its request ends at its virtual deadline; a thread alone renews it a slice at a time.
    const end = sched.sliceEnd(t!, 0);
    expect(end).toBeGreaterThan(0);
    expect(end).toBeLessThanOrEqual(2_800 * US);
    expect(sched.sliceEnd(t!, 100 * US)).toBe(end);
    expect(sched.sliceEnd(t!, end + 4_200 * US)).toBe(end + 5_600 * US);
  });

  it('a task that runs while a vCPU halt-polls ends the poll: the vCPU pays a context switch to come back', () => {
    const { sched, task, core } = fixture();
    const first = sched.pickNext(1);
    const t = first && 'thread' in first ? first.thread : undefined;
    sched.blockCurrent(100 * US);
    expect(sched.polling(110 * US)).toBe(true);
    sched.wakeTask(task, 110 * US);
    const next = sched.pickNext(110 * US);
    expect(next && 'task' in next).toBe(true);
    task.start(110 * US, SLICE, fakePort());
    // A short burst (the scheduler takes the task's word for its length): done well inside what
    // would have been the vCPU's poll window.
    sched.sleepTask(130 * US);
    expect(sched.polling(135 * US), 'the pCPU idles: nothing polls any more').toBe(false);
    sched.wake(t!, 140 * US, true);
    const back = sched.pickNext(140 * US);
    expect(back && 'thread' in back && back.thread).toBe(t);
    expect(back?.cost).toBe(core.timing.contextSwitch);
  });
});
