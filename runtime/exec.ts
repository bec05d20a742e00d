// `berth exec`: a new process in a running container, with Docker's semantics — the container's
// env, working directory and user unless -e/-w/-u say otherwise, stdin only with -i, a terminal
// with -t, and the process's exit status as the command's.
import type { StdioOptions } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../client/errors.js';
import { runtimeOf, type Container } from './containers.js';
import { waitExit, type ExecProcess } from './executors/executor.js';
import { mergeEnv, resolveEnvFlags, resolveUser, type RuntimeSpec } from './spec.js';

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
