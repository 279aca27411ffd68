import type { AnyStateMachine } from 'xstate';

/** A state of a chart, with its children (compound and parallel states) in document order. */
export interface ChartState {
  /** Dotted path from the machine: `pcpu.running`, `vcpu.guest.running`. Unique in the chart. */
  id: string;
  /** The state's own key (`running`). */
  key: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  description?: string;
  /** Key of the initial child (compound states). */
  initial?: string;
  entry: string[];
  exit: string[];
  children: ChartState[];
}

/** One transition: an event (or `always`, or a delay) with its guard and actions. */
export interface ChartTransition {
  source: string;
  /** Target state ids; empty for a targetless transition (actions only, the state stays). */
  targets: string[];
  kind: 'event' | 'always' | 'after';
  /** Event type; `null` for `always`; the delay text for `after`. */
  event: string | null;
  guard?: string;
  actions: string[];
}

/**
 * What the charts are drawn from: the machine definition, normalised. States and event
 * transitions come from `machine.toJSON()`-equivalent state nodes; eventless (`always`)
 * transitions, which `toJSON()` leaves out, come from the same nodes' `always` lists.
 */
export interface ChartModel {
  kind: string;
  machineId: string;
  description: string;
  root: ChartState;
  transitions: ChartTransition[];
}

/** The subset of xstate's StateNode the chart reads (xstate's type is generic-heavy). */
interface NodeLike {
  key: string;
  path: string[];
  type: ChartState['type'];
  description?: string;
  states: Record<string, NodeLike>;
  entry: unknown[];
  exit: unknown[];
  config: { initial?: unknown };
  transitions: Map<string, TransitionLike[]>;
  always?: TransitionLike[];
}

interface TransitionLike {
  eventType: string;
  target?: readonly NodeLike[];
  guard?: unknown;
  actions: readonly unknown[];
}

const AFTER = /^xstate\.after\.([^.]+)\./;

/** Builds the chart model of a machine (see {@link ChartModel}). */
export function chartModel(kind: string, machine: AnyStateMachine, description: string): ChartModel {
  const root = machine.root as unknown as NodeLike;
  const machineId = machine.id;
  const idOf = (n: NodeLike): string => [machineId, ...n.path].join('.');
  const transitions: ChartTransition[] = [];

  const walk = (n: NodeLike): ChartState => {
    const children = Object.values(n.states ?? {}).map(walk);
    const initial = typeof n.config.initial === 'string' ? n.config.initial : undefined;
    const s: ChartState = {
      id: idOf(n),
      key: n.path.length === 0 ? machineId : n.key,
      type: n.type,
      entry: n.entry.map(actionName),
      exit: n.exit.map(actionName),
      children,
    };
    if (n.description) s.description = n.description;
    if (n.type === 'compound' && (initial ?? children[0])) s.initial = initial ?? children[0]!.key;
    for (const [eventType, list] of n.transitions) {
      for (const t of list) {
        const after = AFTER.exec(eventType);
        transitions.push(
          transition(
            idOf(n),
            t,
            after ? 'after' : 'event',
            after ? (after[1] ?? eventType) : eventType,
            idOf,
          ),
        );
      }
    }
    for (const t of n.always ?? []) transitions.push(transition(idOf(n), t, 'always', null, idOf));
    return s;
  };

  return { kind, machineId, description, root: walk(root), transitions };
}

function transition(
  source: string,
  t: TransitionLike,
  kind: ChartTransition['kind'],
  event: string | null,
  idOf: (n: NodeLike) => string,
): ChartTransition {
  const out: ChartTransition = {
    source,
    targets: (t.target ?? []).map(idOf),
    kind,
    event,
    actions: t.actions.map(actionName).filter((a) => a !== ''),
  };
  const guard = t.guard === undefined ? undefined : guardName(t.guard);
  if (guard) out.guard = guard;
  return out;
}

/** A readable name for an action: its type, `assign` for inline assigns, the function name. */
export function actionName(a: unknown): string {
  if (typeof a === 'string') return a;
  if (typeof a === 'function') {
    const t = (a as { type?: unknown }).type;
    if (typeof t === 'string') return t.replace(/^xstate\./, '');
    return a.name || 'action';
  }
  if (a && typeof a === 'object' && typeof (a as { type?: unknown }).type === 'string') {
    return ((a as { type: string }).type as string).replace(/^xstate\./, '');
  }
  return 'action';
}

/** A readable guard: `allAcked`, `planIs(run)`, `!g`, `a && b`. */
export function guardName(g: unknown): string {
  if (typeof g === 'string') return g;
  if (typeof g === 'function') {
    const inner = (g as { guards?: unknown[] }).guards;
    if (Array.isArray(inner)) {
      const parts = inner.map(guardName);
      if (g.name === 'not') return `!${parts[0] ?? ''}`;
      if (g.name === 'and') return parts.join(' && ');
      if (g.name === 'or') return parts.join(' || ');
      if (g.name === 'stateIn') return 'in state';
    }
    return g.name || 'guard';
  }
  if (g && typeof g === 'object') {
    const { type, params } = g as { type?: unknown; params?: unknown };
    const name = typeof type === 'string' ? type : 'guard';
    if (params && typeof params === 'object') {
      const values = Object.entries(params as Record<string, unknown>);
      const text =
        values.length === 1
          ? String(values[0]![1])
          : values
              .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
              .join(', ');
      return `${name}(${text})`;
    }
    return name;
  }
  return 'guard';
}

/** Every state of a chart, depth first (the root first). */
export function allStates(root: ChartState): ChartState[] {
  return [root, ...root.children.flatMap(allStates)];
}

/** A transition's label as charts print it: `EVENT [guard] / action, action`. */
export function transitionLabel(t: ChartTransition): string {
  const head = t.kind === 'always' ? 'always' : t.kind === 'after' ? `after ${t.event}` : (t.event ?? '');
  const guard = t.guard ? ` [${t.guard}]` : '';
  const actions = t.actions.length > 0 ? ` / ${t.actions.join(', ')}` : '';
  return `${head}${guard}${actions}`;
}
