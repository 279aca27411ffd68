import { fmtTime, type Run } from './data.js';
import { esc } from './html.js';

/** How many events the sequence diagram shows around the current one. */
const BEFORE = 24;
const AFTER = 24;

/**
 * Messages between actors as a sequence diagram around event `k`: one lane per shown actor,
 * time downwards (by event order, labelled with times), an arrow from the sender at its send time
 * to the receiver at arrival, a dot for an actor's own continuations. Every mark carries
 * `data-ev` so a click jumps to it; the current event is highlighted.
 */
export function sequenceSvg(run: Run, k: number, lanes: number[], labels: string[]): string {
  const tl = run.tl;
  const ev = tl.events;
  const from = Math.max(0, k - BEFORE);
  const to = Math.min(run.n - 1, k + AFTER);
  const laneX = new Map<number, number>();
  const laneW = Math.max(70, Math.min(150, Math.floor(900 / Math.max(1, lanes.length))));
  lanes.forEach((a, i) => {
    laneX.set(a, 90 + i * laneW + laneW / 2);
  });
  const rowH = 18;
  const top = 34;
  const rows = to - from + 1;
  const H = top + rows * rowH + 10;
  const W = 90 + lanes.length * laneW + 10;
  const yOfEvent = (i: number): number => top + (i - from) * rowH + rowH / 2;
  // A send time maps to the row of the first shown event at or after it (or above the top).
  const yOfTime = (t: number): number => {
    if (t < run.t[from]!) return top - 6;
    let i = from;
    while (i <= to && run.t[i]! < t) i++;
    if (i > to) return yOfEvent(to);
    const prev = i > from ? run.t[i - 1]! : t;
    const frac = run.t[i] === prev ? 0 : (t - prev) / (run.t[i]! - prev);
    return i > from ? yOfEvent(i - 1) + frac * rowH : yOfEvent(i);
  };
  const out: string[] = [
    `<svg class="sequence" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}"><defs><marker id="seq-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>`,
  ];
  lanes.forEach((a, i) => {
    const x = laneX.get(a)!;
    out.push(
      `<g class="lane" data-actor="${a}"><line x1="${x}" y1="${top - 8}" x2="${x}" y2="${H - 4}"/><text x="${x}" y="16" text-anchor="middle">${esc(labels[i] ?? '')}</text></g>`,
    );
  });
  for (let i = from; i <= to; i++) {
    const y = yOfEvent(i);
    const cur = i === k;
    out.push(
      `<g class="row${cur ? ' current' : ''}" data-ev="${i}"><rect x="0" y="${y - rowH / 2}" width="${W}" height="${rowH}"/><text class="t" x="4" y="${y + 4}">${esc(fmtTime(run.t[i]!))}</text></g>`,
    );
  }
  for (let i = from; i <= to; i++) {
    const dst = ev.dst[i]!;
    const src = ev.src[i]!;
    const xd = laneX.get(dst);
    const type = tl.types[ev.type[i]!] ?? '';
    const cls = `mark${i === k ? ' current' : ''}`;
    if (src === dst) {
      if (xd === undefined) continue;
      out.push(
        `<g class="${cls} self" data-ev="${i}"><title>${esc(`${type} at ${fmtTime(run.t[i]!)}`)}</title><circle cx="${xd}" cy="${yOfEvent(i)}" r="4"/><text x="${xd + 7}" y="${yOfEvent(i) + 4}">${esc(type === 'trace.start' ? 'start' : type)}</text></g>`,
      );
      continue;
    }
    const xs = laneX.get(src);
    if (xd === undefined && xs === undefined) continue;
    const y2 = yOfEvent(i);
    const y1 = yOfTime(run.sent[i]!);
    const x1 = xs ?? (xd! < W / 2 ? W - 6 : 86);
    const x2 = xd ?? (xs! < W / 2 ? W - 6 : 86);
    const title = `${type}: ${tl.actors[src]?.label ?? src} → ${tl.actors[dst]?.label ?? dst}, sent ${fmtTime(run.sent[i]!)}, arrived ${fmtTime(run.t[i]!)}`;
    out.push(
      `<g class="${cls} msg" data-ev="${i}"><title>${esc(title)}</title><line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" marker-end="url(#seq-arrow)"/><text x="${(x1 + x2) / 2}" y="${(y1 + y2) / 2 - 3}" text-anchor="middle">${esc(type)}</text></g>`,
    );
  }
  out.push('</svg>');
  return out.join('');
}
