// Docker's plain tables (images, ps, stats): columns padded to their widest cell plus three spaces,
// the last column left unpadded.
export function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => `${r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]! + 3))).join('')}\n`).join('');
}
