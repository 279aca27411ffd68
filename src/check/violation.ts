/** Property names of docs/domain.md §5 (fixed by interface.md). */
export const PROPERTIES = [
  'rap-host-guest',
  'rap-promised-clear',
  'rap-nested',
  'rap-cross-context',
  'tlb-stale',
] as const;
export type Property = (typeof PROPERTIES)[number];

/** Advisory properties are reported but do not fail a run. */
export const ADVISORY: ReadonlySet<Property> = new Set(['rap-cross-context']);

/** A context as the report names it. */
export interface ContextRef {
  world: 'host' | 'guest';
  vm: string | null;
  vcpu: number | null;
  level: number;
  process: number | null;
  atNs?: number;
}

/** One broken promise, in the JSON report's shape (interface.md). */
export interface Violation {
  property: Property;
  atNs: number;
  pcpu: number;
  consumer: ContextRef;
  producer: ContextRef;
  promise: string;
  because: string;
  /** The causal chain, oldest first. */
  events: string[];
  /** How many uses the same (property, consumer, producer, cause) produced. */
  occurrences: number;
}
