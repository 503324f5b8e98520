/**
 * Escaping for text that reaches HTML or SVG (the report, the cell drawings): config.json and the results files are
 * user files, and a value such as `<img src=x onerror=...>` must show as text, never run.
 */
export const esc = (v: unknown): string =>
  String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
