// Runs in the worker threads of bcrypt-pool.ts: bcrypt is pure CPU, and on the event loop it stalls
// every request the server is serving.
import bcrypt from 'bcryptjs';

export function compare({ password, hash }: { password: string; hash: string }): boolean {
  return bcrypt.compareSync(password, hash);
}

export function hash({ password, cost }: { password: string; cost: number }): string {
  return bcrypt.hashSync(password, cost);
}
