// How much disk a tree takes, for the "reclaimed space" of rmi and prune.
import { lstat, readdir } from 'node:fs/promises';

/** Apparent size of a tree (hard links counted once; names that are not UTF-8 included). */
export async function diskUsage(path: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (p: Buffer): Promise<void> => {
    let st;
    try { st = await lstat(p); } catch { return; }
    if (st.isDirectory()) {
      let names: Buffer[] = [];
      try { names = await readdir(p, { encoding: 'buffer' }); } catch { return; }
      for (const n of names) await walk(Buffer.concat([p, Buffer.from('/'), n]));
      return;
    }
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) return;
      seen.add(key);
    }
    total += st.size;
  };
  await walk(Buffer.from(path));
  return total;
}
