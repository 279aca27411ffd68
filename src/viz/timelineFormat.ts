/**
 * The viewer's data file, `timeline.json`, written by `rapsim run --out DIR` beside `trace.json`
 * and read by the web page that `rapsim view` serves. Types only: the web app imports them too.
 * Times are picoseconds (the kernel's unit); event arrays are columnar, indexed by event number,
 * and encoded small (a run of a million events must load in a browser): times as differences,
 * repeated payloads and contexts interned.
 */
export interface TimelineFile {
  format: 'rapsim-timeline';
  version: 1;
  run: {
    rapsim: string;
    scenario: string;
    seed: number;
    traceDigest: string;
    replay: string;
    simulatedPs: number;
    /** Events of the whole run (the timeline may keep fewer). */
    events: number;
    spec: string;
    rapEntries: number;
    cores: number;
  };
  window: {
    fromPs: number;
    endPs: number;
    /** The event limit cut the recording short; it ends at `endPs`. */
    truncated: boolean;
    /** Continuations kept: one in `sampleEvery` per actor (messages, state changes, observations always). */
    sampleEvery: number;
    /** Events recorded in the window, and kept in this file. */
    recorded: number;
    kept: number;
  };
  groups: { id: string; label: string }[];
  actors: { index: number; id: string; kind: string; group: string; label: string }[];
  /** Per machine kind: the chart SVG (states carry `data-state="<id>"`) and the machine's id. */
  charts: Record<string, { machineId: string; description: string; svg: string; states: string[] }>;
  types: string[];
  states: string[];
  events: {
    /** Delivery time minus the previous event's (the first: minus 0). */
    dt: number[];
    /** Delivery time minus send time. */
    lag: number[];
    src: number[];
    dst: number[];
    /** Index into `types`. */
    type: number[];
    /** Index into `states`: the destination's state after the event. */
    state: number[];
  };
  /** Observations, by event number; `data` indexes `obsData` (identical payloads are stored once). */
  obs: { ev: number[]; kind: number[]; data: number[] };
  obsKinds: string[];
  obsData: unknown[];
  /**
   * RAP changes: after event `ev[i]` the host (and guest, on ERAPS parts) stack of core actor
   * `actor[i]` (the event's actor, or the core its vCPU runs on) changed by `host[i]` / `guest[i]` (keep the oldest `keep` entries, push `add`, flattened
   * `[context number, age, addr, stuff]` where the context number indexes `contextList` and the
   * age is the event's time minus the push time), relative to the previous change of the same actor.
   */
  rap: { ev: number[]; actor: number[]; host: (RapDeltaJson | null)[]; guest: (RapDeltaJson | null)[] };
  /** Encoded pusher contexts (see src/hw/context.ts) that RAP entries refer to by position. */
  contextList: number[];
  /** Decoded pusher contexts by encoded value. */
  contexts: Record<string, ContextInfo>;
  violations: TimelineViolation[];
  metrics: unknown;
  violationCounts: Record<string, number>;
  failing: string[];
  expect: { ok: boolean; problems: string[] } | null;
  /** Completed shootdowns in the window: latency, targets, whether they crossed sockets. */
  shootdowns: { latencyNs: number[]; targets: number[]; crossSocket: boolean[]; atPs: number[] };
}

export interface RapDeltaJson {
  keep: number;
  add: number[];
}

export interface ContextInfo {
  world: 'host' | 'guest';
  level: number;
  vm: number;
  view: number;
  process: number;
  /** `host process 2`, `vm0 vCPU 1 process 3`, `stuffing`, `host kernel`. */
  label: string;
  /** A key that colours entries: same world/VM/process, same colour. */
  colourKey: string;
}

export interface TimelineViolation {
  property: string;
  atNs: number;
  pcpu: number;
  promise: string;
  because: string;
  events: string[];
  occurrences: number;
  consumer: Record<string, unknown>;
  producer: Record<string, unknown>;
  /** Actor index of the core (whose RAP the viewer shows), or -1. */
  actor: number;
  /** Event number during which it happened (the RAP before it is the one the RET saw), or -1. */
  ev: number;
  /** The consumed entry's push time (ps) and encoded pusher context, when the checker reported them. */
  producerPushedPs?: number;
  producerCtx?: number;
}
