/** Typed statistics of a TLB. */
export interface TlbStats {
  hits: number;
  misses: number;
  /** Hits on an entry older than the page-table version this core has seen. */
  staleHits: number;
  flushes: number;
}

/**
 * A per-core, PCID-tagged TLB, reduced to what rapsim needs: which (PCID, page) translations are
 * cached and which page-table *version* each was filled from. A translation is "shot down" when
 * the mapping's version moves on; using an entry with an older version is a stale use, which the
 * `tlb-stale` checker judges against the shootdown protocol's completion.
 *
 * @example
 * const tlb = new Tlb();
 * tlb.fill(pcid, page, version); tlb.lookup(pcid, page) // version, or -1 on a miss
 */
export class Tlb {
  private readonly entries = new Map<number, number>();
  readonly stats: TlbStats = { hits: 0, misses: 0, staleHits: 0, flushes: 0 };

  /**
   * A translation's tag: the address space `space` (ASID × 4096 + PCID; the host is ASID 0) and
   * the page.
   */
  private static key(space: number, page: number): number {
    return space * 0x100000 + page;
  }

  /** The version the cached translation was filled from, or -1 on a miss. */
  lookup(pcid: number, page: number): number {
    const v = this.entries.get(Tlb.key(pcid, page));
    if (v === undefined) {
      this.stats.misses++;
      return -1;
    }
    this.stats.hits++;
    return v;
  }

  fill(pcid: number, page: number, version: number): void {
    this.entries.set(Tlb.key(pcid, page), version);
  }

  /** INVLPG / single-address INVPCID: one page of one PCID. */
  flushPage(pcid: number, page: number): void {
    this.stats.flushes++;
    this.entries.delete(Tlb.key(pcid, page));
  }

  /** Single-context flush (CR3 write without NOFLUSH, INVPCID type 1). */
  flushPcid(pcid: number): void {
    this.stats.flushes++;
    for (const k of [...this.entries.keys()]) if (Math.floor(k / 0x100000) === pcid) this.entries.delete(k);
  }

  /** Every translation of one ASID (TLB_CONTROL = 3, or a fresh ASID). */
  flushAsid(asid: number): void {
    this.stats.flushes++;
    for (const k of [...this.entries.keys()])
      if (Math.floor(k / 0x100000 / 4096) === asid) this.entries.delete(k);
  }

  /** Every translation (INVPCID 2/3, CR4.PGE toggle, TLB_CONTROL flush-all). */
  flushAll(): void {
    this.stats.flushes++;
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
