// Transfer progress: per-blob bars redrawn in place on a TTY (like docker pull), plain lines
// otherwise, nothing with --quiet or --json. Output goes to stderr so stdout stays for results.
import type { Writable } from 'node:stream';

export interface Progress {
  /** A blob transfer begins. */
  start(id: string, label: string, total: number): void;
  /** Absolute bytes done for a blob. */
  update(id: string, done: number): void;
  /** A blob is finished: "done", "exists", "mounted", "resumed from 12.0 MB"… */
  finish(id: string, status: string): void;
  /** A free-form line (manifest pushed, tag written…). */
  log(line: string): void;
  /** Stop redrawing (end of the command). */
  close(): void;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  do { v /= 1000; i++; } while (v >= 1000 && i < units.length - 1);
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export class SilentProgress implements Progress {
  start(): void {}
  update(): void {}
  finish(): void {}
  log(): void {}
  close(): void {}
}

/** One line when a blob starts and one when it ends; no redrawing. */
export class LineProgress implements Progress {
  constructor(private readonly out: Writable = process.stderr) {}
  private readonly labels = new Map<string, string>();
  start(id: string, label: string, total: number): void {
    this.labels.set(id, label);
    this.out.write(`${label}: copying ${formatBytes(total)}\n`);
  }
  update(): void {}
  finish(id: string, status: string): void {
    this.out.write(`${this.labels.get(id) ?? id}: ${status}\n`);
  }
  log(line: string): void { this.out.write(`${line}\n`); }
  close(): void {}
}

interface Bar { label: string; total: number; done: number; status?: string }

/** Per-blob bars, redrawn at most every 100 ms. */
export class TtyProgress implements Progress {
  private readonly bars = new Map<string, Bar>();
  private drawn = 0;
  private timer?: NodeJS.Timeout;

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {}

  start(id: string, label: string, total: number): void {
    this.bars.set(id, { label, total, done: 0 });
    this.schedule();
  }
  update(id: string, done: number): void {
    const b = this.bars.get(id);
    if (b) { b.done = done; this.schedule(); }
  }
  finish(id: string, status: string): void {
    const b = this.bars.get(id);
    if (b) { b.status = status; b.done = b.total; this.schedule(); }
  }
  log(line: string): void {
    // the line goes above the bars: erase them, print it, draw them again below
    this.out.write(`${this.drawn ? `\x1b[${this.drawn}F` : ''}\x1b[J${line}\n`);
    this.drawn = 0;
    this.draw();
  }
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.draw();
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => { this.timer = undefined; this.draw(); }, 100);
  }

  private draw(): void {
    const width = Math.max(40, (this.out.columns || 80) - 1);
    const lines: string[] = [];
    for (const b of this.bars.values()) {
      if (b.status) { lines.push(`${b.label}: ${b.status}`.slice(0, width)); continue; }
      const pct = b.total ? b.done / b.total : 0;
      const barWidth = Math.max(10, Math.min(40, width - b.label.length - 30));
      const filled = Math.round(pct * barWidth);
      const bar = `[${'='.repeat(Math.max(0, filled - 1))}${filled ? '>' : ''}${' '.repeat(barWidth - filled)}]`;
      lines.push(`${b.label}: ${bar} ${formatBytes(b.done)}/${formatBytes(b.total)}`.slice(0, width));
    }
    let s = '';
    if (this.drawn) s += `\x1b[${this.drawn}F`;
    for (const l of lines) s += `\x1b[2K${l}\n`;
    this.out.write(s);
    this.drawn = lines.length;
  }
}

export function createProgress(opts: { quiet?: boolean; json?: boolean; stream?: NodeJS.WriteStream }): Progress {
  const out = opts.stream ?? process.stderr;
  if (opts.quiet || opts.json) return new SilentProgress();
  if (out.isTTY && process.env.TERM !== 'dumb') return new TtyProgress(out);
  return new LineProgress(out);
}
