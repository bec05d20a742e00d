// --log-driver and --log-opt, as docker takes them. berth keeps a container's output in json-file
// lines (containers.ts JsonFileLog); `local` is accepted as that format with the local driver's
// default limits (docker's local driver uses its own compressed files; berth's are plain), and
// `none` keeps nothing (`logs` refuses; attaching goes through the supervisor's socket instead).
// Drivers that ship logs elsewhere (syslog, journald, fluentd …) are refused, not ignored.
import { UsageError } from '../client/errors.js';
import { parseBytes } from './spec.js';

export type LogDriver = 'json-file' | 'local' | 'none';

export interface LogSettings { driver: LogDriver; maxSize?: number; maxFiles?: number }

/** docker's local driver keeps 5 files of 20 MB unless told otherwise. */
const LOCAL_DEFAULTS = { maxSize: 20 * 1000 * 1000, maxFiles: 5 };

export function parseLogFlags(driver: string | undefined, opts: string[]): LogSettings {
  const d = driver ?? 'json-file';
  if (d !== 'json-file' && d !== 'local' && d !== 'none') throw new UsageError(`--log-driver ${d}: berth has the json-file, local and none log drivers`);
  if (d === 'none') {
    if (opts.length) throw new UsageError(`--log-opt ${opts[0]}: the none log driver takes no options`);
    return { driver: d };
  }
  const out: LogSettings = { driver: d, ...(d === 'local' ? LOCAL_DEFAULTS : {}) };
  for (const o of opts) {
    const opt = /^(max-size|max-file)=(.+)$/.exec(o);
    if (!opt) throw new UsageError(`--log-opt ${o}: the ${d} options are max-size=SIZE and max-file=N`);
    if (opt[1] === 'max-file') {
      out.maxFiles = Number(opt[2]);
      if (!Number.isInteger(out.maxFiles) || out.maxFiles < 1) throw new UsageError(`--log-opt ${o}: max-file is a whole number of files, at least 1`);
      continue;
    }
    try { out.maxSize = parseBytes(opt[2]!); } catch (e) { throw new UsageError(`--log-opt ${o}: ${(e as Error).message}`); }
    if (out.maxSize < 1) throw new UsageError(`--log-opt ${o}: must be at least 1 byte`);
  }
  return out;
}
