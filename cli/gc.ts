// berth gc: garbage-collect a registry's storage; safe while registries serve from it.
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { UsageError } from './errors.js';

interface GcFlags { config?: string; root?: string; dryRun?: boolean; deleteUntagged?: boolean; grace: string; uploads?: string; quiet?: boolean; json?: boolean }

function duration(parseDuration: (v: string) => number, flag: string, value: string): number {
  try { return parseDuration(value); } catch (e) { throw new UsageError(`${flag}: ${(e as Error).message}`); }
}

export function registerGc(program: Command): void {
  program
    .command('gc')
    .description('delete blobs (and with --delete-untagged, manifests) nothing references; runs online, next to live registries')
    .option('-c, --config <file>', 'the registry configuration (storage section), as for berth serve')
    .option('-r, --root <dir>', 'filesystem storage root (storage.filesystem.rootdirectory)')
    .option('-n, --dry-run', 'print what would be deleted, delete nothing')
    .option('-u, --delete-untagged', 'also delete manifests that no tag reaches (directly, through an index, or as a referrer)')
    .option('--grace <duration>', 'never delete content younger than this (pushes in progress)', '1h')
    .option('--uploads <duration>', 'also purge upload sessions older than this (default: storage.maintenance.uploadpurging.age)')
    .option('-q, --quiet', 'print only the summary')
    .option('--json', 'print the report as JSON')
    .action(async (flags: GcFlags) => {
      const [{ ConfigError, loadConfig, parseDuration }, { createAdapter }, { collectGarbage, GcBusyError }] = await Promise.all([
        import('../server/config.js'), import('../storage-adapters/index.js'), import('../server/registry/gc.js'),
      ]);
      let config;
      try {
        config = loadConfig({ file: flags.config, env: process.env, overrides: flags.root ? { storage: { filesystem: { rootdirectory: flags.root } } } : {} });
      } catch (e) {
        if (e instanceof ConfigError) throw new UsageError(e.message);
        throw e;
      }
      if (config.storage.driver === 'filesystem') {
        // a mistyped root would otherwise be created empty, and "deleted 0 blob(s)" look like a clean registry
        const root = String(config.storage.options.rootdirectory);
        const st = await stat(root).catch(() => undefined);
        if (!st?.isDirectory()) throw new UsageError(`${root}: no such storage root directory`);
      }
      const storage = await createAdapter(config.storage.driver, config.storage.options);
      const graceMs = duration(parseDuration, '--grace', flags.grace);
      const uploadMaxAgeMs = flags.uploads ? duration(parseDuration, '--uploads', flags.uploads) : config.uploadPurging.ageMs;
      const quiet = flags.quiet || flags.json;
      let report;
      try {
        report = await collectGarbage(storage, {
          dryRun: flags.dryRun, deleteUntagged: flags.deleteUntagged, graceMs, uploadMaxAgeMs,
          log: quiet ? undefined : (line) => process.stdout.write(`${line}\n`),
        });
      } catch (e) {
        if (e instanceof GcBusyError) throw new UsageError(e.message);
        throw e;
      } finally {
        await storage.close?.();
      }
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return;
      }
      const verb = flags.dryRun ? 'would delete' : 'deleted';
      process.stdout.write(`${verb} ${report.manifests.length} manifest(s) and ${report.blobs.length} blob(s), ${report.bytesFreed} bytes`
        + `${flags.dryRun ? `; would purge ${report.uploadsPurged.length} upload(s) and ${report.temporaryPurged} unfinished write(s)`
          : ` freed; purged ${report.uploadsPurged.length} upload(s) and ${report.temporaryPurged} unfinished write(s); ${report.rescued} candidate(s) kept because a push referenced them meanwhile`}\n`);
    });
}
