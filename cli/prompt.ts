// Reading a secret: from standard input (--password-stdin) or a no-echo prompt on the TTY.
import { createInterface } from 'node:readline';
import { UsageError } from './errors.js';

export async function readPassword(fromStdin: boolean, prompt: string): Promise<string> {
  if (fromStdin) {
    let data = '';
    for await (const chunk of process.stdin) data += chunk;
    return data.replace(/\r?\n$/, '');
  }
  if (!process.stdin.isTTY) throw new UsageError('no terminal to prompt for a password: use --password-stdin');
  process.stderr.write(prompt);
  const rl = createInterface({ input: process.stdin, terminal: true });
  const stdin = process.stdin as NodeJS.ReadStream & { setRawMode?: (b: boolean) => void };
  // Mute the echo: readline writes typed characters to its output; give it none.
  (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => undefined;
  try {
    return await new Promise<string>((resolve) => rl.question('', resolve));
  } finally {
    rl.close();
    stdin.setRawMode?.(false);
    process.stderr.write('\n');
  }
}
