import type { Run } from './data.js';
import { esc, num } from './html.js';

/** Shootdown latency histogram (ns buckets) as SVG bars. */
export function histogramSvg(values: number[], title: string): string {
  if (values.length === 0) return `<p class="muted">${esc(title)}: none in this run.</p>`;
  const min = Math.min(...values);
  const max = Math.max(...values);
  const bins = Math.min(24, Math.max(4, Math.ceil(Math.sqrt(values.length))));
  const width = Math.max(1, (max - min) / bins);
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.floor((v - min) / width))]!++;
  const top = Math.max(...counts);
  const W = 420;
  const H = 150;
  const bw = (W - 40) / bins;
  const bars = counts
    .map((c, i) => {
      const h = top === 0 ? 0 : Math.round((c / top) * (H - 40));
      const lo = Math.round(min + i * width);
      const hi = Math.round(min + (i + 1) * width);
      return `<rect class="hb" x="${30 + i * bw}" y="${H - 20 - h}" width="${Math.max(1, bw - 2)}" height="${h}"><title>${esc(`${lo}–${hi} ns: ${c}`)}</title></rect>`;
    })
    .join('');
  return `<figure class="hist"><figcaption>${esc(title)} (${num(values.length)})</figcaption><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">${bars}<line class="hl" x1="28" y1="${H - 20}" x2="${W - 8}" y2="${H - 20}"/><text class="ht" x="30" y="${H - 6}">${num(Math.round(min))} ns</text><text class="ht" x="${W - 8}" y="${H - 6}" text-anchor="end">${num(Math.round(max))} ns</text><text class="ht" x="26" y="14" text-anchor="end">${top}</text></svg></figure>`;
}

/** Horizontal bars for a few named counts. */
export function barsHtml(title: string, items: [string, number][]): string {
  const max = Math.max(1, ...items.map(([, v]) => v));
  const rows = items
    .map(
      ([k, v]) =>
        `<div class="bar-row"><span class="bar-label">${esc(k)}</span><span class="bar" style="width:${Math.max(1, Math.round((v / max) * 160))}px"></span><span class="bar-value">${num(v)}</span></div>`,
    )
    .join('');
  return `<figure class="bars"><figcaption>${esc(title)}</figcaption>${rows || '<p class="muted">none</p>'}</figure>`;
}

interface Metrics {
  rap?: {
    returns?: number;
    predicted?: number;
    mispredicted?: number;
    underflows?: number;
    clears?: Record<string, number>;
    stuffingCalls?: number;
  };
  contextSwitches?: number;
  shootdowns?: { count?: number; latencyNs?: Record<string, number> };
  costNs?: Record<string, number>;
}

/** The run's key metrics: RET outcomes, RAP clears by cause, costs, shootdown latencies. */
export function metricsHtml(run: Run): string {
  const m = (run.tl.metrics ?? {}) as Metrics;
  const rap = m.rap ?? {};
  const sd = m.shootdowns ?? {};
  const lat = sd.latencyNs ?? {};
  const cards = [
    ['returns', num(rap.returns ?? 0)],
    ['predicted', pct(rap.predicted, rap.returns)],
    ['mispredicted', pct(rap.mispredicted, rap.returns)],
    ['underflowed', pct(rap.underflows, rap.returns)],
    ['stuffing CALLs', num(rap.stuffingCalls ?? 0)],
    ['context switches', num(m.contextSwitches ?? 0)],
    ['shootdowns', num(sd.count ?? 0)],
    ['shootdown p50 / p99', sd.count ? `${num(lat.p50 ?? 0)} / ${num(lat.p99 ?? 0)} ns` : '—'],
  ]
    .map(([k, v]) => `<div class="card"><div class="k">${esc(k)}</div><div class="v">${esc(v)}</div></div>`)
    .join('');
  const outcomes = barsHtml('RET outcomes', [
    ['predicted', rap.predicted ?? 0],
    ['mispredicted', rap.mispredicted ?? 0],
    ['underflowed', rap.underflows ?? 0],
  ]);
  const clears = barsHtml('RAP clears by cause', Object.entries(rap.clears ?? {}));
  const cost = barsHtml(
    'simulated cost (ns)',
    Object.entries(m.costNs ?? {}).map(([k, v]) => [k, v] as [string, number]),
  );
  const hist = histogramSvg(run.tl.shootdowns.latencyNs, 'shootdown latency in the recorded window');
  return `<div class="cards">${cards}</div><div class="charts-row">${hist}${outcomes}${clears}${cost}</div>`;
}

function pct(a: number | undefined, b: number | undefined): string {
  if (!b) return '—';
  return `${(((a ?? 0) / b) * 100).toFixed(1)}%`;
}
