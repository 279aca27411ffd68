import { type ChartModel, type ChartState, type ChartTransition, transitionLabel } from './chartModel.js';

/**
 * A chart as Mermaid `stateDiagram-v2` text (GitHub and GitLab render it). The machine's states
 * are the top level; nested states are nested composites, parallel regions are separated by `--`,
 * descriptions are lines inside the state's box, and what the machine does in every state (its
 * root `on`) is a note beside the initial state. Generated, never drawn by hand.
 *
 * @example
 * mermaidChart(chartModel('pcpu', pcpuMachine, '…')) // 'stateDiagram-v2\n  [*] --> pcpu_boot\n…'
 */
export function mermaidChart(m: ChartModel): string {
  const lines: string[] = ['stateDiagram-v2'];
  lines.push(`  %% ${m.kind}: ${oneLine(m.description)}`);
  const bySource = new Map<string, ChartTransition[]>();
  for (const t of m.transitions) {
    const list = bySource.get(t.source) ?? [];
    list.push(t);
    bySource.set(t.source, list);
  }
  emitChildren(m.root, 1, lines, bySource);
  const anyState = bySource.get(m.root.id) ?? [];
  const anchor = m.root.initial ? `${m.root.id}.${m.root.initial}` : m.root.children[0]?.id;
  if (anyState.length > 0 && anchor) {
    lines.push(`  note left of ${mid(anchor)}`);
    lines.push('    in any state:');
    for (const t of anyState) {
      const to =
        t.targets.length > 0 ? ` → ${t.targets.map((x) => x.slice(m.root.id.length + 1)).join(', ')}` : '';
      lines.push(`    ${text(transitionLabel(t))}${text(to)}`);
    }
    lines.push('  end note');
  }
  return `${lines.join('\n')}\n`;
}

/** A compound (or the machine) state's children: initial marker, states, then their transitions. */
function emitChildren(
  s: ChartState,
  depth: number,
  lines: string[],
  bySource: Map<string, ChartTransition[]>,
): void {
  const pad = '  '.repeat(depth);
  if (s.type === 'parallel') {
    s.children.forEach((c, i) => {
      if (i > 0) lines.push(`${pad}--`);
      emitState(c, depth, lines, bySource);
    });
    return;
  }
  if (s.initial) lines.push(`${pad}[*] --> ${mid(`${s.id}.${s.initial}`)}`);
  for (const c of s.children) emitState(c, depth, lines, bySource);
  for (const c of s.children) {
    for (const t of bySource.get(c.id) ?? []) emitTransition(t, depth, lines);
  }
}

function emitState(
  s: ChartState,
  depth: number,
  lines: string[],
  bySource: Map<string, ChartTransition[]>,
): void {
  const pad = '  '.repeat(depth);
  const id = mid(s.id);
  if (s.children.length === 0) {
    lines.push(`${pad}state "${text(s.key)}" as ${id}`);
    if (s.type === 'final') lines.push(`${pad}${id} --> [*]`);
  } else {
    lines.push(`${pad}state "${text(s.key)}" as ${id} {`);
    emitChildren(s, depth + 1, lines, bySource);
    lines.push(`${pad}}`);
  }
  if (s.description && s.children.length === 0) {
    for (const l of wrap(s.description, 34)) lines.push(`${pad}${id} : ${text(l)}`);
  }
}

function emitTransition(t: ChartTransition, depth: number, lines: string[]): void {
  const pad = '  '.repeat(depth);
  const label = text(transitionLabel(t));
  const targets = t.targets.length > 0 ? t.targets : [t.source];
  for (const target of targets) lines.push(`${pad}${mid(t.source)} --> ${mid(target)}: ${label}`);
}

/** A Mermaid-safe id for a dotted state id. */
function mid(id: string): string {
  return id.replace(/[^A-Za-z0-9_]/g, '_');
}

/** Text Mermaid reads literally: no statement separators, entity markers, braces or quotes. */
function text(s: string): string {
  return s.replace(/[;#{}"]/g, (c) => ({ ';': ',', '#': 'no.', '{': '(', '}': ')', '"': "'" })[c] ?? c);
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/** Greedy word wrap. */
export function wrap(s: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of oneLine(s).split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out;
}
