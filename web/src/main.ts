import { activeStateIds } from '../../src/viz/stateIds.js';
import type { TimelineFile, TimelineViolation } from '../../src/viz/timelineFormat.js';
import { fmtTime, Run } from './data.js';
import { esc, num } from './html.js';
import { metricsHtml } from './metricsView.js';
import { Colours, type Highlight, rapGridSvg, rapStackHtml } from './rapView.js';
import { sequenceSvg } from './sequence.js';
import './style.css';

/** The page's state: where the cursor is and what is selected. Everything renders from it. */
interface ViewState {
  k: number;
  actor: number;
  violation: number;
  playing: number | undefined;
}

const app = document.getElementById('app')!;

async function load(): Promise<void> {
  let tl: TimelineFile;
  try {
    const res = await fetch('run/timeline.json', { cache: 'no-store' });
    if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
    tl = (await res.json()) as TimelineFile;
    if (tl.format !== 'rapsim-timeline') throw new Error('not a rapsim timeline');
    if (tl.version !== 1 || !Array.isArray(tl.events?.dt)) {
      throw new Error(
        `written by another version of rapsim (format ${String(tl.version)}): run the scenario again`,
      );
    }
  } catch (err) {
    app.innerHTML = `<p class="error">Could not load the run's timeline.json: ${esc((err as Error).message)}. Write it with <code>rapsim run SCENARIO --out DIR</code> and serve DIR with <code>rapsim view DIR</code>.</p>`;
    return;
  }
  const started = performance.now();
  const run = new Run(tl);
  new Viewer(run).mount();
  document.body.dataset.loadMs = String(Math.round(performance.now() - started));
}

class Viewer {
  private readonly colours: Colours;
  private readonly st: ViewState;
  private frame = 0;
  private chartActors: number[] = [];
  private readonly cores: number[];

  constructor(private readonly run: Run) {
    this.colours = new Colours(run.tl.contexts);
    // Cores: the actors RAP contents were recorded for, and every pCPU (a core running a vCPU
    // is a KVM machine under a pcpu: id).
    const withRap = new Set(run.tl.rap.actor);
    this.cores = run.tl.actors
      .filter((a) => withRap.has(a.index) || a.id.startsWith('pcpu:'))
      .map((a) => a.index);
    const firstViolation = run.tl.violations.find((v) => v.actor >= 0);
    this.st = { k: 0, actor: firstViolation?.actor ?? 0, violation: -1, playing: undefined };
    this.readHash();
  }

  mount(): void {
    const tl = this.run.tl;
    const r = tl.run;
    const w = tl.window;
    const windowNote = `${fmtTime(w.fromPs)} – ${fmtTime(w.endPs)}${w.truncated ? ' (cut by --trace-limit)' : ''}${w.sampleEvery > 1 ? `, 1 in ${w.sampleEvery} continuations` : ''}`;
    app.innerHTML = `
<header class="top">
  <h1>rapsim view</h1>
  <div class="run-meta">
    <span><b>${esc(r.scenario)}</b></span>
    <span>spec ${esc(r.spec)}</span><span>RAP ${r.rapEntries} entries</span><span>${r.cores} core(s)</span>
    <span>seed ${r.seed}</span><span>${num(r.events)} events, ${num(w.kept)} shown</span>
    <span title="${esc(r.traceDigest)}">${esc(r.traceDigest.slice(0, 19))}…</span>
    <span>window ${esc(windowNote)}</span>
    <span class="${tl.failing.length > 0 ? 'bad' : 'good'}">${tl.failing.length > 0 ? `failing: ${esc(tl.failing.join(', '))}` : 'no failing property'}</span>
  </div>
</header>
<div class="controls">
  <button type="button" data-act="first" title="first event (Home)">|◀</button>
  <button type="button" data-act="prev" title="previous event (←)">◀ event</button>
  <input id="scrub" type="range" min="0" max="${Math.max(0, this.run.n - 1)}" step="1" value="0" aria-label="time scrubber (event number)">
  <button type="button" data-act="next" title="next event (→)">event ▶</button>
  <button type="button" data-act="last" title="last event (End)">▶|</button>
  <button type="button" data-act="prev-msg" title="previous message (Shift+←)">◀ message</button>
  <button type="button" data-act="next-msg" title="next message (Shift+→)">message ▶</button>
  <button type="button" data-act="prev-actor" title="previous event of the selected actor">◀ actor</button>
  <button type="button" data-act="next-actor" title="next event of the selected actor">actor ▶</button>
  <button type="button" data-act="play" id="play">▶ play</button>
  <span id="now" class="now"></span>
  <span id="evno" class="muted"></span>
</div>
<main class="layout">
  <aside class="left">
    <section><h3>Actors</h3><div id="actors"></div></section>
    <section><h3>Violations <span class="muted">(${tl.violations.length})</span></h3><ol id="violations" class="violations"></ol></section>
  </aside>
  <section class="center">
    <section><h3>State charts <span class="muted">(selected actor and the actors of the current event)</span> <button type="button" class="zoom" data-act="zoom" id="zoom">fit to width</button></h3><div id="charts" class="charts"></div></section>
    <section><h3>Current event</h3><div id="event"></div></section>
    <section><h3>Messages</h3><div id="sequence" class="sequence-wrap"></div></section>
  </section>
  <aside class="right">
    <section><h3>RAP contents</h3><div id="rap"></div></section>
    <section><h3>All cores</h3><div id="rap-grid"></div><div id="legend" class="legend"></div></section>
  </aside>
</main>
<section class="metrics"><h3>Key metrics</h3><div id="metrics"></div></section>`;
    this.renderViolations();
    this.el('legend').innerHTML = this.colours
      .legend()
      .map((l) => `<span class="chip"><i style="background:${l.colour}"></i>${esc(l.label)}</span>`)
      .join('');
    this.el('metrics').innerHTML = metricsHtml(this.run);
    this.wire();
    this.render();
  }

  private el(id: string): HTMLElement {
    return document.getElementById(id)!;
  }

  private wire(): void {
    const scrub = this.el('scrub') as HTMLInputElement;
    scrub.addEventListener('input', () => this.go(Number(scrub.value), false));
    for (const box of [document.querySelector('.controls')!, this.el('zoom')])
      box.addEventListener('click', (e) => {
        const act = (e.target as HTMLElement).closest<HTMLElement>('[data-act]')?.dataset.act;
        if (act) this.act(act);
      });
    app.addEventListener('click', (e) => {
      const t = e.target as Element;
      const v = t.closest<HTMLElement>('[data-violation]');
      if (v) return this.selectViolation(Number(v.dataset.violation));
      const ev = t.closest<HTMLElement>('[data-ev]');
      if (ev) return this.go(Number(ev.dataset.ev));
      const a = t.closest<HTMLElement>('[data-actor]');
      if (a) {
        this.st.actor = Number(a.dataset.actor);
        this.st.violation = -1;
        this.schedule();
      }
    });
    document.addEventListener('keydown', (e) => {
      if ((e.target as HTMLElement).tagName === 'INPUT' && e.key !== 'ArrowLeft' && e.key !== 'ArrowRight')
        return;
      const map: Record<string, string> = {
        ArrowRight: e.shiftKey ? 'next-msg' : 'next',
        ArrowLeft: e.shiftKey ? 'prev-msg' : 'prev',
        Home: 'first',
        End: 'last',
      };
      const act = map[e.key];
      if (act) {
        e.preventDefault();
        this.act(act);
      }
    });
  }

  private act(act: string): void {
    const { k, actor } = this.st;
    const run = this.run;
    const to: Record<string, () => number> = {
      first: () => 0,
      last: () => run.n - 1,
      prev: () => k - 1,
      next: () => k + 1,
      'prev-msg': () => run.neighbourMessage(k, -1),
      'next-msg': () => run.neighbourMessage(k, 1),
      'prev-actor': () => run.neighbourEventOf(actor, k, -1),
      'next-actor': () => run.neighbourEventOf(actor, k, 1),
    };
    if (act === 'play') {
      this.togglePlay();
      return;
    }
    if (act === 'zoom') {
      const fit = this.el('charts').classList.toggle('fit');
      this.el('zoom').textContent = fit ? 'actual size' : 'fit to width';
      return;
    }
    const f = to[act];
    if (!f) return;
    const target = f();
    if (target >= 0 && target < run.n) this.go(target);
  }

  private togglePlay(): void {
    const btn = this.el('play');
    if (this.st.playing !== undefined) {
      clearInterval(this.st.playing);
      this.st.playing = undefined;
      btn.textContent = '▶ play';
      return;
    }
    btn.textContent = '⏸ pause';
    this.st.playing = window.setInterval(() => {
      if (this.st.k >= this.run.n - 1) this.togglePlay();
      else this.go(this.st.k + 1);
    }, 250);
  }

  /** Moves the cursor; a move away from a selected violation's event keeps it listed, not shown. */
  private go(k: number, syncScrub = true): void {
    this.st.k = Math.max(0, Math.min(this.run.n - 1, k));
    if (syncScrub) (this.el('scrub') as HTMLInputElement).value = String(this.st.k);
    this.schedule();
  }

  private selectViolation(i: number): void {
    const v = this.run.tl.violations[i];
    if (!v) return;
    this.st.violation = i;
    if (v.actor >= 0) this.st.actor = v.actor;
    if (v.ev >= 0) this.go(v.ev);
    else this.go(this.run.eventAtTime(v.atNs * 1000));
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  private render(): void {
    const { k } = this.st;
    const run = this.run;
    const tl = run.tl;
    (this.el('scrub') as HTMLInputElement).value = String(k);
    this.el('now').textContent = `t = ${fmtTime(run.time(k))}`;
    this.el('evno').textContent = `event ${num(k)} / ${num(Math.max(0, run.n - 1))}`;
    const v = this.currentViolation();
    document.querySelectorAll('#violations [data-violation]').forEach((li) => {
      li.classList.toggle('selected', Number((li as HTMLElement).dataset.violation) === this.st.violation);
    });
    this.renderActors(v);
    this.renderCharts();
    this.renderEvent();
    this.renderRap(v);
    const lanes = this.lanes();
    this.el('sequence').innerHTML = sequenceSvg(
      run,
      k,
      lanes,
      lanes.map((a) => tl.actors[a]?.label ?? String(a)),
    );
    // Keep the current row in view inside the diagram's own box (never scroll the page).
    const box = this.el('sequence');
    const cur = box.querySelector<SVGGElement>('.row.current');
    if (cur) {
      const r = cur.getBoundingClientRect();
      const b = box.getBoundingClientRect();
      if (r.top < b.top || r.bottom > b.bottom) box.scrollTop += r.top - b.top - (b.height - r.height) / 2;
    }
    this.writeHash();
  }

  /** The selected violation, when the cursor is on its event. */
  private currentViolation(): TimelineViolation | undefined {
    const v = this.run.tl.violations[this.st.violation];
    return v && v.ev === this.st.k ? v : undefined;
  }

  private renderViolations(): void {
    const tl = this.run.tl;
    const items = tl.violations.map((v, i) => {
      const core = tl.actors[v.actor]?.label ?? `pCPU ${v.pcpu}`;
      return `<li class="violation" data-violation="${i}" tabindex="0"><div><b>${esc(v.property)}</b> at ${esc(fmtTime(v.atNs * 1000))} on ${esc(core)}${v.occurrences > 1 ? ` <span class="muted">(${num(v.occurrences)} uses)</span>` : ''}</div><div class="promise">promise: ${esc(v.promise)}</div><div class="because">${esc(v.because)}</div></li>`;
    });
    this.el('violations').innerHTML = items.join('') || '<li class="muted">none: every promise held</li>';
  }

  private renderActors(v: TimelineViolation | undefined): void {
    const { k, actor } = this.st;
    const run = this.run;
    const tl = run.tl;
    const cur = { src: tl.events.src[k], dst: tl.events.dst[k] };
    const html = tl.groups
      .map((g) => {
        const rows = tl.actors
          .filter((a) => a.group === g.id)
          .map((a) => {
            const state = run.stateAt(a.index, k);
            const cls = [
              'actor',
              a.index === actor ? 'selected' : '',
              a.index === cur.dst ? 'receiving' : '',
              a.index === cur.src && cur.src !== cur.dst ? 'sending' : '',
              v && (a.index === v.actor || a.index === tl.events.dst[v.ev]) ? 'involved' : '',
            ]
              .filter(Boolean)
              .join(' ');
            return `<li class="${cls}" data-actor="${a.index}" title="${esc(a.id)}"><span class="name">${esc(a.label)}</span><span class="state">${esc(state)}</span></li>`;
          })
          .join('');
        return `<div class="group"><h4>${esc(g.label)}</h4><ul class="actors">${rows}</ul></div>`;
      })
      .join('');
    this.el('actors').innerHTML = html;
  }

  /** Actors whose charts are shown: the selected one, then the current event's receiver and sender. */
  private focusActors(): number[] {
    const { k, actor } = this.st;
    const ev = this.run.tl.events;
    const list = [actor, ev.dst[k]!, ev.src[k]!].filter((a) => a !== undefined && a >= 0);
    return [...new Set(list)].slice(0, 3);
  }

  private renderCharts(): void {
    const run = this.run;
    const tl = run.tl;
    const focus = this.focusActors();
    const box = this.el('charts');
    if (focus.join(',') !== this.chartActors.join(',')) {
      this.chartActors = focus;
      box.innerHTML = focus
        .map((a) => {
          const info = tl.actors[a];
          const chart = info ? tl.charts[info.kind] : undefined;
          const svg = chart ? chart.svg : '<p class="muted">no chart for this kind of actor</p>';
          return `<figure class="chart" data-chart-actor="${a}"><figcaption><b>${esc(info?.label ?? a)}</b> <span class="chart-state"></span></figcaption><div class="chart-svg">${svg}</div></figure>`;
        })
        .join('');
    }
    const { k } = this.st;
    for (const a of focus) {
      const fig = box.querySelector<HTMLElement>(`[data-chart-actor="${a}"]`);
      const info = tl.actors[a];
      const chart = info ? tl.charts[info.kind] : undefined;
      if (!fig || !chart) continue;
      const label = run.stateAt(a, k);
      const active = new Set(activeStateIds(chart.machineId, label));
      fig.querySelector('.chart-state')!.textContent = label ? `in ${label}` : '';
      let leaf: SVGGElement | undefined;
      fig.querySelectorAll<SVGGElement>('[data-state]').forEach((g) => {
        const on = active.has(g.dataset.state ?? '');
        g.classList.toggle('active', on);
        if (on) leaf = g;
      });
      // At actual size the chart scrolls: keep the active (innermost) state in view.
      const scroller = fig.querySelector<HTMLElement>('.chart-svg');
      if (leaf && scroller && !this.el('charts').classList.contains('fit')) {
        const box = leaf.getBoundingClientRect();
        const view = scroller.getBoundingClientRect();
        if (
          box.left < view.left ||
          box.right > view.right ||
          box.top < view.top ||
          box.bottom > view.bottom
        ) {
          scroller.scrollLeft += box.left - view.left - (view.width - box.width) / 2;
          scroller.scrollTop += box.top - view.top - (view.height - box.height) / 2;
        }
      }
      // The transition the current event fired, when this actor received it.
      const ev = tl.events;
      const fired = ev.dst[k] === a ? (tl.types[ev.type[k]!] ?? '') : '';
      const prevEv = fired ? run.lastEventOf(a, k - 1) : -1;
      const before = new Set(
        prevEv >= 0 ? activeStateIds(chart.machineId, tl.states[ev.state[prevEv]!] ?? '') : [],
      );
      before.add(chart.machineId);
      fig.querySelectorAll<SVGGElement>('.transition').forEach((g) => {
        const on = fired !== '' && g.dataset.event === fired && before.has(g.dataset.source ?? '');
        g.classList.toggle('fired', on);
      });
    }
  }

  private renderEvent(): void {
    const { k } = this.st;
    const run = this.run;
    const tl = run.tl;
    const ev = tl.events;
    const type = tl.types[ev.type[k]!] ?? '';
    const src = tl.actors[ev.src[k]!]?.label ?? '?';
    const dst = tl.actors[ev.dst[k]!]?.label ?? '?';
    const state = tl.states[ev.state[k]!] ?? '';
    const isMsg = ev.src[k] !== ev.dst[k];
    const obs = run.obsOf(k);
    const head =
      type === 'trace.start'
        ? `<b>${esc(dst)}</b> at the start of the window: <span class="state">${esc(state)}</span>`
        : `<b>${esc(type)}</b> ${isMsg ? `${esc(src)} → ${esc(dst)}` : `to ${esc(dst)} (its own continuation)`}, ${isMsg ? `sent ${esc(fmtTime(run.sent[k]!))}, ` : ''}delivered ${esc(fmtTime(run.t[k]!))}; ${esc(dst)} is then in <span class="state">${esc(state)}</span>`;
    const list = obs
      .slice(0, 40)
      .map((o) => `<li><code>${esc(o.kind)}</code> ${esc(shortJson(o.data))}</li>`)
      .join('');
    this.el('event').innerHTML =
      `<p>${head}</p>${obs.length > 0 ? `<p class="muted">observations (${obs.length}):</p><ul class="obs">${list}</ul>` : ''}`;
  }

  private renderRap(v: TimelineViolation | undefined): void {
    const { k, actor } = this.st;
    const run = this.run;
    const tl = run.tl;
    const cap = tl.run.rapEntries;
    const label = tl.actors[actor]?.label ?? String(actor);
    let html: string;
    if (v && v.actor >= 0) {
      const consumed = new Set<number>();
      for (const o of run.obsOf(v.ev)) {
        if (o.kind !== 'rap.use') continue;
        if (v.producerCtx !== undefined && o.data.producer !== v.producerCtx) continue;
        consumed.add(Number(o.data.pushedAt));
      }
      const hl: Highlight = { consumed };
      if (v.producerCtx !== undefined) hl.producerCtx = v.producerCtx;
      const before = run.rapAt(v.actor, v.ev, true);
      const after = run.rapAt(v.actor, v.ev);
      html =
        rapStackHtml(
          `${tl.actors[v.actor]?.label ?? ''}: as the RETs found it`,
          before,
          cap,
          this.colours,
          hl,
          `before event ${num(v.ev)}; the <span class="consumed-key">outlined</span> entries are the ones ${esc(v.property)} was found on (${consumed.size})`,
        ) + rapStackHtml(`${tl.actors[v.actor]?.label ?? ''}: after the event`, after, cap, this.colours);
    } else {
      const rap = run.rapAt(actor, k);
      html = rapStackHtml(
        `${label} at ${fmtTime(run.time(k))}`,
        rap,
        cap,
        this.colours,
        undefined,
        rap.ev >= 0 ? `as of event ${num(rap.ev)}` : 'no RAP recorded for this actor yet',
      );
    }
    this.el('rap').innerHTML = html;
    // Bring the entries the violation was found on into view.
    const first = this.el('rap').querySelector<HTMLElement>('.rap-entry.consumed');
    if (first) {
      const list = first.closest<HTMLElement>('.rap-list')!;
      list.scrollTop = Math.max(0, first.offsetTop - list.offsetTop - 40);
    }
    const cores = this.cores.map((a) => ({
      label: tl.actors[a]?.label ?? String(a),
      actor: a,
      rap: run.rapAt(a, k),
      selected: a === actor,
    }));
    this.el('rap-grid').innerHTML = rapGridSvg(cores, cap, this.colours);
  }

  /** Lanes of the sequence diagram: every actor when few, else the selected one and its peers. */
  private lanes(): number[] {
    const tl = this.run.tl;
    if (tl.actors.length <= 8) return tl.actors.map((a) => a.index);
    const { k, actor } = this.st;
    const ev = tl.events;
    const set = new Set<number>([ev.dst[k]!, ev.src[k]!, actor]);
    for (let i = Math.max(0, k - 24); i <= Math.min(this.run.n - 1, k + 24) && set.size < 8; i++) {
      if (ev.src[i] !== ev.dst[i]) {
        set.add(ev.src[i]!);
        set.add(ev.dst[i]!);
      }
    }
    return [...set].sort((a, b) => a - b).slice(0, 8);
  }

  private readHash(): void {
    const p = new URLSearchParams(location.hash.slice(1));
    const ev = Number(p.get('ev'));
    const actor = Number(p.get('actor'));
    if (Number.isInteger(ev) && ev >= 0 && ev < this.run.n) this.st.k = ev;
    if (p.has('actor') && Number.isInteger(actor) && actor >= 0 && actor < this.run.tl.actors.length)
      this.st.actor = actor;
  }

  private writeHash(): void {
    history.replaceState(null, '', `#ev=${this.st.k}&actor=${this.st.actor}`);
  }
}

function shortJson(d: unknown): string {
  const s = JSON.stringify(d);
  return s.length > 220 ? `${s.slice(0, 217)}…` : s;
}

void load();
