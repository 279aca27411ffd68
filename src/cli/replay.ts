/** Quotes a shell word only when it needs it. */
function sh(word: string): string {
  return /^[\w./:=@,+-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * The exact command that replays a run: the scenario file, its seed and every
 * override. Printed with every report and every failure (TigerBeetle's habit).
 */
export function replayCommand(
  file: string,
  o: { seed: number; until?: string | undefined; sets: readonly string[] },
): string {
  // No --workers: results do not depend on it, and the report must not either.
  const parts = ['rapsim', 'run', file, '--seed', String(o.seed)];
  if (o.until) parts.push('--until', o.until);
  for (const s of o.sets) parts.push('--set', s);
  return parts.map(sh).join(' ');
}
