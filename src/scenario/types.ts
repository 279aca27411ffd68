/**
 * The public types of the scenario layer in one place, all inferred from the schemas (so they can
 * never disagree with what the loader accepts).
 */

export type { Expect, PropertyName } from './expect.js';
export type { Hardware, Spec } from './hardware.js';
export type { Host, Policy } from './host.js';
export type { MsrName } from './msr.js';
export type { Ratio } from './ratio.js';
export type { Scenario, ScenarioInput } from './schema.js';
export type {
  BitAction,
  Cr0Bit,
  Cr0Op,
  Cr4Bit,
  Cr4Op,
  EmulatedOp,
  InvlpgOp,
  InvpcidOp,
  MovCr3Op,
  Script,
  ScriptOp,
  WrmsrOp,
} from './scriptOps.js';
export type { MatrixValue } from './sweep.js';
export type { Nested, Vm } from './vm.js';
export type { GuestWorkload, HostProcesses } from './workload.js';
