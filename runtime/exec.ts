// `berth exec`: a new process in a running container, with Docker's semantics — the container's
// env, working directory and user unless -e/-w/-u say otherwise, stdin only with -i, a terminal
// with -t, and the process's exit status as the command's.
import type { StdioOptions } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { UsageError } from '../client/errors.js';
import { runtimeOf, type Container } from './containers.js';
import { waitExit, type ExecProcess } from './executors/executor.js';
import { DEFAULT_PATH, mergeEnv, resolveEnvFlags, resolveInRoot, resolveUser, type RuntimeSpec } from './spec.js';

export interface ExecOptions {
  args: string[];
  env?: string[];
  workdir?: string;
  user?: string;
  tty?: boolean;
  interactive?: boolean;
  hostEnv?: NodeJS.ProcessEnv;
}

/** The process to start, from the container's config.json and the exec flags. */
export async function execProcess(c: Container, o: ExecOptions): Promise<ExecProcess> {
  if (o.args.length === 0) throw new UsageError('berth exec needs a command');
  if (o.workdir !== undefined && !o.workdir.startsWith('/')) throw new UsageError(`-w ${o.workdir}: the working directory must be absolute`);
  const spec = JSON.parse(await readFile(join(c.dir, 'config.json'), 'utf8')) as RuntimeSpec;
  const user = o.user !== undefined ? await resolveUser(join(c.dir, 'rootfs'), o.user) : spec.process.user;
  const env = mergeEnv(spec.process.env, o.tty ? ['TERM=xterm'] : [], resolveEnvFlags(o.env ?? [], o.hostEnv));
  return {
    args: o.args, env, cwd: o.workdir ?? spec.process.cwd,
    user: { uid: user.uid, gid: user.gid, ...(user.additionalGids ? { additionalGids: user.additionalGids } : {}), umask: 0o022 },
    tty: !!o.tty, interactive: !!o.interactive,
  };
}

/** Runs the process to its end with the caller's stdio; gives its exit status. */
export async function execInContainer(c: Container, o: ExecOptions, stdio?: StdioOptions): Promise<number> {
  if (c.state.status !== 'running') throw new UsageError(`container ${c.config.name} is not running`);
  const proc = await execProcess(c, o);
  const executor = runtimeOf(c);
  // runc and crun take the terminal from their stdin even without -i; the built-in one reads it only with -i
  const stdinFlows = o.interactive || (o.tty && executor.name !== 'builtin');
  const child = await executor.spawnExec(c.config.id, c.dir, proc, stdio ?? [stdinFlows ? 'inherit' : 'ignore', 'inherit', 'inherit']);
  return waitExit(child);
}

/**
 * exec -d: the process starts in the background and this returns. What docker reports at once is
 * reported here too: a command the container's PATH does not have, before anything starts.
 */
export async function execDetached(c: Container, o: ExecOptions): Promise<void> {
  if (c.state.status !== 'running') throw new UsageError(`container ${c.config.name} is not running`);
  const proc = await execProcess(c, o);
  const spec = JSON.parse(await readFile(join(c.dir, 'config.json'), 'utf8')) as RuntimeSpec;
  // what lies on a volume, bind mount or tmpfs cannot be looked at from here: that is taken on trust
  const mounted = spec.mounts.filter((m) => m.type === 'bind' || (m.type === 'tmpfs' && m.source === 'tmpfs' && m.destination !== '/dev')).map((m) => m.destination);
  await findExecutable(join(c.dir, 'rootfs'), proc.args[0]!, proc.env, proc.cwd, mounted);
  const child = await runtimeOf(c).spawnExec(c.config.id, c.dir, proc, ['ignore', 'ignore', 'ignore'], { detached: true });
  await new Promise<void>((resolve, reject) => { child.once('spawn', resolve); child.once('error', reject); });
  child.unref();
}

/** The command as the container would find it: a path (from its working directory), or a name looked up in its PATH (inside its rootfs). */
async function findExecutable(rootfs: string, cmd: string, env: string[], cwd: string, mounted: string[]): Promise<void> {
  const path = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
  const candidates = cmd.includes('/') ? [posix.resolve(cwd, cmd)] : path.split(':').filter(Boolean).map((d) => posix.resolve(cwd, d, cmd));
  const onMount = (p: string) => mounted.some((m) => p === m || p.startsWith(m.endsWith('/') ? m : `${m}/`));
  for (const p of candidates) {
    if (onMount(p)) return;
    try {
      if ((await stat(await resolveInRoot(rootfs, p))).isFile()) return;
    } catch { /* not there */ }
  }
  throw new UsageError(`exec: "${cmd}": ${cmd.includes('/') ? 'no such file or directory' : 'executable file not found in $PATH'}`);
}
