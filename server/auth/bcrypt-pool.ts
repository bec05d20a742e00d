// bcrypt off the event loop. One check costs ~0.1 s of CPU at cost 10; run on the main thread (bcryptjs'
// async API yields only now and then), a few sign-ins at once stalled every pull for most of a second.
// Dedicated worker threads, not libuv's pool, so they never hold up file reads. One core stays for the
// event loop. Idle workers do not keep the process alive.
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';

let pool: Piscina | undefined;

function workers(): Piscina {
  pool ??= new Piscina({
    filename: new URL('./bcrypt-worker.js', import.meta.url).href,
    maxThreads: Math.max(1, availableParallelism() - 1),
    minThreads: 0,
    idleTimeout: 60_000,
  });
  return pool;
}

export function bcryptCompare(password: string, hash: string): Promise<boolean> {
  return workers().run({ password, hash }, { name: 'compare' }) as Promise<boolean>;
}

export function bcryptHash(password: string, cost: number): Promise<string> {
  return workers().run({ password, cost }, { name: 'hash' }) as Promise<string>;
}
