/**
 * Upper bounds on every count a scenario can ask for. A simulator of a few machines has no use for
 * more, and a bound turns a typo (`vcpus: 40000`) into a clear error instead of an out-of-memory
 * crash minutes later ("put a limit on everything", docs/style.md).
 */
export const LIMITS = {
  cores: 4096,
  sockets: 64,
  vcpus: 1024,
  /** A RAP entry's context holds a 12-bit process number; 4094 and 4095 are reserved. */
  processes: 4000,
  workers: 256,
  rapEntries: 1024,
  /** CALLs or RETs in one script operation: far beyond any RAP size. */
  callsPerOp: 1_000_000,
  callDepth: 256,
  pages: 1 << 20,
  scriptOps: 100_000,
  /** CPUID Fn8000_0021_EBX[23:16] is an 8-bit field. */
  rapSize: 255,
  seedsPerRange: 100_000,
  matrixValues: 1000,
  /** MSR indices are 32 bits (ECX of WRMSR). */
  msrIndex: 0xffff_ffff,
} as const;
