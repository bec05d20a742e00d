// syncfs(2) for a directory's filesystem, which Node does not expose: coreutils' `sync -f`.
// One call flushes every file written there (a whole unpacked layer) far faster than an fsync per
// file; it also flushes other dirty data on that filesystem, which is the price of the guarantee.
import { execFile } from 'node:child_process';

export function syncFilesystem(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('sync', ['-f', path], (e, _out, stderr) => {
      if (e) reject(new Error(`sync -f ${path} failed: ${String(stderr).trim() || e.message}`));
      else resolve();
    });
  });
}
