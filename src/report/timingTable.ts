import { formatDuration } from '../actors/time.js';
import type { TimingRow } from '../hw/timing.js';

/**
 * The timing table in force for a run (`rapsim run --latency`): every cost, the value the run
 * uses (after `hardware.latency` / `host.latency`), its table default, tag and source.
 */
export function renderTimingTable(rows: readonly TimingRow[]): string {
  const used = (r: TimingRow): string => (r.unit === 'count' ? String(r.ps) : formatDuration(r.ps));
  const width = Math.max(...rows.map((r) => r.key.length));
  const lines = [`${'cost (key)'.padEnd(width)}  in force    default        tag  source — what`];
  for (const r of rows) {
    lines.push(
      `${r.key.padEnd(width)}  ${used(r).padEnd(10)}  ${`${r.value} ${r.unit}`.padEnd(13)}  ${r.tag.padEnd(3)}  ${r.source} — ${r.what}${r.reference ? ` [reference only: ${r.reference}]` : ''}`,
    );
  }
  lines.push('tags: S stated by the source, S2 seen through secondary quotes, E estimate (docs/timing.md)');
  lines.push('reference only: a figure no model reads (it cannot be overridden)');
  return lines.join('\n');
}
