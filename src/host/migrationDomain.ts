import type { Time } from '../actors/time.js';
import type { CoreHw } from '../hw/core.js';
import { type DyView, dyViewOf } from './directedYield.js';
import type { HostScheduler, VcpuThread } from './hostScheduler.js';

/** One pCPU of a migration domain: its actor, hardware and share of the host scheduler. */
export interface DomainCpu {
  /** Core number. */
  core: number;
  /** Actor index of the pCPU. */
  actor: number;
  hw: CoreHw;
  sched: HostScheduler;
  /** A reschedule IPI is on its way to it: another pCPU already chose it to pull work. */
  claimed: boolean;
}

/** What an idle pCPU's balancing pass found. */
export type Pull =
  | { kind: 'pulled'; thread: VcpuThread; from: DomainCpu }
  /** Only cache-hot threads wait; the earliest turns cold at `at`. */
  | { kind: 'hot'; at: Time }
  | { kind: 'none' };

/**
 * A host scheduling domain whose pCPUs share vCPU threads (docs/domain.md §3; Linux's MC domain
 * of one last-level cache, or a socket): idle pCPUs pull waiting threads from the busiest run
 * queue, as newidle_balance → load_balance → detach_tasks does, and a pCPU that queues a
 * thread while another pCPU of the domain idles sends that one a reschedule IPI so it pulls
 * (select_idle_sibling at wake-up, the nohz idle-balance kick otherwise).
 *
 * The pCPUs of a domain, and the vCPUs homed on them, always live in one partition (the
 * composition root cuts partitions along domains), so one domain's pCPUs read each other's run
 * queues at the same simulated time, and moving a vCPU never crosses threads. That is also why
 * the domain — not the whole machine — is the unit of migration: results must not depend on the
 * worker count.
 */
export class MigrationDomain {
  private readonly cpus: DomainCpu[] = [];
  private readonly byActor = new Map<number, DomainCpu>();
  /** vCPU actor → pCPU actor that runs it now. */
  private readonly hostNow = new Map<number, number>();
  /**
   * kvm->last_boosted_vcpu as this domain's pCPUs see it (VM → vCPU index): they share it exactly,
   * as they share their threads' states (same partition, same simulated time).
   */
  readonly lastBoosted = new Map<number, number>();

  constructor(
    /** vCPU actors homed on this domain's pCPUs (L2s included): they never leave it. */
    readonly members: ReadonlySet<number>,
    /** How many pCPUs will register (balancing waits until all have). */
    private readonly size: number,
    /** sysctl_sched_migration_cost. */
    readonly migrationCost: Time,
    /** Tells the kernel's link table where an actor is now (a vCPU is 0 ps from its pCPU). */
    private readonly moveActor: (actor: number, core: number) => void,
  ) {}

  /** Every vCPU thread of the domain as directed yield sees it, with the pCPU that holds it. */
  dyViews(): DyView[] {
    return this.cpus.flatMap((c) => c.sched.threads.map((t) => dyViewOf(t, c.actor)));
  }

  /** A pCPU joins the domain, with the vCPU threads placed on it. Called in core order. */
  register(cpu: Omit<DomainCpu, 'claimed'>): void {
    const c: DomainCpu = { ...cpu, claimed: false };
    this.cpus.push(c);
    this.byActor.set(c.actor, c);
    for (const t of c.sched.threads) {
      this.hostNow.set(t.actor, c.actor);
      for (const n of t.kvm.p.nested ?? []) this.hostNow.set(n.l2Actor, c.actor);
    }
  }

  /** The pCPU actor that runs a member vCPU now. */
  hostOf(vcpuActor: number): number {
    const h = this.hostNow.get(vcpuActor);
    if (h === undefined) throw new Error(`vCPU actor ${vcpuActor} is not in this migration domain`);
    return h;
  }

  /** The hardware of one of the domain's pCPUs. */
  coreOf(pcpuActor: number): CoreHw {
    return this.cpu(pcpuActor).hw;
  }

  /**
   * A pCPU queued a thread behind a running one: the first idle, unclaimed pCPU of the domain
   * (in core order) is claimed and returned, for the caller to send it a reschedule IPI.
   */
  claimIdle(from: number, now: Time): DomainCpu | undefined {
    if (!this.complete) return undefined;
    for (const c of this.cpus) {
      if (c.actor === from || c.claimed || !c.sched.idle(now)) continue;
      if (!this.hasCandidate()) return undefined;
      c.claimed = true;
      return c;
    }
    return undefined;
  }

  /** The reschedule IPI arrived: the pCPU may be chosen again. */
  unclaim(pcpuActor: number): void {
    this.cpu(pcpuActor).claimed = false;
  }

  /**
   * newidle_balance for an idle pCPU: the busiest run queue of the domain (most waiting
   * migratable threads, ties to the lower core) gives up its longest-waiting thread that is not
   * cache-hot (can_migrate_task: it left a pCPU at least `migrationCost` ago). The thread moves
   * with its KVM state (`KvmVcpu.migrate`); the guest side follows at its next VMRUN.
   */
  pull(into: number, now: Time): Pull {
    if (!this.complete) return { kind: 'none' };
    const dst = this.cpu(into);
    let hotUntil = Number.POSITIVE_INFINITY;
    const sources = this.cpus
      .filter((c) => c !== dst)
      .map((c) => ({ c, queued: c.sched.queuedMigratable() }))
      .filter((x) => x.queued.length > 0)
      .sort((a, b) => b.queued.length - a.queued.length || a.c.core - b.c.core);
    for (const { c, queued } of sources) {
      for (const t of queued) {
        const coldAt = t.stoppedAt + this.migrationCost;
        if (t.stoppedAt > 0 && coldAt > now) {
          hotUntil = Math.min(hotUntil, coldAt);
          continue;
        }
        c.sched.detach(t, now);
        dst.sched.attach(t, now);
        t.kvm.migrate(dst.hw);
        this.hostNow.set(t.actor, dst.actor);
        this.moveActor(t.actor, dst.core);
        return { kind: 'pulled', thread: t, from: c };
      }
    }
    return Number.isFinite(hotUntil) ? { kind: 'hot', at: hotUntil } : { kind: 'none' };
  }

  /** Every pCPU has registered (they do as their actors start, in core order, at time 0). */
  private get complete(): boolean {
    return this.cpus.length === this.size;
  }

  private hasCandidate(): boolean {
    return this.cpus.some((c) => c.sched.queuedMigratable().length > 0);
  }

  private cpu(actor: number): DomainCpu {
    const c = this.byActor.get(actor);
    if (!c) throw new Error(`pCPU actor ${actor} is not in this migration domain`);
    return c;
  }
}
