// Looking at host processes through /proc: is a pid alive, and is it still the same process; signal names.
import { constants as osConstants } from 'node:os';
import { UsageError } from '../client/errors.js';

export { pidAlive, procStartTime } from '../client/pid-lock.js';

/** A signal as docker takes it ("SIGQUIT", "quit", "3", "SIGRTMIN+3") → its name without SIG ("QUIT"), or the number when it has none. */
export function signalName(s: string): string {
  const t = String(s).trim().toUpperCase().replace(/^SIG/, '');
  const known = osConstants.signals as Record<string, number>;
  // glibc's real-time range as docker counts it: RTMIN is 34, RTMAX 64
  const rt = /^RTM(IN|AX)(?:([+-])(\d+))?$/.exec(t);
  if (rt) {
    const n = (rt[1] === 'IN' ? 34 : 64) + (rt[2] === '-' ? -1 : 1) * Number(rt[3] ?? 0);
    if ((rt[1] === 'IN' && rt[2] === '-') || (rt[1] === 'AX' && rt[2] === '+') || n < 34 || n > 64) throw new UsageError(`invalid signal: ${s}`);
    return String(n);
  }
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    if (n < 1 || n > 64) throw new UsageError(`invalid signal: ${s}`);
    return Object.keys(known).find((k) => known[k] === n)?.replace(/^SIG/, '') ?? String(n);
  }
  if (known[`SIG${t}`] === undefined) throw new UsageError(`invalid signal: ${s}`);
  return t;
}
