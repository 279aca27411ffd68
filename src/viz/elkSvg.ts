import type { ElkEdgeSection, ElkExtendedEdge, ElkLabel, ElkNode } from 'elkjs/lib/elk.bundled.js';
import { type ChartModel, type ChartState, type ChartTransition, transitionLabel } from './chartModel.js';
import { wrap } from './mermaid.js';

type ElkLayout = new () => { layout(g: ElkNode): Promise<ElkNode> };
let elkLayout: ElkLayout | undefined;

/**
 * elkjs, loaded on first use (it is a large bundle, and most commands draw no SVG). It is
 * CommonJS: under Node's ESM its constructor is `module.exports`, the namespace's default.
 */
async function loadElk(): Promise<ElkLayout> {
  if (!elkLayout) {
    const ns = (await import('elkjs/lib/elk.bundled.js')) as unknown as { default: ElkLayout };
    elkLayout = ns.default;
  }
  return elkLayout;
}

/** Monospace metrics used both to size ELK's boxes and to draw the text in them. */
const TITLE_PX = 12;
const SMALL_PX = 10;
const CHAR_W = 0.6;
const LINE_H = 14;

const width = (s: string, px: number): number => Math.ceil(s.length * px * CHAR_W);

interface Box {
  state: ChartState;
  lines: { text: string; cls: string }[];
}

/**
 * Lays a chart out with elkjs (layered, hierarchy-aware: nested states are nested boxes) and
 * renders the SVG itself from ELK's coordinates: one `<g class="state" data-state="<id>">` per
 * state (the viewer highlights active states by that attribute), one `<g class="transition">`
 * per transition with its event, guard and actions as the label. Initial states get the usual
 * filled dot; transitions the machine takes in every state are listed in the machine's header.
 */
export async function elkSvg(m: ChartModel): Promise<string> {
  const Elk = await loadElk();
  const elk = new Elk();
  const boxes = new Map<string, Box>();
  const rootAny = m.transitions.filter((t) => t.source === m.root.id && t.targets.length === 0);
  const graph = buildNode(m.root, true, rootAny, boxes);
  const meta = new Map<string, EdgeMeta>();
  const edges = buildEdges(m, graph, meta);
  const laid = await elk.layout({
    ...graph,
    edges: [...(graph.edges ?? []), ...edges.root],
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'DOWN',
      'elk.edgeRouting': 'POLYLINE',
      'elk.layered.nodePlacement.strategy': 'NETWORK_SIMPLEX',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.layered.spacing.nodeNodeBetweenLayers': '36',
      'elk.spacing.nodeNode': '28',
      'elk.spacing.edgeLabel': '4',
      'elk.spacing.edgeNode': '14',
      'elk.layered.spacing.edgeNodeBetweenLayers': '14',
      'elk.edgeLabels.inline': 'false',
      ...graph.layoutOptions,
    },
  });
  return render(m, laid, boxes, meta);
}

/** ELK node for a state; leaf sizes come from their text, compound ones from ELK. */
function buildNode(
  s: ChartState,
  isRoot: boolean,
  rootAny: ChartTransition[],
  boxes: Map<string, Box>,
): ElkNode {
  const lines: Box['lines'] = [{ text: s.key, cls: 'title' }];
  if (s.entry.length > 0) lines.push({ text: `entry / ${s.entry.join(', ')}`, cls: 'detail' });
  if (s.exit.length > 0) lines.push({ text: `exit / ${s.exit.join(', ')}`, cls: 'detail' });
  if (s.children.length === 0 && s.description) {
    for (const l of wrap(s.description, 30)) lines.push({ text: l, cls: 'note' });
  }
  if (isRoot) {
    for (const t of rootAny) lines.push({ text: `in any state: ${transitionLabel(t)}`, cls: 'detail' });
  }
  boxes.set(s.id, { state: s, lines });
  const textW = Math.max(...lines.map((l) => width(l.text, l.cls === 'title' ? TITLE_PX : SMALL_PX)));
  const textH = 8 + lines.length * LINE_H;
  if (s.children.length === 0) {
    return { id: s.id, width: Math.max(textW + 20, 70), height: textH + 8 };
  }
  const children: ElkNode[] = s.children.map((c) => buildNode(c, false, rootAny, boxes));
  if (s.type !== 'parallel' && s.initial)
    children.unshift({ id: `${s.id}.__initial`, width: 12, height: 12 });
  return {
    id: s.id,
    children,
    layoutOptions: {
      'elk.padding': `[top=${textH + 10},left=14,bottom=14,right=14]`,
      'elk.nodeSize.constraints': 'MINIMUM_SIZE',
      'elk.nodeSize.minimum': `(${textW + 28}, ${textH + 30})`,
    },
  };
}

interface EdgeMeta {
  transition?: ChartTransition;
  initial?: boolean;
}

/** Edges go into the lowest common ancestor of their ends, as ELK's hierarchy handling wants. */
function buildEdges(m: ChartModel, graph: ElkNode, meta: Map<string, EdgeMeta>): { root: ElkExtendedEdge[] } {
  const parentOf = new Map<string, ElkNode>();
  const index = (n: ElkNode): void => {
    for (const c of n.children ?? []) {
      parentOf.set(c.id, n);
      index(c);
    }
  };
  index(graph);
  const ancestors = (id: string): string[] => {
    const out: string[] = [];
    for (let p = parentOf.get(id); p; p = parentOf.get(p.id)) out.push(p.id);
    return out;
  };
  const lca = (a: string, b: string): ElkNode => {
    const up = ancestors(a);
    const upB = new Set(ancestors(b));
    // A self-loop or an edge to a child lives in the source's parent.
    for (const id of up) if (upB.has(id)) return id === graph.id ? graph : findNode(graph, id)!;
    return graph;
  };
  let n = 0;
  const add = (source: string, target: string, info: EdgeMeta, label?: string[]): void => {
    const e: ElkExtendedEdge = { id: `e${n++}`, sources: [source], targets: [target] };
    if (label) {
      const w = Math.max(...label.map((l) => width(l, SMALL_PX)));
      e.labels = [
        {
          id: `${e.id}.label`,
          text: label.join('\n'),
          width: w + 6,
          height: label.length * (LINE_H - 2) + 2,
          layoutOptions: { 'elk.edgeLabels.placement': 'CENTER' },
        },
      ];
    }
    meta.set(e.id, info);
    const home = lca(source, target);
    home.edges = [...(home.edges ?? []), e];
  };
  const visit = (s: ChartState): void => {
    if (s.children.length > 0 && s.type !== 'parallel' && s.initial) {
      add(`${s.id}.__initial`, `${s.id}.${s.initial}`, { initial: true });
    }
    s.children.forEach(visit);
  };
  visit(m.root);
  for (const t of m.transitions) {
    if (t.source === m.root.id && t.targets.length === 0) continue;
    const label = labelLines(t);
    for (const target of t.targets.length > 0 ? t.targets : [t.source])
      add(t.source, target, { transition: t }, label);
  }
  const root = graph.edges ?? [];
  graph.edges = [];
  return { root };
}

/** Event and guard on one line, actions on the next. */
function labelLines(t: ChartTransition): string[] {
  const head = t.kind === 'always' ? 'always' : t.kind === 'after' ? `after ${t.event}` : (t.event ?? '');
  const lines = [t.guard ? `${head} [${t.guard}]` : head];
  if (t.actions.length > 0) lines.push(`/ ${t.actions.join(', ')}`);
  return lines;
}

function findNode(n: ElkNode, id: string): ElkNode | undefined {
  if (n.id === id) return n;
  for (const c of n.children ?? []) {
    const f = findNode(c, id);
    if (f) return f;
  }
  return undefined;
}

const esc = (s: string): string =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c);

const f = (x: number): string => String(Math.round(x * 10) / 10);

function render(
  m: ChartModel,
  laid: ElkNode,
  boxes: Map<string, Box>,
  metaById: Map<string, EdgeMeta>,
): string {
  const abs = new Map<string, { x: number; y: number }>();
  const place = (n: ElkNode, ox: number, oy: number): void => {
    const x = ox + (n.x ?? 0);
    const y = oy + (n.y ?? 0);
    abs.set(n.id, { x, y });
    for (const c of n.children ?? []) place(c, x, y);
  };
  place(laid, 0, 0);
  const W = Math.ceil((laid.width ?? 0) + 4);
  const H = Math.ceil((laid.height ?? 0) + 4);
  const marker = `arrow-${m.kind.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="rapsim-chart" data-machine="${esc(m.kind)}" viewBox="-2 -2 ${W} ${H}" width="${W}" height="${H}" font-family="ui-monospace, SFMono-Regular, Menlo, Consolas, monospace">`,
  );
  out.push(`<title>${esc(`${m.kind}: ${m.description}`)}</title>`);
  out.push(
    `<style>.state>rect{fill:#fff;stroke:#475569;stroke-width:1.2}.state.compound>rect{fill:#f8fafc}.state.active>rect{fill:#fde68a;stroke:#b45309;stroke-width:2.5}.state.compound.active>rect{fill:#fffbeb}.state .title{font-size:${TITLE_PX}px;font-weight:600;fill:#0f172a}.state .detail{font-size:${SMALL_PX}px;fill:#334155}.state .note{font-size:${SMALL_PX}px;fill:#64748b;font-style:italic}.transition path{fill:none;stroke:#64748b;stroke-width:1.1}.transition text{font-size:${SMALL_PX}px;fill:#1e3a8a}.transition.initial path{stroke:#0f172a}.transition.fired path{stroke:#b45309;stroke-width:2.2}.initial-dot{fill:#0f172a}</style>`,
  );
  out.push(
    `<defs><marker id="${marker}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#64748b"/></marker></defs>`,
  );
  const drawNode = (n: ElkNode): void => {
    const p = abs.get(n.id)!;
    if (n.id.endsWith('.__initial')) {
      out.push(
        `<circle class="initial-dot" cx="${f(p.x + 6)}" cy="${f(p.y + 6)}" r="6"><title>initial state</title></circle>`,
      );
      return;
    }
    const box = boxes.get(n.id);
    if (!box) return;
    const s = box.state;
    const cls = `state ${s.children.length > 0 ? 'compound' : 'atomic'}${s.type === 'compound' || s.type === 'atomic' ? '' : ` ${s.type}`}`;
    out.push(`<g class="${cls}" data-state="${esc(s.id)}">`);
    if (s.description) out.push(`<title>${esc(`${s.key}: ${s.description}`)}</title>`);
    out.push(
      `<rect x="${f(p.x)}" y="${f(p.y)}" width="${f(n.width ?? 0)}" height="${f(n.height ?? 0)}" rx="8" ry="8"/>`,
    );
    if (s.type === 'final') {
      out.push(
        `<rect x="${f(p.x + 3)}" y="${f(p.y + 3)}" width="${f((n.width ?? 0) - 6)}" height="${f((n.height ?? 0) - 6)}" rx="6" ry="6" fill="none" stroke="#475569"/>`,
      );
    }
    const leaf = s.children.length === 0;
    box.lines.forEach((l, i) => {
      const y = p.y + 4 + LINE_H * (i + 1);
      const x = leaf ? p.x + (n.width ?? 0) / 2 : p.x + 10;
      out.push(
        `<text class="${l.cls}" x="${f(x)}" y="${f(y)}"${leaf ? ' text-anchor="middle"' : ''}>${esc(l.text)}</text>`,
      );
    });
    if (s.children.length > 0) {
      out.push(
        `<line x1="${f(p.x)}" y1="${f(p.y + 10 + box.lines.length * LINE_H)}" x2="${f(p.x + (n.width ?? 0))}" y2="${f(p.y + 10 + box.lines.length * LINE_H)}" stroke="#cbd5e1"/>`,
      );
    }
    out.push('</g>');
    for (const c of n.children ?? []) drawNode(c);
  };
  drawNode(laid);
  const drawEdges = (n: ElkNode): void => {
    for (const e of (n.edges ?? []) as (ElkExtendedEdge & { container?: string })[]) {
      const meta = metaById.get(e.id);
      const origin = abs.get(e.container ?? n.id) ?? { x: 0, y: 0 };
      const d = (e.sections ?? []).map((sec) => pathOf(sec, origin)).join(' ');
      const t = meta?.transition;
      const attrs = t
        ? ` data-source="${esc(t.source)}" data-targets="${esc(t.targets.join(' '))}" data-event="${esc(t.event ?? (t.kind === 'always' ? 'always' : ''))}"`
        : '';
      out.push(`<g class="transition${meta?.initial ? ' initial' : ''}"${attrs}>`);
      if (t) out.push(`<title>${esc(transitionLabel(t))}</title>`);
      out.push(`<path d="${d}" marker-end="url(#${marker})"/>`);
      for (const l of (e.labels ?? []) as ElkLabel[]) {
        const lx = origin.x + (l.x ?? 0);
        const ly = origin.y + (l.y ?? 0);
        (l.text ?? '').split('\n').forEach((line, i) => {
          out.push(`<text x="${f(lx + 3)}" y="${f(ly + 10 + i * (LINE_H - 2))}">${esc(line)}</text>`);
        });
      }
      out.push('</g>');
    }
    for (const c of n.children ?? []) drawEdges(c);
  };
  drawEdges(laid);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function pathOf(sec: ElkEdgeSection, o: { x: number; y: number }): string {
  const pts = [sec.startPoint, ...(sec.bendPoints ?? []), sec.endPoint];
  return pts.map((p, i) => `${i === 0 ? 'M' : 'L'}${f(o.x + p.x)},${f(o.y + p.y)}`).join(' ');
}
