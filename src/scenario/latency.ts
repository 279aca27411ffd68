import { z } from 'zod';
import { TIMING_TABLE } from '../hw/timing.js';
import { DurationSchema } from './duration.js';
import { ifWrongType, intAtLeast } from './numbers.js';

/** An entry that counts (pauses, frames, operations): a whole number, never a time. */
const CountSchema = intAtLeast(0, 'a whole number ≥ 0 (this entry counts, it is not a time)');

/**
 * Overrides of docs/timing.md's latencies, by name: each entry of the timing table read into
 * picoseconds, or, for an entry that counts (`pleWindow`, `kvmCallDepth`, …), taken as the
 * whole number it is — `pleWindow: 3us` would otherwise be three million pauses. A name the
 * table does not have is read as a duration and refused by the layer that owns the table
 * (it alone knows which entries a model reads).
 *
 * @example
 * LatencySchema.parse({ vmexit: '1us' }) // { vmexit: 1_000_000 }
 * LatencySchema.parse({ pleWindow: 6000 }) // { pleWindow: 6000 }
 */
export const LatencySchema = z
  .object(
    Object.fromEntries(
      Object.entries(TIMING_TABLE).map(([key, e]) => [
        key,
        (e.unit === 'count' ? CountSchema : DurationSchema).optional(),
      ]),
    ),
    { error: ifWrongType('a mapping from latency name to duration') },
  )
  .catchall(DurationSchema)
  .transform((entries) => entries as Record<string, number>);
