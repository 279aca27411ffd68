import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadScenario } from '../../src/scenario/load.js';
import { keptEvents } from '../../src/viz/recorded.js';
import type { TimelineFile } from '../../src/viz/timelineFormat.js';
import { runSimulation, shutdownWorkers } from '../../src/workers/runSimulation.js';
import { RAP_ENTRY_WIDTH, type RapProbe } from '../../src/workers/traceProbe.js';
import { rapsim, tempDir } from '../helpers/cli.js';

afterAll(async () => {
  await shutdownWorkers();
});

interface Ev {
  name?: unknown;
  ph?: unknown;
  pid?: unknown;
  tid?: unknown;
  ts?: unknown;
  dur?: unknown;
  id?: unknown;
  bp?: unknown;
  s?: unknown;
  args?: Record<string, unknown>;
}

/**
 * The Trace Event format's required fields (the JSON Object Format): `traceEvents` is a list;
 * every event has a string `name`, a known `ph` and an integer `pid`; timed events have a
 * numeric, non-negative `ts` (µs) and a `tid`; `X` has `dur` ≥ 0; flow `s`/`f` share an `id`
 * and `f` binds to its enclosing slice; instants have a scope; counters carry numeric args;
 * metadata names processes and threads. Returns the problems found.
 */
function validateTrace(doc: unknown): string[] {
  const problems: string[] = [];
  const d = doc as { traceEvents?: unknown; displayTimeUnit?: unknown };
  if (!Array.isArray(d.traceEvents)) return ['traceEvents is not a list'];
  if (d.displayTimeUnit !== undefined && !['ms', 'ns'].includes(String(d.displayTimeUnit)))
    problems.push('displayTimeUnit');
  const flows = new Map<unknown, { s?: Ev; f?: Ev }>();
  (d.traceEvents as Ev[]).forEach((e, i) => {
    const at = `event ${i} (${String(e.ph)} ${String(e.name)})`;
    if (typeof e.name !== 'string' || e.name === '') problems.push(`${at}: name`);
    if (!['X', 'i', 'C', 'M', 's', 'f'].includes(String(e.ph))) problems.push(`${at}: ph`);
    if (!Number.isInteger(e.pid)) problems.push(`${at}: pid`);
    if (e.ph === 'M') {
      if (typeof e.args?.name !== 'string' && typeof e.args?.sort_index !== 'number')
        problems.push(`${at}: args`);
      return;
    }
    if (typeof e.ts !== 'number' || !Number.isFinite(e.ts) || e.ts < 0) problems.push(`${at}: ts`);
    if (e.ph !== 'C' && !Number.isInteger(e.tid)) problems.push(`${at}: tid`);
    if (e.ph === 'X' && (typeof e.dur !== 'number' || e.dur < 0)) problems.push(`${at}: dur`);
    if (e.ph === 'i' && !['g', 'p', 't'].includes(String(e.s))) problems.push(`${at}: scope`);
    if (e.ph === 'C' && !Object.values(e.args ?? {}).every((v) => typeof v === 'number'))
      problems.push(`${at}: counter args`);
    if (e.ph === 's' || e.ph === 'f') {
      const f = flows.get(e.id) ?? {};
      f[e.ph] = e;
      flows.set(e.id, f);
      if (e.ph === 'f' && e.bp !== 'e') problems.push(`${at}: bp`);
    }
  });
  for (const [id, f] of flows) {
    if (!f.s || !f.f) problems.push(`flow ${String(id)} lacks its start or end`);
    else if ((f.s.ts as number) > (f.f.ts as number))
      problems.push(`flow ${String(id)} ends before it starts`);
  }
  return problems;
}

/** State slices of each thread must tile its time: no overlap between consecutive ones. */
function stateSlices(events: Ev[]): Map<number, { ts: number; dur: number; name: string }[]> {
  const by = new Map<number, { ts: number; dur: number; name: string }[]>();
  for (const e of events) {
    if (e.ph !== 'X' || (e as { cat?: string }).cat !== 'state') continue;
    const list = by.get(e.tid as number) ?? [];
    list.push({ ts: e.ts as number, dur: e.dur as number, name: e.name as string });
    by.set(e.tid as number, list);
  }
  return by;
}

describe('trace.json from run --out', () => {
  it('has the Trace Event format required fields, one thread per actor, states, the violation and RAP counters', async () => {
    const dir = tempDir('rapsim-trace-');
    const r = await rapsim(['run', 'scenarios/bare-metal/litmus-stuffing-too-short.yaml', '--out', dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /wrote .*: report\.json \(\d+ kB\), trace\.json \(\d+ kB\), timeline\.json \(\d+ kB\)/,
    );
    expect(r.stdout).toContain("trace: 4 events of the run's 4");
    expect(r.stdout).toContain(`rapsim view ${dir}`);
    const doc = JSON.parse(readFileSync(join(dir, 'trace.json'), 'utf8')) as { traceEvents: Ev[] };
    expect(validateTrace(doc)).toEqual([]);
    const ev = doc.traceEvents;
    expect(ev.filter((e) => e.ph === 'M' && e.name === 'process_name').map((e) => e.args?.name)).toEqual([
      'host',
    ]);
    expect(ev.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => e.args?.name)).toEqual([
      'pCPU 0',
    ]);
    const slices = stateSlices(ev).get(1)!;
    expect(slices[0]).toMatchObject({ ts: 0, name: 'running' });
    expect(slices.reduce((a, s) => a + s.dur, 0)).toBeCloseTo(20, 6);
    const v = ev.find((e) => e.ph === 'i' && e.name === 'rap-promised-clear')!;
    expect(v).toBeDefined();
    expect(v.ts).toBeCloseTo(1.958, 6);
    expect(v.args?.promise).toContain('RAP stuffing of 32 CALLs');
    const counters = ev.filter((e) => e.ph === 'C');
    expect(counters.map((c) => c.args?.host)).toEqual([40, 64, 24, 32]);
  });

  it('draws flows for IPIs and acknowledgements, identically for 1 and 2 workers', async () => {
    const outs = await Promise.all(
      ['1', '2'].map(async (w) => {
        const dir = tempDir('rapsim-trace-');
        const r = await rapsim([
          'run',
          'scenarios/bare-metal/shootdown-study-16c-2s.yaml',
          '--until',
          '50us',
          '--workers',
          w,
          '--out',
          dir,
          '--quiet',
        ]);
        expect(r.code).toBe(0);
        return dir;
      }),
    );
    const [a, b] = outs.map((d) => readFileSync(join(d!, 'trace.json'), 'utf8'));
    expect(b).toBe(a);
    expect(readFileSync(join(outs[1]!, 'timeline.json'), 'utf8')).toBe(
      readFileSync(join(outs[0]!, 'timeline.json'), 'utf8'),
    );
    const doc = JSON.parse(a!) as { traceEvents: Ev[] };
    expect(validateTrace(doc)).toEqual([]);
    const flowNames = new Set(doc.traceEvents.filter((e) => e.ph === 's').map((e) => e.name));
    expect(flowNames).toEqual(new Set(['FLUSH_IPI', 'FLUSH_ACK']));
    expect(doc.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name')).toHaveLength(16);
    // Slices on a thread never overlap (Perfetto needs proper nesting).
    for (const [, list] of stateSlices(doc.traceEvents)) {
      for (let i = 1; i < list.length; i++) {
        expect(list[i]!.ts).toBeGreaterThanOrEqual(list[i - 1]!.ts + list[i - 1]!.dur - 1e-9);
      }
    }
    const tl = JSON.parse(readFileSync(join(outs[0]!, 'timeline.json'), 'utf8')) as TimelineFile;
    expect(tl.shootdowns.latencyNs.length).toBeGreaterThan(0);
    expect(tl.actors).toHaveLength(16);
  });

  it('keeps a window, a limit and a sample, and says so in the summary', async () => {
    const dir = tempDir('rapsim-trace-');
    const r = await rapsim([
      'run',
      // A VM scenario: its pCPUs' continuations without observations are what sampling drops.
      'scenarios/overcommit/overcommit-2x.yaml',
      '--until',
      '100us',
      '--out',
      dir,
      '--trace-window',
      '10us..90us',
      '--trace-limit',
      '300',
      '--trace-sample',
      '3',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/trace: [\d,]+ of 300 recorded events \(--trace-sample\)/);
    expect(r.stdout).toContain('trace cut at');
    const tl = JSON.parse(readFileSync(join(dir, 'timeline.json'), 'utf8')) as TimelineFile;
    expect(tl.window).toMatchObject({ fromPs: 10_000_000, truncated: true, sampleEvery: 3, recorded: 300 });
    let t = 0;
    const times = tl.events.dt.map((d) => {
      t += d;
      return t;
    });
    expect(times.every((x) => x >= 10_000_000 && x < 90_000_000)).toBe(true);
    expect(tl.events.lag.every((x) => x >= 0)).toBe(true);
    const doc = JSON.parse(readFileSync(join(dir, 'trace.json'), 'utf8')) as { traceEvents: Ev[] };
    expect(validateTrace(doc)).toEqual([]);
  });

  it('puts VMs in their own processes, knows a core runs KVM, and finds a violation on the vCPU that ran the RET', async () => {
    const dir = tempDir('rapsim-trace-');
    const r = await rapsim(['run', 'scenarios/vm/nested-naive.yaml', '--out', dir, '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(readFileSync(join(dir, 'trace.json'), 'utf8')) as { traceEvents: Ev[] };
    expect(validateTrace(doc)).toEqual([]);
    const names = (what: string) =>
      doc.traceEvents.filter((e) => e.ph === 'M' && e.name === what).map((e) => [e.pid, e.args?.name]);
    expect(names('process_name')).toEqual([
      [1, 'host'],
      [2, 'VM l1'],
      [3, 'VM l2'],
    ]);
    expect(names('thread_name')).toEqual([
      [1, 'pCPU 0'],
      [2, 'vCPU l1/0'],
      [3, 'vCPU l2/0'],
    ]);
    expect(new Set(doc.traceEvents.filter((e) => e.ph === 's').map((e) => e.name))).toEqual(
      new Set(['VMRUN', 'VMEXIT']),
    );
    const tl = JSON.parse(readFileSync(join(dir, 'timeline.json'), 'utf8')) as TimelineFile;
    expect(tl.actors.map((a) => [a.id, a.kind, a.group])).toEqual([
      ['pcpu:0000', 'host', 'host'],
      ['vcpu:000:0000', 'vcpu', 'vm:l1'],
      ['vcpu:001:0000', 'vcpu', 'vm:l2'],
    ]);
    expect(Object.keys(tl.charts).sort()).toEqual(['host', 'vcpu']);
    // Every RAP change is the core's, even when a vCPU's event made it.
    expect(new Set(tl.rap.actor)).toEqual(new Set([0]));
    const v = tl.violations[0]!;
    expect(v.property).toBe('rap-nested');
    expect(v.actor).toBe(0);
    expect(tl.events.dst[v.ev]).toBe(2);
    expect(v.producerPushedPs).toBeGreaterThan(0);
  });

  it('refuses trace flags without --out and bad values (exit 2)', async () => {
    const f = 'scenarios/bare-metal/litmus-stuffing-too-short.yaml';
    const a = await rapsim(['run', f, '--trace-window', '1us..2us']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('--trace-window: expected --out DIR as well');
    const dir = tempDir('rapsim-trace-');
    const cases = [
      ['--trace-window', '5us..1us', 'expected FROM < TO'],
      ['--trace-window', 'soon', 'expected FROM..TO'],
      ['--trace-limit', '0', 'expected an integer ≥ 1'],
      ['--trace-sample', 'x', 'expected an integer ≥ 1'],
    ] as const;
    const results = await Promise.all(
      cases.map(([flag, value]) => rapsim(['run', f, '--out', dir, flag, value])),
    );
    results.forEach((b, i) => {
      const [flag, value, text] = cases[i]!;
      expect(b.code, `${flag} ${value}`).toBe(2);
      expect(b.stderr).toContain(text);
      expect(b.stderr).not.toMatch(/\n\s+at /);
    });
  });
});

describe('sampling', () => {
  it('carries every RAP change over to the next kept event', async () => {
    // A VM scenario: its pCPUs have continuations without observations to drop.
    const s = loadScenario('scenarios/overcommit/overcommit-2x.yaml', { sets: ['until=200us'] });
    const r = await runSimulation(s, { workers: 1, inProcess: true, trace: {} });
    const full = keptEvents(r.trace!, { every: 1 });
    const thin = keptEvents(r.trace!, { every: 7 });
    expect(thin.length).toBeLessThan(full.length);
    // Rebuild each actor's RAP from both; at every event the thin export kept, they agree.
    const rebuild = (list: typeof full) => {
      const cur = new Map<number, number[]>();
      const at = new Map<string, string>();
      for (const k of list) {
        const p = k.rap as RapProbe | undefined;
        if (p?.host) {
          const prev = cur.get(k.e.dst) ?? [];
          cur.set(k.e.dst, [...prev.slice(0, p.host.keep * RAP_ENTRY_WIDTH), ...p.host.add]);
        }
        at.set(`${k.e.t},${k.e.src},${k.e.seq}`, JSON.stringify(cur.get(k.e.dst) ?? []));
      }
      return at;
    };
    const a = rebuild(full);
    const b = rebuild(thin);
    for (const [key, rap] of b) expect(rap, key).toBe(a.get(key));
    // Messages and state changes are never dropped.
    const msgs = (list: typeof full) => list.filter((k) => k.e.src !== k.e.dst).length;
    expect(msgs(thin)).toBe(msgs(full));
  });
});
