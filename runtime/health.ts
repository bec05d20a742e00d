// Health checks, as docker runs them: the image's HEALTHCHECK or --health-* flags name a command that
// the supervisor runs inside the container (like exec) every interval while it runs. Exit 0 is healthy;
// `retries` failures in a row make it unhealthy, except failures within the start period, which do not
// count. The state (starting, healthy, unhealthy; the last five results) lives in state.json.
import type { ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { UsageError } from '../client/errors.js';
import { allProcs } from './stats.js';

/** What docker keeps in the image config and in a container's config (durations in nanoseconds there, ms here). */
export interface HealthConfig {
  /** ["CMD-SHELL", "cmd"] or ["CMD", "prog", "arg"…]. */
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

/** The image config's Healthcheck (docker's field names, durations in nanoseconds). */
export interface ImageHealthcheck { Test?: string[]; Interval?: number; Timeout?: number; Retries?: number; StartPeriod?: number }

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

export interface HealthResult { start: string; end: string; exitCode: number; output: string }

export interface HealthState { status: HealthStatus; failingStreak: number; log: HealthResult[] }

const DEFAULTS = { intervalMs: 30_000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0 };
const MAX_OUTPUT = 4096;
const LOG_LENGTH = 5;

/** Go's time.ParseDuration for what docker's flags take: "30s", "1m30s", "500ms", "1h". */
export function parseDuration(text: string, flag: string): number {
  const t = text.trim();
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let ms = 0;
  let m: RegExpExecArray | null;
  let at = 0;
  while ((m = re.exec(t))) { ms += Number(m[1]) * unit[m[2]!]!; at = re.lastIndex; }
  if (t === '' || at !== t.length) throw new UsageError(`${flag} ${text}: expected a duration such as 30s, 1m30s or 500ms`);
  return Math.round(ms);
}

export interface HealthFlags { healthCmd?: string; healthInterval?: string; healthTimeout?: string; healthRetries?: string; healthStartPeriod?: string; healthcheck?: boolean }

/**
 * The container's health check: the image's, with the flags on top (docker's rules: --health-cmd
 * replaces the command, the other flags each replace one setting, --no-healthcheck or a NONE test
 * means none). Undefined when there is none.
 */
export function healthConfig(image: ImageHealthcheck | undefined, f: HealthFlags): HealthConfig | undefined {
  const timing = [f.healthInterval, f.healthTimeout, f.healthRetries, f.healthStartPeriod].some((v) => v !== undefined);
  // durations and counts of 0 mean "the image's, else the default", as docker reads them
  if (f.healthcheck === false) {
    if (f.healthCmd !== undefined || timing) throw new UsageError('--no-healthcheck conflicts with the --health-* options');
    return undefined;
  }
  const test = f.healthCmd !== undefined ? ['CMD-SHELL', f.healthCmd] : image?.Test;
  if (!test?.length || test[0] === 'NONE') return undefined; // (timing flags alone change nothing then, as with docker)
  if (test[0] !== 'CMD' && test[0] !== 'CMD-SHELL') throw new UsageError(`the health check ${JSON.stringify(test)} is neither CMD nor CMD-SHELL`);
  if (test.length < 2 || (test[0] === 'CMD-SHELL' && !test[1])) throw new UsageError('the health check has no command');
  // nanoseconds in the image config; a timer cannot wait longer than 2^31-1 ms, nor usefully less than 1
  const clamp = (ms: number) => Math.min(Math.max(Math.round(ms), 1), 2 ** 31 - 1);
  const ns = (v: number | undefined) => (typeof v === 'number' && v > 0 ? clamp(v / 1e6) : undefined);
  const flag = (v: string | undefined, name: string) => {
    const ms = v === undefined ? 0 : parseDuration(v, name);
    return ms > 0 ? clamp(ms) : undefined;
  };
  let retries = typeof image?.Retries === 'number' && image.Retries > 0 ? image.Retries : DEFAULTS.retries;
  if (f.healthRetries !== undefined) {
    const n = Number(f.healthRetries);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`--health-retries ${f.healthRetries}: expected a whole number`);
    if (n > 0) retries = n;
  }
  return {
    test,
    intervalMs: flag(f.healthInterval, '--health-interval') ?? ns(image?.Interval) ?? DEFAULTS.intervalMs,
    timeoutMs: flag(f.healthTimeout, '--health-timeout') ?? ns(image?.Timeout) ?? DEFAULTS.timeoutMs,
    retries,
    startPeriodMs: flag(f.healthStartPeriod, '--health-start-period') ?? ns(image?.StartPeriod) ?? DEFAULTS.startPeriodMs,
  };
}

/** The process arguments of a check: CMD-SHELL runs through /bin/sh -c, as docker does. */
export function healthArgs(h: HealthConfig): string[] {
  return h.test[0] === 'CMD-SHELL' ? ['/bin/sh', '-c', h.test[1]!] : h.test.slice(1);
}

/** The next state after one result (docker's rules, start period included). */
export function nextHealth(prev: HealthState, r: HealthResult, h: HealthConfig, runStarted: number): HealthState {
  const log = [...prev.log, r].slice(-LOG_LENGTH);
  if (r.exitCode === 0) return { status: 'healthy', failingStreak: 0, log };
  // within the start period a failure does not count (unless it was healthy once already)
  if (prev.status === 'starting' && Date.parse(r.start) - runStarted < h.startPeriodMs) return { ...prev, log };
  const failingStreak = prev.failingStreak + 1;
  return { status: failingStreak >= h.retries ? 'unhealthy' : prev.status, failingStreak, log };
}

/**
 * Runs the checks of one run of the container until stop() (its end). `exec` starts the check's
 * process in the container; `update` gets each new state (the supervisor writes it to state.json).
 */
export class HealthMonitor {
  private timer: NodeJS.Timeout | undefined;
  private current: ChildProcess | undefined;
  private stopped = false;
  private state: HealthState;

  /** `paused`: no checks while it says so (docker's too); `previous`: the last run's state, whose log goes on. */
  constructor(
    private readonly h: HealthConfig,
    private readonly exec: (args: string[]) => Promise<ChildProcess>,
    private readonly update: (s: HealthState) => Promise<void>,
    private readonly paused: () => boolean = () => false,
    previous?: HealthState,
  ) {
    this.state = { status: 'starting', failingStreak: 0, log: previous?.log ?? [] };
  }

  /** Starts checking, the first check one interval after the run began (docker's schedule). */
  start(): HealthState {
    const runStarted = Date.now();
    const tick = async () => {
      if (this.stopped) return;
      if (this.paused()) { this.timer = setTimeout(() => void tick(), this.h.intervalMs); return; }
      const r = await this.check();
      if (this.stopped) return;
      this.state = nextHealth(this.state, r, this.h, runStarted);
      await this.update(this.state).catch(() => undefined);
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.h.intervalMs);
    };
    this.timer = setTimeout(() => void tick(), this.h.intervalMs);
    return this.state;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.current) void killTree(this.current);
  }

  private async check(): Promise<HealthResult> {
    const start = new Date().toISOString();
    let output = '';
    const keep = (b: Buffer) => { if (output.length < MAX_OUTPUT) output += b.toString('utf8').slice(0, MAX_OUTPUT - output.length); };
    let child: ChildProcess;
    try { child = await this.exec(healthArgs(this.h)); } catch (e) {
      return { start, end: new Date().toISOString(), exitCode: -1, output: `cannot run the health check: ${(e as Error).message}` };
    }
    this.current = child;
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let timedOut = false;
    const killer = setTimeout(() => { timedOut = true; void killTree(child); }, this.h.timeoutMs);
    // 'exit', not 'close': a process the check left behind may hold its pipes open
    const code = await new Promise<number>((resolve) => {
      child.once('error', () => resolve(-1));
      child.once('exit', (c, sig) => resolve(c ?? (sig ? 128 + (osConstants.signals[sig] ?? 0) : -1)));
    });
    clearTimeout(killer);
    await new Promise((r) => setImmediate(r)); // output already read
    child.stdout?.destroy();
    child.stderr?.destroy();
    this.current = undefined;
    if (timedOut) return { start, end: new Date().toISOString(), exitCode: -1, output: `Health check exceeded timeout (${this.h.timeoutMs}ms)` };
    return { start, end: new Date().toISOString(), exitCode: code, output };
  }
}

/**
 * Ends a check and what it started: its executor's process (runc exec, builtin.pl) and every process
 * below it, which are the check's own inside the container (killing only the first leaves those).
 */
async function killTree(child: ChildProcess): Promise<void> {
  if (child.pid === undefined) return;
  const procs = await allProcs().catch(() => []);
  const below = new Set<number>([child.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs) if (!below.has(p.pid) && below.has(p.ppid)) { below.add(p.pid); grew = true; }
  }
  for (const pid of below) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
}
