import { z } from 'zod';
import { DurationSchema } from './duration.js';
import { ifWrongType } from './numbers.js';

/**
 * Overrides of docs/timing.md's latencies, by name. The names are checked by the layer that owns
 * the timing table (it alone knows them); here each value is read into picoseconds.
 *
 * @example
 * LatencySchema.parse({ vmexit: '1us' }) // { vmexit: 1_000_000 }
 */
export const LatencySchema = z.record(z.string().min(1, { error: 'a latency name' }), DurationSchema, {
  error: ifWrongType('a mapping from latency name to duration'),
});
