// docker's --mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,…]: the long form of -v and
// --tmpfs. Its fields are comma-separated key=value pairs (CSV: a value may be "quoted,with,commas").
import { existsSync } from 'node:fs';
import { isAbsolute, posix } from 'node:path';
import { UsageError } from '../client/errors.js';
import { parseBytes } from './spec.js';
import { validateVolumeName } from './volumes.js';

export type MountFlag =
  | { type: 'bind' | 'volume'; source: string; destination: string; readonly: boolean; nocopy: boolean }
  | { type: 'anonymous'; destination: string; readonly: boolean; nocopy: boolean }
  | { type: 'tmpfs'; tmpfs: string };

/** One CSV record: fields split at commas outside double quotes ("" inside quotes is a quote). */
function csvFields(text: string): string[] {
  const out: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false; else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { out.push(field); field = ''; } else field += c;
  }
  if (quoted) throw new UsageError(`--mount ${text}: unterminated quote`);
  out.push(field);
  return out;
}

function bool(flag: string, key: string, value: string | undefined): boolean {
  if (value === undefined || ['true', '1'].includes(value)) return true;
  if (['false', '0'].includes(value)) return false;
  throw new UsageError(`--mount ${flag}: ${key} takes true or false, not "${value}"`);
}

export function parseMountFlag(flag: string): MountFlag {
  let type = 'volume';
  let source: string | undefined;
  let destination: string | undefined;
  let readonly = false;
  let nocopy = false;
  const tmpfs: string[] = [];
  for (const field of csvFields(flag)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? undefined : field.slice(eq + 1);
    switch (key) {
      case 'type': type = value ?? ''; break;
      case 'source': case 'src': source = value; break;
      case 'target': case 'destination': case 'dst': destination = value; break;
      case 'readonly': case 'ro': readonly = bool(flag, key, value); break;
      case 'volume-nocopy': nocopy = bool(flag, key, value); break;
      case 'tmpfs-size': tmpfs.push(`size=${parseBytes(value ?? '')}`); break;
      case 'tmpfs-mode':
        if (!/^[0-7]{1,4}$/.test(value ?? '')) throw new UsageError(`--mount ${flag}: tmpfs-mode is an octal mode such as 1770`);
        tmpfs.push(`mode=${value}`);
        break;
      case 'bind-propagation':
        if (value !== 'rprivate' && value !== 'private') throw new UsageError(`--mount ${flag}: berth's bind mounts are rprivate; bind-propagation=${value} is not supported`);
        break;
      case 'consistency': break; // (docker ignores it on Linux too)
      default: throw new UsageError(`--mount ${flag}: unknown field "${key}" (type, source, target, readonly, volume-nocopy, tmpfs-size, tmpfs-mode, bind-propagation)`);
    }
  }
  if (!destination) throw new UsageError(`--mount ${flag}: target is required`);
  if (!destination.startsWith('/')) throw new UsageError(`--mount ${flag}: the target "${destination}" must be an absolute path`);
  if (posix.normalize(destination) === '/') throw new UsageError(`--mount ${flag}: nothing can be mounted on /`);
  const only = (what: string, ok: boolean) => { if (!ok) throw new UsageError(`--mount ${flag}: ${what} does not apply to type=${type}`); };
  switch (type) {
    case 'bind':
      only('volume-nocopy', !nocopy);
      only('tmpfs-size and tmpfs-mode', !tmpfs.length);
      if (!source) throw new UsageError(`--mount ${flag}: a bind mount needs a source`);
      if (!isAbsolute(source)) throw new UsageError(`--mount ${flag}: the bind source "${source}" must be an absolute path`);
      if (!existsSync(source)) throw new UsageError(`--mount ${flag}: bind source path does not exist: ${source}`);
      return { type: 'bind', source, destination, readonly, nocopy: false };
    case 'volume':
      only('tmpfs-size and tmpfs-mode', !tmpfs.length);
      if (!source) return { type: 'anonymous', destination, readonly, nocopy };
      validateVolumeName(source);
      return { type: 'volume', source, destination, readonly, nocopy };
    case 'tmpfs':
      only('source', source === undefined);
      only('volume-nocopy', !nocopy);
      return { type: 'tmpfs', tmpfs: `${destination}:${[...readonly ? ['ro'] : [], ...tmpfs].join(',')}`.replace(/:$/, '') };
    default:
      throw new UsageError(`--mount ${flag}: type is bind, volume or tmpfs, not "${type}"`);
  }
}
