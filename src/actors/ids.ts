import { customRandom, urlAlphabet } from 'nanoid';
import type { Stream } from './prng.js';

/**
 * Ids that enter the trace (shootdown ids, request ids) are drawn from the actor's seeded
 * stream through nanoid's `customRandom`, never from host entropy, so a replay gives the same ids.
 *
 * @example
 * const newId = createIdFactory(stream); newId() // 'V1StGXR8_Z'
 */
export function createIdFactory(stream: Stream, size = 10): () => string {
  return customRandom(urlAlphabet, size, (bytes) => stream.bytes(bytes));
}
