// Choosing an executor: `--runtime builtin|runc|crun|auto`. auto prefers runc when it is installed
// (the reference implementation), then crun, then the built-in one, which every Debian can run.
import { join } from 'node:path';
import { UsageError } from '../../client/errors.js';
import { BuiltinExecutor } from './builtin.js';
import type { Executor, ExecutorRef } from './executor.js';
import { findProgram, OciRuntimeExecutor } from './oci-runtime.js';

export const RUNTIME_NAMES = ['auto', 'builtin', 'runc', 'crun'] as const;

/** The executor for `--runtime NAME`; its state lives under `<root>/runtime/<name>`. */
export async function pickExecutor(root: string, name = 'auto'): Promise<Executor> {
  const state = (n: string) => join(root, 'runtime', n);
  if (name === 'builtin' || name === 'auto') {
    if (name === 'builtin') {
      if (!BuiltinExecutor.available()) throw new UsageError('the built-in executor needs root and /usr/bin/perl (Debian\'s perl-base)');
      return new BuiltinExecutor(state('builtin'));
    }
    for (const n of ['runc', 'crun']) {
      const bin = await findProgram(n);
      if (bin) return new OciRuntimeExecutor(bin, state(n));
    }
    if (BuiltinExecutor.available()) return new BuiltinExecutor(state('builtin'));
    throw new UsageError('no container runtime can be used here: berth run needs root (and perl, or runc or crun)');
  }
  if (name !== 'runc' && name !== 'crun') throw new UsageError(`--runtime ${name}: expected ${RUNTIME_NAMES.join(', ')}`);
  const bin = await findProgram(name);
  if (!bin) throw new UsageError(`the OCI runtime "${name}" is not installed (apt-get install ${name}), or use --runtime builtin`);
  return new OciRuntimeExecutor(bin, state(name));
}

/** The executor a kept container was created with. */
export function executorFromRef(ref: ExecutorRef): Executor {
  if (ref.name === 'builtin') return new BuiltinExecutor(ref.stateRoot);
  // containers recorded before executors had names were run by runc
  return new OciRuntimeExecutor(ref.bin ?? 'runc', ref.stateRoot);
}
