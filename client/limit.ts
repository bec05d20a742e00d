// A tiny concurrency limiter: at most `n` tasks run at once, the rest wait in order.
export type Limiter = <T>(task: () => Promise<T>) => Promise<T>;

export function limiter(n: number): Limiter {
  const max = Math.max(1, Math.floor(n) || 1);
  let running = 0;
  const queue: (() => void)[] = [];
  const next = () => {
    if (running >= max) return;
    const start = queue.shift();
    if (start) { running++; start(); }
  };
  return <T>(task: () => Promise<T>) => new Promise<T>((resolve, reject) => {
    queue.push(() => {
      task().then(resolve, reject).finally(() => { running--; next(); });
    });
    next();
  });
}
