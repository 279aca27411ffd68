import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layer rules of docs/architecture.md, as a test so that they cannot rot. `runtime` lists
 * what a layer may import; `typeOnly` what it may import with `import type` only.
 */
const RULES: Record<string, { runtime: string[]; typeOnly?: string[] }> = {
  actors: { runtime: [] },
  scenario: { runtime: ['actors', 'hw'] },
  hw: { runtime: ['actors'] },
  os: { runtime: ['actors', 'hw'], typeOnly: ['scenario'] },
  // vcpu and host are software running on a core (like os): they execute instructions on the
  // hardware model through its methods, so they import hw at run time, never the other way.
  vcpu: { runtime: ['actors', 'hw', 'os'], typeOnly: ['scenario'] },
  host: { runtime: ['actors', 'hw', 'vcpu', 'os'], typeOnly: ['scenario'] },
  check: { runtime: ['actors', 'hw'] },
  workers: { runtime: ['actors', 'hw', 'os', 'vcpu', 'host', 'check', 'scenario'] },
  report: { runtime: ['actors', 'check', 'scenario', 'hw'], typeOnly: ['workers', 'os', 'host'] },
  viz: { runtime: ['actors', 'hw', 'os', 'vcpu', 'host', 'check', 'scenario', 'workers', 'report'] },
  // Studies: plans, piscina sweep threads, the BullMQ backend (issue 5).
  sweep: { runtime: ['actors', 'scenario', 'check', 'report', 'workers'] },
  cli: {
    runtime: ['actors', 'hw', 'os', 'vcpu', 'host', 'check', 'scenario', 'workers', 'report', 'viz', 'sweep'],
  },
  bench: {
    runtime: ['actors', 'hw', 'os', 'vcpu', 'host', 'check', 'scenario', 'workers', 'report', 'cli', 'sweep'],
  },
};

/** Layers where wall-clock time and host randomness are allowed (they are not the model). */
const WALL_CLOCK_OK = new Set(['workers', 'sweep', 'cli', 'viz', 'bench']);

const SRC = join(import.meta.dirname, '../../src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : /\.(ts|mjs)$/.test(f) ? [p] : [];
  });
}

function layerOf(path: string): string {
  return relative(SRC, path).split('/')[0]!;
}

const IMPORT = /^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+['"](\.[^'"]+)['"]/gm;

describe('layer rules (docs/architecture.md)', () => {
  const all = files(SRC);

  it('knows every layer', () => {
    const layers = new Set(all.map(layerOf));
    for (const l of layers) expect(Object.keys(RULES), `layer src/${l} has no rule`).toContain(l);
  });

  it('imports only downward', () => {
    const problems: string[] = [];
    for (const f of all) {
      const from = layerOf(f);
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(IMPORT)) {
        const target = join(f, '..', m[3]!);
        const to = layerOf(target);
        if (to === from || to.startsWith('..')) continue;
        const rule = RULES[from]!;
        const typeOnly = Boolean(m[2]);
        const ok = rule.runtime.includes(to) || (typeOnly && (rule.typeOnly ?? []).includes(to));
        if (!ok) problems.push(`${relative(SRC, f)} imports ${typeOnly ? 'type ' : ''}src/${to} (${m[3]})`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('keeps wall-clock time, host randomness and real timers out of the model', () => {
    const banned = /\b(Math\.random|Date\.now|performance\.now|setTimeout|setInterval)\s*\(/;
    const problems = all
      .filter((f) => !WALL_CLOCK_OK.has(layerOf(f)))
      .flatMap((f) =>
        readFileSync(f, 'utf8')
          .split('\n')
          .map((line, i) => ({ line, i }))
          // A method *definition* (the kernel's own xstate clock) is not a use of a real timer.
          .filter(({ line }) => banned.test(line) && !/^\s*(\*|\/\/|\w+\(\w+: )/.test(line))
          .map(({ i }) => `${relative(SRC, f)}:${i + 1}`),
      );
    expect(problems).toEqual([]);
  });
});
