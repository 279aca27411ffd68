/**
 * Freezes an object graph in place: a scenario shared by several runs then throws where a model
 * would write into it, instead of leaking one run's change into the next.
 *
 * @example
 * const s = deepFreeze(parseScenarioText(text, file));
 */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
