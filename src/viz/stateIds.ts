// The one rule that maps a trace's state labels to chart state ids, shared by `rapsim charts`'
// checks (src/viz/actors.ts) and the viewer (web/src/main.ts), which highlights the active states.
// No imports: the viewer's bundle takes this file as it is.

/**
 * The active state ids for a trace state label: `running` → [`pcpu.running`];
 * `{"guest":"running"}` → [`vcpu.guest`, `vcpu.guest.running`]; parallel values give every region;
 * an empty label (no state recorded) gives none.
 */
export function activeStateIds(machineId: string, label: string): string[] {
  let value: unknown = label;
  if (label.startsWith('{')) {
    try {
      value = JSON.parse(label);
    } catch {
      value = label;
    }
  }
  const out: string[] = [];
  const visit = (prefix: string, v: unknown): void => {
    if (typeof v === 'string') out.push(`${prefix}.${v}`);
    else if (v && typeof v === 'object') {
      for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
        out.push(`${prefix}.${k}`);
        visit(`${prefix}.${k}`, child);
      }
    }
  };
  if (label) visit(machineId, value);
  return out;
}
