/** Escapes text for HTML and SVG markup. */
export function esc(s: unknown): string {
  return String(s).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

/** Thousands separators. */
export function num(n: number): string {
  return n.toLocaleString('en-US');
}
