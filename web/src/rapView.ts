import type { ContextInfo } from '../../src/viz/timelineFormat.js';
import { fmtTime, type RapEntry, type RapState } from './data.js';
import { esc } from './html.js';

const PALETTE = [
  '#2563eb',
  '#dc2626',
  '#16a34a',
  '#9333ea',
  '#ea580c',
  '#0891b2',
  '#ca8a04',
  '#db2777',
  '#4f46e5',
  '#65a30d',
  '#0d9488',
  '#b91c1c',
];

/** Colours by colour key (world/VM/process): stable for the whole page. */
export class Colours {
  private readonly map = new Map<string, string>();

  constructor(private readonly contexts: Record<string, ContextInfo>) {
    const keys = [...new Set(Object.values(contexts).map((c) => c.colourKey))].sort();
    const n = keys.filter((k) => k !== 'stuffing').length;
    let i = 0;
    for (const k of keys) {
      if (k === 'stuffing') this.map.set(k, '#cbd5e1');
      // Beyond the palette, hues a golden angle apart stay distinct.
      else if (n <= PALETTE.length) this.map.set(k, PALETTE[i++]!);
      else this.map.set(k, `hsl(${Math.round((i++ * 137.508) % 360)} 65% 45%)`);
    }
  }

  of(ctx: number): string {
    const c = this.contexts[String(ctx)];
    return (c && this.map.get(c.colourKey)) ?? '#94a3b8';
  }

  label(ctx: number): string {
    return this.contexts[String(ctx)]?.label ?? `context ${ctx}`;
  }

  legend(): { label: string; colour: string }[] {
    const seen = new Map<string, string>();
    for (const c of Object.values(this.contexts)) {
      const label = c.colourKey === 'stuffing' ? 'stuffing (benign)' : c.label.replace(/ vCPU \d+/, '');
      if (!seen.has(label)) seen.set(label, this.map.get(c.colourKey) ?? '#94a3b8');
    }
    return [...seen.entries()]
      .map(([label, colour]) => ({ label, colour }))
      .sort((a, b) => a.label.localeCompare(b.label));
  }
}

export interface Highlight {
  /** Push times (ps) of the entries the violating RETs used. */
  consumed: Set<number>;
  producerCtx?: number;
}

const isConsumed = (e: RapEntry, h: Highlight | undefined): boolean =>
  h?.consumed.has(e.pushedAt) === true && (h.producerCtx === undefined || h.producerCtx === e.ctx);

/** One core's RAP as a labelled stack: newest on top, oldest at the bottom. */
export function rapStackHtml(
  title: string,
  rap: RapState,
  capacity: number,
  colours: Colours,
  highlight?: Highlight,
  note?: string,
): string {
  const stacks: [string, RapEntry[]][] = [[rap.guest ? 'host stack' : '', rap.host]];
  if (rap.guest) stacks.push(['guest stack', rap.guest]);
  const body = stacks
    .map(([name, list]) => {
      const rows = [...list]
        .reverse()
        .map((e, i) => {
          const depth = list.length - i;
          const cls = `rap-entry${e.stuff ? ' stuff' : ''}${isConsumed(e, highlight) ? ' consumed' : ''}`;
          const who = e.stuff ? 'stuffing' : colours.label(e.ctx);
          return `<li class="${cls}" style="--c:${colours.of(e.ctx)}" title="${esc(`${who}, pushed at ${fmtTime(e.pushedAt)}${e.stuff ? '' : `, return address ${e.addr}`}`)}"><span class="slot">${depth}</span><span class="who">${esc(who)}</span><span class="when">${esc(fmtTime(e.pushedAt))}</span></li>`;
        })
        .join('');
      const head = `${name ? `${name}: ` : ''}${list.length} / ${capacity} entries`;
      return `<div class="rap-stack"><div class="rap-head">${esc(head)}</div><ol class="rap-list" data-count="${list.length}">${rows || '<li class="rap-empty">empty</li>'}</ol></div>`;
    })
    .join('');
  return `<section class="rap-core"><h4>${esc(title)}</h4>${note ? `<p class="rap-note">${note}</p>` : ''}${body}</section>`;
}

/** Every core's RAP at a glance: one column per core, one cell per valid entry. */
export function rapGridSvg(
  cores: { label: string; actor: number; rap: RapState; selected: boolean }[],
  capacity: number,
  colours: Colours,
): string {
  const cell = Math.max(2, Math.min(6, Math.floor(220 / Math.max(1, capacity))));
  const colW = Math.max(8, Math.min(18, Math.floor(600 / Math.max(1, cores.length))));
  const h = capacity * cell + 16;
  const w = cores.length * colW + 4;
  const parts: string[] = [
    `<svg class="rap-grid" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="RAP occupancy of every core">`,
  ];
  cores.forEach((c, i) => {
    const x = 2 + i * colW;
    parts.push(
      `<g class="rap-col${c.selected ? ' selected' : ''}" data-actor="${c.actor}"><title>${esc(`${c.label}: ${c.rap.host.length} host${c.rap.guest ? ` + ${c.rap.guest.length} guest` : ''} entries`)}</title><rect class="col-bg" x="${x}" y="0" width="${colW - 2}" height="${capacity * cell}"/>`,
    );
    [...c.rap.host, ...(c.rap.guest ?? [])].slice(0, capacity).forEach((e, k) => {
      const y = (capacity - 1 - k) * cell;
      parts.push(
        `<rect x="${x}" y="${y}" width="${colW - 2}" height="${Math.max(1, cell - 1)}" fill="${colours.of(e.ctx)}"/>`,
      );
    });
    if (cores.length <= 32 || i % 4 === 0) {
      parts.push(`<text class="gl" x="${x + (colW - 2) / 2}" y="${h - 4}" text-anchor="middle">${i}</text>`);
    }
    parts.push('</g>');
  });
  parts.push('</svg>');
  return parts.join('');
}
