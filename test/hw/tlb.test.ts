import { describe, expect, it } from 'vitest';
import { Tlb } from '../../src/hw/tlb.js';

describe('Tlb', () => {
  it('returns the fill version on a hit and -1 on a miss, counting both', () => {
    const tlb = new Tlb();
    expect(tlb.lookup(1, 5)).toBe(-1);
    tlb.fill(1, 5, 1234);
    expect(tlb.lookup(1, 5)).toBe(1234);
    expect(tlb.lookup(1, 5)).toBe(1234);
    expect(tlb.stats).toMatchObject({ hits: 2, misses: 1 });
    expect(tlb.size).toBe(1);
  });

  it('keys translations by (PCID, page): same page in another PCID is a different entry', () => {
    const tlb = new Tlb();
    tlb.fill(1, 5, 10);
    tlb.fill(2, 5, 20);
    tlb.fill(1, 6, 30);
    expect(tlb.lookup(1, 5)).toBe(10);
    expect(tlb.lookup(2, 5)).toBe(20);
    expect(tlb.lookup(1, 6)).toBe(30);
    expect(tlb.lookup(3, 5)).toBe(-1);
    // Page 0 of PCID 2 must not alias the highest page of PCID 1.
    tlb.fill(1, 0xfffff, 40);
    expect(tlb.lookup(2, 0)).toBe(-1);
  });

  it('a refill replaces the version', () => {
    const tlb = new Tlb();
    tlb.fill(1, 5, 10);
    tlb.fill(1, 5, 99);
    expect(tlb.lookup(1, 5)).toBe(99);
    expect(tlb.size).toBe(1);
  });

  it('flushPage drops one page of one PCID only', () => {
    const tlb = new Tlb();
    tlb.fill(1, 5, 10);
    tlb.fill(1, 6, 11);
    tlb.fill(2, 5, 12);
    tlb.flushPage(1, 5);
    expect(tlb.lookup(1, 5)).toBe(-1);
    expect(tlb.lookup(1, 6)).toBe(11);
    expect(tlb.lookup(2, 5)).toBe(12);
    expect(tlb.stats.flushes).toBe(1);
  });

  it('flushPcid drops every page of that PCID and nothing of other PCIDs', () => {
    const tlb = new Tlb();
    for (const pcid of [0, 1, 2, 3])
      for (const page of [0, 7, 0xfffff]) tlb.fill(pcid, page, pcid * 100 + page);
    tlb.flushPcid(2);
    for (const page of [0, 7, 0xfffff]) {
      expect(tlb.lookup(2, page)).toBe(-1);
      for (const other of [0, 1, 3]) expect(tlb.lookup(other, page)).toBe(other * 100 + page);
    }
    expect(tlb.size).toBe(9);
    expect(tlb.stats.flushes).toBe(1);
  });

  it('flushAll drops everything', () => {
    const tlb = new Tlb();
    tlb.fill(1, 5, 10);
    tlb.fill(2, 6, 11);
    tlb.flushAll();
    expect(tlb.size).toBe(0);
    expect(tlb.lookup(1, 5)).toBe(-1);
    expect(tlb.lookup(2, 6)).toBe(-1);
    expect(tlb.stats.flushes).toBe(1);
  });
});
