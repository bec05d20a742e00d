// docker's --format for listings (ps, images, network ls, volume ls) and inspect: "table" (the usual
// table), "table TEMPLATE" (a header and aligned columns), "json" (one JSON object per line) or a
// Go template rendered once per item. As in docker's CLI, a literal \t or \n in a listing's format
// is a tab or a newline.
import { UsageError } from '../client/errors.js';
import { GoTemplate, TemplateError } from './go-template.js';

function template(source: string): GoTemplate {
  try { return new GoTemplate(source); } catch (e) {
    throw e instanceof TemplateError ? new UsageError(e.message) : e;
  }
}

function render(t: GoTemplate, data: unknown): string {
  try { return t.render(data); } catch (e) {
    throw e instanceof TemplateError ? new UsageError(e.message) : e;
  }
}

/** docker's tabwriter for table formats: cells padded to their column's widest plus 3, at least 10 wide. */
function alignColumns(lines: string[]): string {
  const cells = lines.map((l) => l.split('\t'));
  const widths: number[] = [];
  for (const row of cells) row.forEach((c, i) => { if (i < row.length - 1) widths[i] = Math.max(widths[i] ?? 0, c.length + 3, 10); });
  return cells.map((row) => `${row.map((c, i) => (i < row.length - 1 ? c.padEnd(widths[i]!) : c)).join('').trimEnd()}\n`).join('');
}

/**
 * A listing in the given --format. `rows` are the items as docker's format fields name them;
 * `headers` the column titles of those fields ("ID" → "CONTAINER ID"; others are upper-cased).
 */
export function formatList(format: string | undefined, rows: Array<Record<string, unknown>>, headers: Record<string, string>, table: () => string): string {
  if (format === undefined || format.trim() === 'table') return table();
  if (format.trim() === 'json') return rows.map((r) => `${JSON.stringify(r)}\n`).join('');
  const isTable = format.startsWith('table ');
  const source = (isTable ? format.slice('table '.length) : format).trim().replaceAll('\\t', '\t').replaceAll('\\n', '\n');
  const t = template(source);
  const lines = rows.map((r) => render(t, r));
  if (!isTable) return lines.map((l) => `${l}\n`).join('');
  // every field's title, those of an empty listing too: a field named in the template is its title
  const titles = new Proxy({}, { get: (_t, key) => (typeof key === 'string' ? headers[key] ?? key.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase() : undefined) });
  return alignColumns([render(t, titles), ...lines].join('\n').split('\n'));
}

/** inspect -f/--format: each item rendered with the template, one per line ("json": as JSON). */
export function formatEach(format: string, items: unknown[]): string {
  if (format.trim() === 'json') return items.map((i) => `${JSON.stringify(i)}\n`).join('');
  const t = template(format);
  return items.map((i) => `${render(t, i)}\n`).join('');
}
