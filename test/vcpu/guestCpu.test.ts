import { describe, expect, it } from 'vitest';
import { KvmVcpu } from '../../src/host/kvmVcpu.js';
import type { Instruction } from '../../src/hw/instruction.js';
import { TLB_CONTROL } from '../../src/hw/vmcb.js';
import { GuestCpu } from '../../src/vcpu/guestCpu.js';
import { FULL_CPUID, makeCore } from '../host/kvmHelpers.js';

/**
 * A vCPU as the guest OS sees it: intercepted instructions leave the guest (#VMEXIT, the hardware
 * never sees them), the others run natively in guest mode (docs/domain.md §3), and anything that
 * reaches the emulator always exits as an NPF.
 */

const IDENTITY = { world: 'guest' as const, level: 1, vm: 0, view: 0 };

function guestCpu(npt: boolean, invpcid = true) {
  const core = makeCore('eraps-amd');
  core.vmrun({
    name: 'vmcb01',
    asid: 1,
    tlbControl: TLB_CONTROL.DO_NOTHING,
    erapCtl: { allowLargerRap: true, clearRap: false },
    intercepts: KvmVcpu.intercepts(npt, { ...FULL_CPUID, invpcid }),
    npt,
  });
  for (let i = 0; i < 5; i++) core.rap.push(0x100 + i, 1, core.candidateEpoch, i, false);
  return { core, cpu: new GuestCpu(core, IDENTITY, KvmVcpu.intercepts(npt, { ...FULL_CPUID, invpcid })) };
}

const MOV_CR3: Instruction = { kind: 'mov-cr3', pcid: 2, noflush: false };

describe('GuestCpu', () => {
  it('NPT off: MOV CR3 exits (cr3-write) and the hardware does not clear the RAP', () => {
    const { core, cpu } = guestCpu(false);
    const r = cpu.exec(MOV_CR3);
    expect(r.exit).toBe('cr3-write');
    expect(r.effect).toBeUndefined();
    expect(core.rapGuest.occupancy).toBe(5);
  });

  it('NPT on: MOV CR3 runs natively in guest mode and the hardware clears the RAP (eraps-amd)', () => {
    const { core, cpu } = guestCpu(true);
    const r = cpu.exec(MOV_CR3);
    expect(r.exit).toBeUndefined();
    expect(r.effect).toMatchObject({ action: 'mov-cr3', promised: true, cleared: true });
    expect(core.rapGuest.occupancy).toBe(0);
    expect(core.pcid).toBe(2);
  });

  it('CR4 writes always exit', () => {
    for (const npt of [true, false]) {
      const { core, cpu } = guestCpu(npt);
      expect(cpu.exec({ kind: 'cr4', bit: 'pge', op: 'toggle' }).exit).toBe('cr4-write');
      expect(core.rapGuest.occupancy).toBe(5);
    }
  });

  it('INVPCID exits with NPT off or without INVPCID in the guest CPUID, else runs natively', () => {
    const insn: Instruction = { kind: 'invpcid', type: 2, pcid: 0, page: 0 };
    expect(guestCpu(false).cpu.exec(insn).exit).toBe('invpcid');
    expect(guestCpu(true, false).cpu.exec(insn).exit).toBe('invpcid');
    const native = guestCpu(true, true);
    expect(native.cpu.exec(insn).exit).toBeUndefined();
    expect(native.core.rapGuest.occupancy).toBe(0);
  });

  it('INVLPG exits only with NPT off', () => {
    const insn: Instruction = { kind: 'invlpg', pcid: 1, page: 3 };
    expect(guestCpu(false).cpu.exec(insn).exit).toBe('invlpg');
    expect(guestCpu(true).cpu.exec(insn).exit).toBeUndefined();
  });

  it('WRMSR exits except to the passed-through PRED_CMD and SPEC_CTRL', () => {
    const { cpu } = guestCpu(true);
    expect(cpu.exec({ kind: 'wrmsr', msr: 'SYSCFG' }).exit).toBe('msr');
    expect(cpu.exec({ kind: 'wrmsr', msr: 'MTRR' }).exit).toBe('msr');
    expect(cpu.exec({ kind: 'wrmsr', msr: 'SPEC_CTRL' }).exit).toBeUndefined();
    expect(cpu.exec({ kind: 'wrmsr', msr: 0x48 }).exit).toBeUndefined();
    const ibpb = cpu.exec({ kind: 'wrmsr', msr: 'PRED_CMD' });
    expect(ibpb.exit).toBeUndefined();
    expect(ibpb.effect?.action).toBe('ibpb');
  });

  it('an instruction that reaches the emulator always exits as npf, and nothing runs on the hardware', () => {
    for (const npt of [true, false]) {
      const { core, cpu } = guestCpu(npt);
      const r = cpu.execEmulated(MOV_CR3);
      expect(r.exit).toBe('npf');
      expect(r.effect).toBeUndefined();
      expect(core.rapGuest.occupancy).toBe(5);
    }
  });
});
