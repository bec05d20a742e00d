// `berth run` in the foreground without --rm, Docker's default: the container is created and run
// under its supervisor exactly like a detached one, so it stays afterwards (ps -a, logs, start, diff,
// commit, rm), and the CLI stays attached to it: it prints the container's output as the supervisor
// logs it (line by line, stdout and stderr apart), forwards SIGINT, SIGTERM and SIGHUP to it
// (docker's --sig-proxy) and ends with the container's exit code. Killing the CLI does not stop the
// container, as with docker. `berth attach` and `berth start -a` attach the same way to a container
// that is already running.
import { killContainer, loadContainer, streamLogs, type Container } from './containers.js';

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Follows a started container until it has ended for good (restarts included); answers its exit
 * code. With `after` (logEnd() taken before the container was started, or now for docker attach),
 * only what was written since is printed; without it, the whole log (a new container's).
 */
export async function attachUntilExit(root: string, c: Container, out: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream } = process, after?: { ino: number; bytes: number }): Promise<number> {
  const handlers = FORWARDED.map((sig) => {
    // the state on disk, not `c`'s: between restarts, or once it has ended, there is nothing to signal
    const h = () => { loadContainer(root, c.config.id).then((now) => killContainer(now, sig)).catch(() => undefined); };
    process.on(sig, h);
    return [sig, h] as const;
  });
  try {
    await streamLogs(root, c, { follow: true, pollMs: 50, ...(after ? { after } : {}), write: (s, stream) => { (stream === 'stderr' ? out.stderr : out.stdout).write(s); } });
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
  }
  const end = await loadContainer(root, c.config.id);
  return end.state.exitCode ?? 125;
}
