/**
 * The names `--columns` accepts for the sweep table, in table order. A module of its own, without
 * dependencies, so that `rapsim --help` can list them without loading the sweep's renderer.
 */
export const SWEEP_COLUMN_NAMES = [
  'runs',
  'failing',
  'violations',
  'p50',
  'p99',
  'interrupted',
  'mispredicted',
  'underflowed',
  'clears',
  'clear-rap',
  'stuffing',
  'mispredict-cost',
  'work',
  'steal',
] as const;

export type SweepColumnName = (typeof SWEEP_COLUMN_NAMES)[number];
