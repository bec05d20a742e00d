// Reading secrets for the CLI: all of standard input (--password-stdin), or a prompt on the
// terminal that never echoes what is typed.
import { createInterface } from 'node:readline';
import { UsageError } from './errors.js';

export async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of process.stdin) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8').replace(/\r?\n$/, '');
}

export function prompt(question: string, hidden: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    if (!process.stdin.isTTY) { reject(new UsageError('no terminal to prompt on: use --username and --password-stdin')); return; }
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    if (hidden) {
      const write = (rl as unknown as { _writeToOutput: (s: string) => void });
      write._writeToOutput = (s: string) => { if (s.includes(question)) process.stderr.write(question); };
    }
    rl.question(question, (answer) => { rl.close(); if (hidden) process.stderr.write('\n'); resolve(answer); });
    rl.on('SIGINT', () => { rl.close(); reject(new UsageError('cancelled')); });
  });
}

export function readPassword(fromStdin: boolean, question: string): Promise<string> {
  return fromStdin ? readStdin() : prompt(question, true);
}
